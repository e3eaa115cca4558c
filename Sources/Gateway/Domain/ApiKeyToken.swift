import Crypto
import Foundation
import MaaSRuntime

/// An API key as a tenant holds it: `maas_<prefix>_<secret>`.
///
/// - `prefix`: 8 characters from a 32-letter alphabet (40 random bits), unique among keys. It is
///   not secret: it identifies the key in listings (`ApiKey.prefix` shows `maas_<prefix>`) and
///   lets the gateway find the key's record before it knows the tenant.
/// - `secret`: 32 bytes from a CSPRNG, base64url without padding (43 characters).
///
/// The gateway stores only `digest` (SHA-256 of the whole key). A plain hash, not a slow
/// password hash, is right here: the secret carries 256 random bits, so there is nothing to
/// guess, and every call checks a key.
///
/// `description` never shows the secret, so a token that slips into a log line leaks nothing.
public struct ApiKeyToken: Sendable, Hashable, CustomStringConvertible {
  /// What every key starts with; also how a bearer credential is told apart from a JWT.
  public static let scheme = "maas_"
  public static let prefixLength = 8
  public static let secretByteCount = 32
  /// Base64url of 32 bytes, without padding.
  static let secretLength = 43
  /// Lower-case letters and digits without the look-alikes 0/o and 1/l: 32 symbols, so a random
  /// byte's low five bits pick one uniformly.
  static let prefixAlphabet = Array("abcdefghijkmnpqrstuvwxyz23456789".utf8)

  /// The identifying part, without `maas_`.
  public let prefix: String
  /// The secret part.
  public let secret: String

  /// `maas_<prefix>_<secret>`: what the tenant sends as `authorization: Bearer <text>`.
  public var text: String { "\(Self.scheme)\(self.prefix)_\(self.secret)" }

  /// `maas_<prefix>`: shown in listings; not enough to use the key.
  public var displayPrefix: String { Self.scheme + self.prefix }

  /// SHA-256 of `text`: what the gateway stores and compares.
  public var digest: ApiKeyDigest { ApiKeyDigest(of: self.text) }

  public var description: String { "\(self.displayPrefix)_<redacted>" }

  /// A new key from the system's CSPRNG.
  public static func generate() -> ApiKeyToken {
    var generator = SystemRandomNumberGenerator()
    return self.generate(using: &generator)
  }

  /// A new key from `generator`, which must be cryptographically secure outside tests.
  public static func generate(using generator: inout some RandomNumberGenerator) -> ApiKeyToken {
    var prefix: [UInt8] = []
    prefix.reserveCapacity(self.prefixLength)
    for _ in 0..<self.prefixLength {
      prefix.append(self.prefixAlphabet[Int(UInt8.random(in: .min ... .max, using: &generator) & 31)])
    }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(self.secretByteCount)
    while bytes.count < self.secretByteCount {
      withUnsafeBytes(of: generator.next().littleEndian) { bytes.append(contentsOf: $0) }
    }
    return ApiKeyToken(prefix: String(decoding: prefix, as: UTF8.self), secret: Base64URL.encode(bytes.prefix(self.secretByteCount)))
  }

  init(prefix: String, secret: String) {
    self.prefix = prefix
    self.secret = secret
  }

  /// Parses `maas_<prefix>_<secret>` strictly: the exact lengths and alphabets, nothing around
  /// it. Returns nil for anything else.
  public init?(parsing text: String) {
    let bytes = Array(text.utf8)
    let scheme = Array(Self.scheme.utf8)
    let separator = scheme.count + Self.prefixLength
    guard bytes.count == separator + 1 + Self.secretLength,
      bytes.starts(with: scheme),
      bytes[separator] == UInt8(ascii: "_")
    else { return nil }
    let prefix = bytes[scheme.count..<separator]
    let secret = bytes[(separator + 1)...]
    guard prefix.allSatisfy(Self.prefixAlphabet.contains), secret.allSatisfy(Base64URL.isSymbol) else { return nil }
    self.prefix = String(decoding: prefix, as: UTF8.self)
    self.secret = String(decoding: secret, as: UTF8.self)
  }
}

/// The SHA-256 digest of an API key: 32 bytes, compared in constant time.
public struct ApiKeyDigest: Sendable, Hashable {
  public let bytes: [UInt8]

  public init(of text: String) {
    self.bytes = Array(SHA256.hash(data: Array(text.utf8)))
  }

  /// A digest as stored; nil unless exactly 32 bytes.
  public init?(bytes: [UInt8]) {
    guard bytes.count == SHA256.byteCount else { return nil }
    self.bytes = bytes
  }

  /// Whether both digests are equal, in time that does not depend on where they differ.
  public func matches(_ other: ApiKeyDigest) -> Bool {
    ConstantTime.equal(self.bytes, other.bytes)
  }
}

/// Comparisons whose duration says nothing about the secrets compared.
enum ConstantTime {
  /// Equal contents; the time depends only on the lengths, which are public (digests).
  static func equal(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in lhs.indices {
      difference |= lhs[index] ^ rhs[index]
    }
    return difference == 0
  }

  /// Whether two secrets of any lengths are equal: their SHA-256 digests are compared, so
  /// neither the position of the first difference nor the lengths show in the timing.
  static func equalSecrets(_ lhs: String, _ rhs: String) -> Bool {
    self.equal(Array(SHA256.hash(data: Array(lhs.utf8))), Array(SHA256.hash(data: Array(rhs.utf8))))
  }
}
