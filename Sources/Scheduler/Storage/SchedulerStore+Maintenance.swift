import Foundation
import Postgres

extension SchedulerStore {
  /// Gives back the quota holds of released allocations that are still held: their release
  /// failed at Release time (the quota service was unreachable) or the process stopped before
  /// it. Only allocations released more than `age` ago are taken, so that a Release's own quota
  /// release is not raced. Returns how many were given back.
  ///
  /// Releasing twice is harmless: the key is the same, and the quota service answers a released
  /// reservation unchanged.
  /// - Throws: a database error.
  public func releaseDueQuota(olderThan age: Duration, limit: Int = 100) async throws -> Int {
    let cutoff = currentTime().addingTimeInterval(-age.seconds)
    let due = try await pool.query(
      "SELECT tenant_id, id FROM scheduler.due_quota_releases($1, $2)", [cutoff, Int32(clamping: limit)])
    var released = 0
    for row in due {
      let tenant = try row.decode(String.self, at: 0)
      let id = try row.decode(UUID.self, at: 1)
      let found = try await pool.transaction(tenant: tenant, readOnly: true) { tx in
        try await Self.allocation(tx, tenant: tenant, .id(id), lock: false)
      }
      guard let allocation = found?.allocation else { continue }
      if try await releaseQuota(allocation) { released += 1 }
    }
    return released
  }
}
