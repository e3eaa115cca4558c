import Foundation
import MaaSTesting
import Testing
@testable import Scheduler

@Suite("The scheduler with a quota service that stops answering")
struct SlowQuotaTests {
  @Test("Schedules waiting on quota hold at most all but two of the pool's connections, so heartbeats and Releases go on; once quota answers, every Schedule is placed")
  func heartbeatsOutliveAHungQuota() async throws {
    try await withStore(named: "scheduler_slow_quota", gpus: 16) { store, quota, clock, db in
      let earlier = try await store.schedule(ScheduleCommand(tenantID: "t1", workloadID: "earlier", request: exclusive(1, 1)))
      let gate = Signal()
      // Whatever happens below: the pool cannot close while calls hold its connections.
      defer { gate.fire() }
      quota.beforeCommitting.withLock { $0 = { await gate.wait() } }
      let limit = store.commits.limit
      #expect(limit == db.app.configuration.maxConnections - 2)
      let schedules = (0..<db.app.configuration.maxConnections).map { index in
        Task { try await store.schedule(ScheduleCommand(tenantID: "t1", workloadID: "stuck-\(index)", request: exclusive(1, 1))) }
      }
      try await waitUntil("the share to fill with Schedules held at quota") {
        gate.waiting == limit && store.commits.waiting == schedules.count - limit
      }
      // Without the share these would wait out the acquire timeout, and the node would go silent.
      #expect(try await store.heartbeat("a") == .ready)
      let released = try await store.release(tenant: "t1", .id(earlier.id))
      #expect(released.state == .released)
      gate.fire()
      for schedule in schedules { #expect(try await schedule.value.state == .active) }
    }
  }
}
