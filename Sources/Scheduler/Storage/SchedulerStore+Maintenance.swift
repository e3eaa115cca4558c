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
    // Holds given back but not yet marked so are not due: mark them first.
    try await flushQuotaMarks()
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
      if await releaseQuota(allocation) { released += 1 }
    }
    try await flushQuotaMarks()
    return released
  }

  /// Writes the marks of quota holds given back since the last flush (`releaseQuota` queues
  /// them): one statement for every tenant's, without waiting for the WAL flush. Marks that could
  /// not be written are queued again. Returns how many allocations were marked.
  ///
  /// Why not at Release: a transaction per Release only for this flag cost about 7% of the
  /// scheduler's CPU per placement in the bench. A mark lost in a crash before its flush costs one repeated quota
  /// release (its idempotency key makes that harmless), which `releaseDueQuota` does once the
  /// allocation is older than its age.
  /// - Throws: a database error.
  @discardableResult
  public func flushQuotaMarks() async throws -> Int {
    let ids = pendingQuotaMarks.withLock { pending in
      defer { pending.removeAll() }
      return pending
    }
    guard !ids.isEmpty else { return 0 }
    do {
      let marked = try await pool.transaction { tx in
        try await tx.queryAndCommit(
          "SELECT scheduler.mark_quota_released($1), set_config('synchronous_commit', 'off', true)", [ids]
        )[0].decode(Int32.self, at: 0)
      }
      return Int(marked)
    } catch {
      pendingQuotaMarks.withLock { $0.insert(contentsOf: ids, at: 0) }
      throw error
    }
  }

  /// Deletes RELEASED allocations released more than `age` ago whose quota hold was given back,
  /// every tenant's, `batch` at a time until none is left. Returns how many. Afterwards a
  /// repeated Release or GetAllocation of one answers NOT_FOUND.
  ///
  /// Each placement leaves a RELEASED row; without this the table grows for good.
  /// - Throws: a database error (what earlier batches deleted stays deleted).
  public func purgeReleasedAllocations(olderThan age: Duration, batch: Int = 1_000) async throws -> Int {
    let cutoff = currentTime().addingTimeInterval(-age.seconds)
    var purged = 0
    while true {
      let deleted = try await pool.query(
        "SELECT scheduler.purge_released_allocations($1, $2)", [cutoff, Int32(clamping: batch)]
      )[0].decode(Int32.self, at: 0)
      purged += Int(deleted)
      if deleted < batch { return purged }
    }
  }

  /// How many quota holds given back wait for `flushQuotaMarks` to be marked.
  public var pendingQuotaMarkCount: Int { pendingQuotaMarks.withLock { $0.count } }
}
