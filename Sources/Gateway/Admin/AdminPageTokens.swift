import Foundation
import MaaSRuntime

/// The Admin listings' page tokens on the shared `PageTokenSealer` (opaque, bound to the
/// listing's filters, sealed under `MAAS_GATEWAY_PAGE_TOKEN_SECRET`): a token that does not open
/// is INVALID_ARGUMENT "page_token", malformed or not of this listing.
public struct AdminPageTokens: Sendable {
  private let sealer: PageTokenSealer

  /// - Parameter secret: shared by every replica (tokens move between them).
  public init(secret: String) {
    self.sealer = PageTokenSealer(secret: secret, service: "gateway")
  }

  /// ListTenants with this name prefix.
  static func tenants(namePrefix: String) -> PageTokenSealer.Listing {
    var filters = Canonical()
    filters.add(namePrefix)
    return PageTokenSealer.Listing(kind: 1, filters: filters)
  }

  /// ListApiKeys of this tenant.
  static func apiKeys(tenantID: String, includeRevoked: Bool) -> PageTokenSealer.Listing {
    var filters = Canonical()
    filters.add(tenantID)
    filters.add(includeRevoked)
    return PageTokenSealer.Listing(kind: 2, filters: filters)
  }

  func token(afterTenant name: String, in listing: PageTokenSealer.Listing) -> String {
    sealer.seal(Array(name.utf8), in: listing)
  }

  func token(afterKey id: UUID, in listing: PageTokenSealer.Listing) -> String {
    sealer.seal(PositionBytes.of(id), in: listing)
  }

  /// The tenant name after which the listing continues; nil for the first page (no token).
  func tenantName(_ token: String, in listing: PageTokenSealer.Listing) throws(GatewayError) -> String? {
    guard let position = try self.position(token, in: listing) else { return nil }
    guard let name = String(validating: position, as: UTF8.self) else { throw .invalid("page_token", .malformed) }
    return name
  }

  /// The key id after which the listing continues; nil for the first page (no token).
  func keyID(_ token: String, in listing: PageTokenSealer.Listing) throws(GatewayError) -> UUID? {
    guard let position = try self.position(token, in: listing) else { return nil }
    guard let id = PositionBytes.uuid(position[...]) else { throw .invalid("page_token", .malformed) }
    return id
  }

  private func position(_ token: String, in listing: PageTokenSealer.Listing) throws(GatewayError) -> [UInt8]? {
    if token.isEmpty { return nil }
    do {
      return try sealer.open(token, in: listing)
    } catch {
      switch error {
      case .malformed: throw .invalid("page_token", .malformed)
      case .otherListing: throw .invalid("page_token", .notFromThisListing)
      }
    }
  }
}
