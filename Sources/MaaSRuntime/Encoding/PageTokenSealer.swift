public import Foundation

/// Opaque, tamper-evident page tokens: one scheme for every service's listings.
///
/// A token is base64url of `version | kind | listing digest | position | MAC`:
/// - the listing digest is SHA-256 (first 16 bytes) of the listing's canonical filters, tenant
///   included, so a token answers only the listing it came from: one of another tenant or taken
///   with other filters does not match and is refused;
/// - the MAC is HMAC-SHA256 (first 16 bytes) under a key derived from the service's secret over
///   everything before it, so a token cannot be altered or forged without the secret.
///
/// Even a forged token could only move the start of a listing within rows the caller may see
/// (every query is scoped by the credential's tenant, never by the token); the MAC is there so
/// that tampering is an error the caller sees (INVALID_ARGUMENT "page_token") rather than a
/// silently odd page.
public struct PageTokenSealer: Sendable {
  /// Longest token accepted, in bytes; real ones are under 300.
  public static let maxTokenBytes = 1024
  private static let formatVersion: UInt8 = 1
  private static let macBytes = 16
  private static let digestBytes = 16

  private let key: [UInt8]

  /// - Parameters:
  ///   - secret: shared by every replica of the service (tokens move between them).
  ///   - service: names the service in the key, so one service's token never opens at another
  ///     even under the same secret.
  public init(secret: String, service: String) {
    self.key = Digest256.hash(Array("maas.\(service).page-token.v1\u{0}".utf8) + Array(secret.utf8))
  }

  /// What a token is bound to: one kind of listing (a service's own numbering) with its filters.
  public struct Listing: Sendable, Hashable {
    public let kind: UInt8
    let digest: [UInt8]

    /// - Parameter filters: everything that selects the listing's rows, the tenant first.
    public init(kind: UInt8, filters: Canonical) {
      self.kind = kind
      self.digest = Array(Digest256.hash(filters.bytes).prefix(PageTokenSealer.digestBytes))
    }
  }

  /// Why a token did not open.
  public enum Refusal: Error, Hashable, Sendable {
    /// Not a token of this service: garbage, truncated, altered, or sealed under another secret.
    case malformed
    /// A genuine token of another listing (other filters, another tenant, another kind).
    case otherListing
  }

  /// The token that continues `listing` after `position`.
  public func seal(_ position: [UInt8], in listing: Listing) -> String {
    let body = [Self.formatVersion, listing.kind] + listing.digest + position
    let mac = Digest256.hmac(key: key, message: body).prefix(Self.macBytes)
    return Base64URL.encode(body + mac)
  }

  /// The position sealed in `token`, if it is a well-formed, unaltered token of `listing`.
  public func open(_ token: String, in listing: Listing) throws(Refusal) -> [UInt8] {
    guard token.utf8.count <= Self.maxTokenBytes, let bytes = Base64URL.decodeCanonical(token),
      bytes.count > 2 + Self.digestBytes + Self.macBytes
    else { throw .malformed }
    let body = Array(bytes.dropLast(Self.macBytes))
    let mac = Array(bytes.suffix(Self.macBytes))
    guard Digest256.constantTimeEqual(Array(Digest256.hmac(key: key, message: body).prefix(Self.macBytes)), mac),
      body[0] == Self.formatVersion
    else { throw .malformed }
    guard body[1] == listing.kind, Array(body[2..<(2 + Self.digestBytes)]) == listing.digest else { throw .otherListing }
    return Array(body[(2 + Self.digestBytes)...])
  }
}

/// Fixed-width byte forms of the values a page token's position is made of.
public enum PositionBytes {
  public static func of(_ id: UUID) -> [UInt8] {
    withUnsafeBytes(of: id.uuid) { Array($0) }
  }

  /// Big-endian.
  public static func of(_ number: Int64) -> [UInt8] {
    withUnsafeBytes(of: number.bigEndian) { Array($0) }
  }

  /// The UUID in exactly 16 bytes.
  public static func uuid(_ bytes: ArraySlice<UInt8>) -> UUID? {
    guard bytes.count == 16 else { return nil }
    let b = Array(bytes)
    return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
  }

  /// The big-endian number in exactly 8 bytes.
  public static func int64(_ bytes: ArraySlice<UInt8>) -> Int64? {
    guard bytes.count == 8 else { return nil }
    return bytes.reduce(Int64(0)) { ($0 << 8) | Int64($1) }
  }
}
