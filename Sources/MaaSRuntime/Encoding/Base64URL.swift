import Foundation

/// Base64url without padding (RFC 4648 section 5): what API keys, JWTs and page tokens are
/// spelled in.
public enum Base64URL {
  private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

  /// Written out rather than Foundation's base64 with three replacements: every registry page
  /// answered seals a token, and those string passes were most of it.
  public static func encode(_ bytes: some Collection<UInt8>) -> String {
    let bytes = Array(bytes)
    var output: [UInt8] = []
    output.reserveCapacity((bytes.count * 4 + 2) / 3)
    var index = 0
    while index + 3 <= bytes.count {
      let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
      output += [alphabet[Int(chunk >> 18)], alphabet[Int(chunk >> 12 & 63)], alphabet[Int(chunk >> 6 & 63)], alphabet[Int(chunk & 63)]]
      index += 3
    }
    switch bytes.count - index {
    case 1:
      let chunk = UInt32(bytes[index]) << 16
      output += [alphabet[Int(chunk >> 18)], alphabet[Int(chunk >> 12 & 63)]]
    case 2:
      let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8
      output += [alphabet[Int(chunk >> 18)], alphabet[Int(chunk >> 12 & 63)], alphabet[Int(chunk >> 6 & 63)]]
    default:
      break
    }
    return String(decoding: output, as: UTF8.self)
  }

  /// The bytes `text` spells, or nil when it is not base64url (a symbol outside the alphabet,
  /// padding, an impossible length).
  public static func decode(_ text: some StringProtocol) -> [UInt8]? {
    guard text.utf8.allSatisfy(isSymbol) else { return nil }
    var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    standard += String(repeating: "=", count: (4 - standard.utf8.count % 4) % 4)
    return Data(base64Encoded: standard).map(Array.init)
  }

  /// As `decode`, but only the one spelling `encode` gives: otherwise the last symbol's unused
  /// bits could be changed without changing the bytes, and a sealed token must never be
  /// accepted altered.
  public static func decodeCanonical(_ text: some StringProtocol) -> [UInt8]? {
    guard let bytes = decode(text), encode(bytes) == text else { return nil }
    return bytes
  }

  /// A symbol of the base64url alphabet.
  public static func isSymbol(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
      UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
      true
    default: false
    }
  }
}
