import Foundation
import Postgres

extension RegistryStore {
  /// Releases quota reservations of deleted rows that are still pending: their release failed
  /// at delete time (the quota service was unreachable) or the process stopped before it. Only
  /// entries older than `age` are taken, so a delete's own release after its commit is not
  /// raced. Returns how many were released.
  ///
  /// Releasing twice is harmless: the quota service's Release of a released reservation returns
  /// it unchanged, and the key is the same.
  /// - Throws: a database error.
  public func releasePendingReservations(olderThan age: Duration = .seconds(30), limit: Int = 100) async throws -> Int {
    let cutoff = clock.now().addingTimeInterval(-Double(age.components.seconds))
    let rows = try await pool.query(
      "SELECT tenant_id, reservation_id FROM registry.due_releases($1, $2)", [cutoff, Int32(clamping: limit)])
    var byTenant: [String: [String]] = [:]
    for row in rows {
      byTenant[try row.decode(String.self, column: "tenant_id"), default: []].append(
        try row.decode(String.self, column: "reservation_id"))
    }
    var released = 0
    for (tenant, ids) in byTenant.sorted(by: { $0.key < $1.key }) {
      var done: [String] = []
      for id in ids where await self.release(tenant: tenant, id) { done.append(id) }
      await self.clearPendingReleases(tenant: tenant, done)
      released += done.count
    }
    return released
  }
}
