import Foundation
import MaaSTesting
@testable import Scheduler
import Testing

@Suite("Quota holds that Release could not give back")
struct QuotaReleaseRetryTests {
  @Test("a hold the quota service could not take back at Release is given back later, once, when it is up again")
  func retriedInTheBackground() async throws {
    try await withStore(named: "scheduler_quota_retry", gpus: 2) { store, quota, clock in
      let allocation = try await store.schedule(ScheduleCommand(tenantID: "t1", workloadID: "w", request: exclusive(1, 2)))
      #expect(quota.inUse("t1") == 2)

      quota.setDown(true)
      let released = try await store.release(tenant: "t1", .id(allocation.id))
      #expect(released.state == .released)
      #expect(quota.inUse("t1") == 2, "the quota service was down: the hold stays")
      // The GPUs are free at once all the same.
      #expect(store.capacity(gpuModel: "H100-80GB", selector: [:]).first?.freeGPUs == 2)

      // Too young: the Release that failed might still be giving it back.
      clock.advance(by: 10)
      quota.setDown(false)
      #expect(try await store.releaseDueQuota(olderThan: .seconds(30)) == 0)
      #expect(quota.inUse("t1") == 2)

      // Old enough, but the quota service is down again: kept for the next round.
      clock.advance(by: 30)
      quota.setDown(true)
      #expect(try await store.releaseDueQuota(olderThan: .seconds(30)) == 0)

      quota.setDown(false)
      #expect(try await store.releaseDueQuota(olderThan: .seconds(30)) == 1)
      #expect(quota.inUse("t1") == 0)
      #expect(try await store.releaseDueQuota(olderThan: .seconds(30)) == 0, "given back once")
    }
  }

  @Test("Releases of several tenants at once each record that their hold was given back, so the retry gives none back again")
  func concurrentReleasesAreMarked() async throws {
    try await withStore(named: "scheduler_quota_marks", gpus: 8) { store, quota, clock in
      let tenants = (0..<8).map { "t\($0)" }
      var allocations: [(String, UUID)] = []
      for tenant in tenants {
        let allocation = try await store.schedule(ScheduleCommand(tenantID: tenant, workloadID: "w", request: exclusive(1, 1)))
        allocations.append((tenant, allocation.id))
      }

      try await withThrowingTaskGroup(of: Void.self) { group in
        for (tenant, id) in allocations {
          group.addTask { _ = try await store.release(tenant: tenant, .id(id)) }
        }
        try await group.waitForAll()
      }

      #expect(tenants.allSatisfy { quota.inUse($0) == 0 })
      clock.advance(by: 60)
      #expect(try await store.releaseDueQuota(olderThan: .seconds(30)) == 0, "every Release's mark was written")
    }
  }

  @Test("a Release's mark waits for the next flush, which writes it once; the retry flushes before it looks")
  func marksAreWrittenByTheFlush() async throws {
    try await withStore(named: "scheduler_quota_flush", gpus: 2) { store, quota, clock in
      let first = try await store.schedule(ScheduleCommand(tenantID: "t1", workloadID: "w1", request: exclusive(1, 1)))
      let second = try await store.schedule(ScheduleCommand(tenantID: "t2", workloadID: "w2", request: exclusive(1, 1)))
      _ = try await store.release(tenant: "t1", .id(first.id))
      _ = try await store.release(tenant: "t2", .id(second.id))
      #expect(quota.inUse("t1") == 0 && quota.inUse("t2") == 0)
      #expect(store.pendingQuotaMarkCount == 2)

      #expect(try await store.flushQuotaMarks() == 2, "both tenants' allocations marked in one statement")
      #expect(store.pendingQuotaMarkCount == 0)
      #expect(try await store.flushQuotaMarks() == 0)

      let third = try await store.schedule(ScheduleCommand(tenantID: "t1", workloadID: "w3", request: exclusive(1, 1)))
      _ = try await store.release(tenant: "t1", .id(third.id))
      clock.advance(by: 60)
      #expect(try await store.releaseDueQuota(olderThan: .seconds(30)) == 0, "the pending mark was written first")
      #expect(store.pendingQuotaMarkCount == 0)
    }
  }

  @Test("a Release is two round trips to Postgres: its mark goes with the next flush")
  func releaseIsTwoRoundTrips() async throws {
    try await withStore(named: "scheduler_release_round_trips", gpus: 1) { store, _, _ in
      let allocation = try await store.schedule(ScheduleCommand(tenantID: "t1", workloadID: "w", request: exclusive(1, 1)))
      let before = store.pool.roundTrips
      _ = try await store.release(tenant: "t1", .id(allocation.id))
      #expect(store.pool.roundTrips - before == 2, "lock the allocation and its GPUs, then the write with COMMIT")
    }
  }

  /// A store on a fresh database, with a quota in memory, a clock the test moves, and one node
  /// "a" of `gpus` H100s.
  private func withStore(
    named name: String, gpus: Int, _ body: (SchedulerStore, InMemoryQuota, TestClock) async throws -> Void
  ) async throws {
    try await withMigratedDatabase(named: name, plan: try SchedulerSchema.plan(serviceRole: "maas_app")) { db in
      let quota = InMemoryQuota()
      let clock = TestClock()
      let store = SchedulerStore(pool: db.app, quota: quota, heartbeatGrace: .seconds(3600), logger: quietLogger, clock: clock.reading)
      _ = try await store.registerNode(
        try RegisterNodeCommand.validate(name: "a", labels: [:], gpus: (0..<gpus).map { gpu("a-g\($0)") }).get())
      try await body(store, quota, clock)
    }
  }
}
