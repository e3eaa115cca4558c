import Foundation
import MaaSRuntime

/// The registry's page tokens: its two listings and their positions on the shared
/// `PageTokenSealer` (opaque, bound to the tenant and the filters, sealed under
/// `MAAS_REGISTRY_PAGE_TOKEN_SECRET`).
public struct PageTokens: Sendable {
  private let sealer: PageTokenSealer

  /// - Parameter secret: shared by every replica (tokens move between them); see
  ///   `MAAS_REGISTRY_PAGE_TOKEN_SECRET`.
  public init(secret: String) {
    self.sealer = PageTokenSealer(secret: secret, service: "registry")
  }

  /// What a token is bound to: one tenant's listing of one kind with given filters.
  public struct Listing: Sendable, Hashable {
    enum Kind: UInt8 {
      case models = 1
      case versions = 2
    }

    let kind: Kind
    let sealed: PageTokenSealer.Listing

    init(_ kind: Kind, _ filters: Canonical) {
      self.kind = kind
      self.sealed = PageTokenSealer.Listing(kind: kind.rawValue, filters: filters)
    }

    /// ListModels of `tenant` with these filters.
    public static func models(tenant: String, namePrefix: String, labels: [String: String], state: ModelState?) -> Listing {
      var canonical = Canonical()
      canonical.add(tenant)
      canonical.add(namePrefix)
      canonical.add(labels)
      canonical.add(state.map { String($0.rawValue) } ?? "any")
      return Listing(.models, canonical)
    }

    /// ListModelVersions of `tenant`'s model named by `model` (as the request names it) with
    /// these filters.
    public static func versions(tenant: String, model: ModelRef, labels: [String: String]) -> Listing {
      var canonical = Canonical()
      canonical.add(tenant)
      canonical.add(model.description)
      canonical.add(labels)
      return Listing(.versions, canonical)
    }
  }

  public func token(after cursor: ModelCursor, in listing: Listing) -> String {
    precondition(listing.kind == .models)
    return sealer.seal(PositionBytes.of(cursor.id) + Array(cursor.name.utf8), in: listing.sealed)
  }

  public func token(after cursor: VersionCursor, in listing: Listing) -> String {
    precondition(listing.kind == .versions)
    return sealer.seal(PositionBytes.of(cursor.id) + PositionBytes.of(cursor.createMicros), in: listing.sealed)
  }

  /// The cursor in `token`, if it is an unaltered token of `listing`.
  public func modelCursor(_ token: String, in listing: Listing) -> ModelCursor? {
    guard listing.kind == .models, let position = try? sealer.open(token, in: listing.sealed), position.count > 16,
      let id = PositionBytes.uuid(position[..<16]), let name = String(validating: position[16...], as: UTF8.self)
    else { return nil }
    return ModelCursor(name: name, id: id)
  }

  /// The cursor in `token`, if it is an unaltered token of `listing`.
  public func versionCursor(_ token: String, in listing: Listing) -> VersionCursor? {
    guard listing.kind == .versions, let position = try? sealer.open(token, in: listing.sealed),
      let id = PositionBytes.uuid(position.prefix(16)), let micros = PositionBytes.int64(position.dropFirst(16))
    else { return nil }
    return VersionCursor(createMicros: micros, id: id)
  }
}
