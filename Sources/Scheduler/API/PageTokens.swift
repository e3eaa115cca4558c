import Foundation
import MaaSRuntime

/// The scheduler's page tokens: its two listings on the shared `PageTokenSealer` (opaque, bound
/// to the listing's filters, sealed under `MAAS_SCHEDULER_PAGE_TOKEN_SECRET`). A token given with
/// other filters, to the other listing, altered or forged is INVALID_ARGUMENT `page_token` rather
/// than the start of some other page.
public struct SchedulerPageTokens: Sendable {
  private let sealer: PageTokenSealer

  /// - Parameter secret: shared by every replica (tokens move between them).
  public init(secret: String) {
    self.sealer = PageTokenSealer(secret: secret, service: "scheduler")
  }

  /// ListNodes with these filters.
  static func nodes(state: Int, gpuModel: String, labels: [String: String]) -> PageTokenSealer.Listing {
    var filters = Canonical()
    filters.add(Int64(state))
    filters.add(gpuModel)
    filters.add(labels)
    return PageTokenSealer.Listing(kind: 1, filters: filters)
  }

  /// ListAllocations with these filters.
  static func allocations(tenant: String, node: String, state: AllocationState) -> PageTokenSealer.Listing {
    var filters = Canonical()
    filters.add(tenant)
    filters.add(node)
    filters.add(state == .released)
    return PageTokenSealer.Listing(kind: 2, filters: filters)
  }

  func token(afterNode name: String, in listing: PageTokenSealer.Listing) -> String {
    sealer.seal(Array(name.utf8), in: listing)
  }

  /// The node name after which the listing continues, if `token` is an unaltered one of `listing`.
  func nodePosition(_ token: String, in listing: PageTokenSealer.Listing) -> String? {
    guard let position = try? sealer.open(token, in: listing) else { return nil }
    return String(validating: position, as: UTF8.self)
  }

  func token(after allocation: Allocation, in listing: PageTokenSealer.Listing) -> String {
    let micros = Int64((allocation.createTime.timeIntervalSince1970 * 1_000_000).rounded())
    return sealer.seal(PositionBytes.of(micros) + PositionBytes.of(allocation.id), in: listing)
  }

  /// The (create time, id) after which the listing continues, if `token` is an unaltered one of
  /// `listing`.
  func allocationCursor(_ token: String, in listing: PageTokenSealer.Listing) -> (Date, UUID)? {
    guard let position = try? sealer.open(token, in: listing), let micros = PositionBytes.int64(position.prefix(8)),
      let id = PositionBytes.uuid(position.dropFirst(8))
    else { return nil }
    return (Date(timeIntervalSince1970: Double(micros) / 1_000_000), id)
  }
}
