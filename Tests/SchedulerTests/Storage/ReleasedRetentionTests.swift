import Foundation
import MaaSTesting
@testable import Scheduler
import Testing

/// RELEASED allocations past the retention are deleted; nothing else is.
@Suite("Released allocations past the retention")
struct ReleasedRetentionTests {
  @Test("the purge deletes every tenant's allocations released before the cutoff whose hold was given back, in batches, and keeps ACTIVE, younger and still-held ones")
  func purgeKeepsWhatItMust() async throws {
    try await withStore(named: "scheduler_released_retention", gpus: 8) { store, quota, clock, db in
      func place(_ tenant: String, _ workload: String) async throws -> Allocation {
        try await store.schedule(ScheduleCommand(tenantID: tenant, workloadID: workload, request: exclusive(1, 1)))
      }

      // Released two days ago, holds given back: two of t1's and one of t2's.
      let old = [try await place("t1", "old-1"), try await place("t1", "old-2"), try await place("t2", "old-3")]
      for allocation in old { _ = try await store.release(tenant: allocation.tenantID, .id(allocation.id)) }
      // Released as long ago, but the quota service was down: its hold is the retry's to give back.
      let held = try await place("t1", "held")
      quota.setDown(true)
      _ = try await store.release(tenant: "t1", .id(held.id))
      quota.setDown(false)
      let active = try await place("t1", "active")
      try await store.flushQuotaMarks()

      clock.advance(by: 2 * 86_400)
      _ = try await store.heartbeat("a")
      let young = try await place("t2", "young")
      _ = try await store.release(tenant: "t2", .id(young.id))
      try await store.flushQuotaMarks()

      #expect(try await store.purgeReleasedAllocations(olderThan: .seconds(86_400), batch: 2) == 3)
      for allocation in old {
        await #expect(throws: SchedulerError.allocationNotFound("with allocation_id \"\(allocation.id.uuidString.lowercased())\"")) {
          try await store.allocation(tenant: allocation.tenantID, .id(allocation.id))
        }
        await #expect(throws: SchedulerError.allocationNotFound("with allocation_id \"\(allocation.id.uuidString.lowercased())\"")) {
          try await store.release(tenant: allocation.tenantID, .id(allocation.id))
        }
      }
      #expect(try await store.allocation(tenant: "t1", .id(held.id)).state == .released)
      #expect(try await store.allocation(tenant: "t1", .id(active.id)).state == .active)
      #expect(try await store.allocation(tenant: "t2", .id(young.id)).state == .released)
      #expect(try await store.purgeReleasedAllocations(olderThan: .seconds(86_400)) == 0)
      let remaining = try await db.owner.query("SELECT count(*) FROM scheduler.allocations", [])[0].decode(Int64.self, at: 0)
      #expect(remaining == 3)
    }
  }
}
