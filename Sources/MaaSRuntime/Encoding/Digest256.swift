import Crypto

/// SHA-256 and HMAC-SHA256 (swift-crypto), in the byte-array shapes page tokens and idempotency
/// fingerprints use.
public enum Digest256 {
  /// The 32-byte digest of `bytes`.
  public static func hash(_ bytes: some Sequence<UInt8>) -> [UInt8] {
    Array(Crypto.SHA256.hash(data: Array(bytes)))
  }

  /// HMAC-SHA256 of `message` under `key`.
  public static func hmac(key: some Sequence<UInt8>, message: some Sequence<UInt8>) -> [UInt8] {
    Array(HMAC<Crypto.SHA256>.authenticationCode(for: Array(message), using: SymmetricKey(data: Array(key))))
  }

  /// Lower-case hex.
  public static func hex(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    for byte in bytes {
      text.append(digits[Int(byte >> 4)])
      text.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: text, as: UTF8.self)
  }

  /// Whether two byte strings are equal, in time that depends only on their lengths.
  public static func constantTimeEqual(_ left: [UInt8], _ right: [UInt8]) -> Bool {
    guard left.count == right.count else { return false }
    var difference: UInt8 = 0
    for (a, b) in zip(left, right) { difference |= a ^ b }
    return difference == 0
  }
}
