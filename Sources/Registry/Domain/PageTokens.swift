import Foundation
import MaaSRuntime

/// Opaque, tamper-evident page tokens.
///
/// A token is base64url of `version | kind | listing digest | cursor | MAC`:
/// - the listing digest is SHA-256 (first 16 bytes) of the tenant, the listing's kind and its
///   filters, so a token answers only the listing it came from: another tenant's or one taken
///   with other filters does not match and is refused;
/// - the MAC is HMAC-SHA256 (first 16 bytes) under the service's secret over everything before
///   it, so a token cannot be altered or forged without the secret.
///
/// Even a forged token could only move the start of a listing within the caller's own rows
/// (every query is tenant-scoped and row-level security holds underneath); the MAC is there so
/// that tampering is an error the caller sees (INVALID_ARGUMENT "page_token") rather than a
/// silently odd page.
public struct PageTokens: Sendable {
  /// Longest token accepted, in bytes; real ones are under 300.
  public static let maxTokenBytes = 1024
  private static let formatVersion: UInt8 = 1
  private static let macBytes = 16
  private static let digestBytes = 16

  private let key: [UInt8]

  /// - Parameter secret: shared by every replica (tokens move between them); see
  ///   `MAAS_REGISTRY_PAGE_TOKEN_SECRET`.
  public init(secret: String) {
    self.key = Digest256.hash(Array("maas.registry.page-token.v1\u{0}".utf8) + Array(secret.utf8))
  }

  /// What a token is bound to: one tenant's listing of one kind with given filters.
  public struct Listing: Sendable, Hashable {
    enum Kind: UInt8 {
      case models = 1
      case versions = 2
    }

    let kind: Kind
    let digest: [UInt8]

    /// ListModels of `tenant` with these filters.
    public static func models(tenant: String, namePrefix: String, labels: [String: String], state: ModelState?) -> Listing {
      var canonical = Canonical()
      canonical.add(tenant)
      canonical.add(namePrefix)
      canonical.add(labels)
      canonical.add(state.map { String($0.rawValue) } ?? "any")
      return Listing(kind: .models, digest: Array(Digest256.hash(canonical.bytes).prefix(digestBytes)))
    }

    /// ListModelVersions of `tenant`'s model named by `model` (as the request names it) with
    /// these filters.
    public static func versions(tenant: String, model: ModelRef, labels: [String: String]) -> Listing {
      var canonical = Canonical()
      canonical.add(tenant)
      canonical.add(model.description)
      canonical.add(labels)
      return Listing(kind: .versions, digest: Array(Digest256.hash(canonical.bytes).prefix(digestBytes)))
    }
  }

  public func token(after cursor: ModelCursor, in listing: Listing) -> String {
    precondition(listing.kind == .models)
    return self.seal(listing, cursor: Self.uuidBytes(cursor.id) + Array(cursor.name.utf8))
  }

  public func token(after cursor: VersionCursor, in listing: Listing) -> String {
    precondition(listing.kind == .versions)
    let micros = withUnsafeBytes(of: cursor.createMicros.bigEndian) { Array($0) }
    return self.seal(listing, cursor: Self.uuidBytes(cursor.id) + micros)
  }

  /// The cursor in `token`, if it is an unaltered token of `listing`.
  public func modelCursor(_ token: String, in listing: Listing) -> ModelCursor? {
    guard listing.kind == .models, let cursor = self.open(token, listing), cursor.count > 16,
      let name = String(validating: cursor[16...], as: UTF8.self)
    else { return nil }
    return ModelCursor(name: name, id: Self.uuid(cursor[..<16]))
  }

  /// The cursor in `token`, if it is an unaltered token of `listing`.
  public func versionCursor(_ token: String, in listing: Listing) -> VersionCursor? {
    guard listing.kind == .versions, let cursor = self.open(token, listing), cursor.count == 24 else { return nil }
    let micros = cursor[16...].reduce(Int64(0)) { ($0 << 8) | Int64($1) }
    return VersionCursor(createMicros: micros, id: Self.uuid(cursor[..<16]))
  }

  private func seal(_ listing: Listing, cursor: [UInt8]) -> String {
    let body = [Self.formatVersion, listing.kind.rawValue] + listing.digest + cursor
    let mac = Digest256.hmac(key: key, message: body).prefix(Self.macBytes)
    return Base64URL.encode(body + mac)
  }

  /// The cursor bytes of a token that is well-formed, unaltered, and of `listing`.
  private func open(_ token: String, _ listing: Listing) -> [UInt8]? {
    guard token.utf8.count <= Self.maxTokenBytes, let bytes = Base64URL.decodeCanonical(token),
      bytes.count > 2 + Self.digestBytes + Self.macBytes
    else { return nil }
    let body = Array(bytes.dropLast(Self.macBytes))
    let mac = Array(bytes.suffix(Self.macBytes))
    guard Digest256.constantTimeEqual(Array(Digest256.hmac(key: key, message: body).prefix(Self.macBytes)), mac),
      body[0] == Self.formatVersion, body[1] == listing.kind.rawValue,
      Array(body[2..<(2 + Self.digestBytes)]) == listing.digest
    else { return nil }
    return Array(body[(2 + Self.digestBytes)...])
  }

  private static func uuidBytes(_ id: UUID) -> [UInt8] {
    withUnsafeBytes(of: id.uuid) { Array($0) }
  }

  private static func uuid(_ bytes: ArraySlice<UInt8>) -> UUID {
    let b = Array(bytes)
    return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
  }
}

/// An unambiguous byte form of a few values, for digests and fingerprints: every value is
/// length-prefixed, and maps are sorted by key.
struct Canonical {
  private(set) var bytes: [UInt8] = []

  mutating func add(_ text: String) {
    let utf8 = Array(text.utf8)
    bytes += withUnsafeBytes(of: UInt32(utf8.count).bigEndian) { Array($0) }
    bytes += utf8
  }

  mutating func add(_ map: [String: String]) {
    add(String(map.count))
    for (key, value) in map.sorted(by: { $0.key < $1.key }) {
      add(key)
      add(value)
    }
  }

  mutating func add(_ flag: Bool) { add(flag ? "1" : "0") }

  mutating func add(_ number: Int64) { add(String(number)) }

  /// Lower-case hex of the SHA-256 of what was added.
  var fingerprint: String { Digest256.hex(Digest256.hash(bytes)) }
}
