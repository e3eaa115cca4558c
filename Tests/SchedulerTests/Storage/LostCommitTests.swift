import Foundation
import MaaSTesting
import Postgres
import PostgresMigrations
@testable import Scheduler
import Testing

/// A Schedule whose connection fails around COMMIT cannot tell whether its allocation was written.
/// Its quota hold must follow the allocation: kept when the write landed, given back when it did
/// not, and kept (not guessed) while the database cannot be asked, until its quota intent, once
/// older than the grace, settles it.
@Suite("Schedules that lose their COMMIT outcome")
struct LostCommitTests {
  @Test("a Schedule whose database goes down before its write keeps its hold, and its quota intent gives it back once the database is up")
  func heldUntilSettledThenGivenBack() async throws {
    let clock = TestClock()
    try await withPrivateStore(named: "lost-commit-down", clock: clock) { cluster, store, quota, _ in
      _ = try await store.registerNode(try RegisterNodeCommand.validate(name: "a", labels: [:], gpus: [gpu("a-g0"), gpu("a-g1")]).get())
      quota.beforeCommitting.withLock { $0 = { try await cluster.stop() } }
      let command = ScheduleCommand(tenantID: "t1", workloadID: "w", request: exclusive(1, 2))
      await #expect(throws: PostgresError.self) { try await store.schedule(command) }
      quota.beforeCommitting.withLock { $0 = nil }
      #expect(quota.inUse("t1") == 2, "the outcome could not be looked up: the hold stays")

      clock.advance(by: 600)
      await #expect(throws: (any Error).self, "still down: nothing is decided") {
        try await store.reconcileQuotaIntents(olderThan: .seconds(300))
      }
      #expect(quota.inUse("t1") == 2)

      try await cluster.start()
      #expect(try await store.reconcileQuotaIntents(olderThan: .seconds(300)).givenBack == 1)
      #expect(quota.inUse("t1") == 0, "nothing was written, so the hold is given back")
      // And the workload can be scheduled afresh on the GPUs nothing holds.
      let again = try await store.schedule(command)
      #expect(again.placements.flatMap(\.claims).count == 2)
    }
  }

  @Test("a Schedule whose write landed keeps its allocation and its hold, looked up at once or settled later")
  func landedKeepsTheHold() async throws {
    let clock = TestClock()
    try await withPrivateStore(named: "lost-commit-landed", clock: clock) { cluster, store, quota, _ in
      _ = try await store.registerNode(try RegisterNodeCommand.validate(name: "a", labels: [:], gpus: [gpu("a-g0"), gpu("a-g1")]).get())
      let command = ScheduleCommand(tenantID: "t1", workloadID: "w", request: exclusive(1, 1))
      let written = try await store.schedule(command)

      // As if the answer to COMMIT had been lost: looked up at once, the allocation is the answer.
      let landed = await store.settleLostCommit(command, reservation: written.quotaReservationID)
      #expect(landed?.id == written.id)
      #expect(quota.isHeld(written.quotaReservationID))

      // The database down at the time: nothing decided, the hold kept.
      try await cluster.stop()
      #expect(await store.settleLostCommit(command, reservation: written.quotaReservationID) == nil)
      #expect(quota.isHeld(written.quotaReservationID))
      try await cluster.start()
      clock.advance(by: 600)
      let round = try await store.reconcileQuotaIntents(olderThan: .seconds(300))
      #expect(round.settled == 1 && round.givenBack == 0)
      #expect(quota.isHeld(written.quotaReservationID), "the allocation was written: its hold stays with it")
    }
  }

  @Test("a hold whose Schedule wrote nothing is given back when looked up at once")
  func notLandedGivenBackAtOnce() async throws {
    try await withPrivateStore(named: "lost-commit-absent") { _, store, quota, _ in
      let command = ScheduleCommand(tenantID: "t1", workloadID: "w", request: exclusive(1, 1))
      let reservation = try await quota.reserve(tenant: "t1", stock: .concurrentGPUs, amount: 1, ttl: .seconds(60), idempotencyKey: "k")
      #expect(await store.settleLostCommit(command, reservation: reservation) == nil)
      #expect(!quota.isHeld(reservation))
    }
  }
}

@Suite("Quota a Schedule took and could not give back")
struct UnreturnedQuotaTests {
  @Test("quota taken by a Schedule whose workload another replica placed first, with the quota service down, is given back later by its intent")
  func givenBackWhenQuotaIsUp() async throws {
    try await withStore(named: "scheduler_unreturned_quota", gpus: 2) { store, quota, clock, db in
      let command = ScheduleCommand(tenantID: "t1", workloadID: "w", request: exclusive(1, 1))
      // Once the Schedule has taken its quota, another replica's allocation of the same workload
      // commits (written here behind the store's back, holding no GPU), and the quota service
      // goes down: the write fails on the workload's unique index and the quota cannot go back.
      let request = String(decoding: try JSONEncoder().encode(command.request), as: UTF8.self)
      quota.beforeCommitting.withLock { hook in
        hook = {
          _ = try await db.owner.execute(
            """
            INSERT INTO scheduler.allocations (id, tenant_id, workload_id, request, priority, placements, state, quota_reservation_id, create_time)
            VALUES (gen_random_uuid(), 't1', 'w', $1::jsonb, 0, '[]', 1, 'another replica', now())
            """, [request])
          quota.setDown(true)
        }
      }
      let answered = try await store.schedule(command)
      quota.beforeCommitting.withLock { $0 = nil }
      #expect(answered.quotaReservationID == "another replica", "the Schedule answers the allocation that won")
      #expect(quota.inUse("t1") == 1, "its own quota could not be given back yet")

      clock.advance(by: 600)
      #expect(try await store.reconcileQuotaIntents(olderThan: .seconds(300)).skipped == 1, "the quota service is still down")
      #expect(quota.inUse("t1") == 1)
      quota.setDown(false)
      #expect(try await store.reconcileQuotaIntents(olderThan: .seconds(300)).givenBack == 1)
      #expect(quota.inUse("t1") == 0)
    }
  }
}

/// A scheduler store on a cluster of the test's own (which it may stop and start), with the
/// schema migrated and a pool that reconnects quickly (also given, for a second store on it).
func withPrivateStore(
  named name: String, clock: TestClock = TestClock(), _ body: (PostgresTestCluster, SchedulerStore, InMemoryQuota, PostgresPool) async throws -> Void
) async throws {
  let cluster = try await PostgresFixture.privateCluster(named: name)
  do {
    let database = try await cluster.createDatabase(named: "scheduler")
    let owner = try PostgresPool(
      configuration: PostgresConfiguration(url: database.ownerURL, minConnections: 0, maxConnections: 2), logger: quietLogger)
    try await Migrator(pool: owner, logger: quietLogger).apply(try SchedulerSchema.plan(serviceRole: "maas_app"))
    await owner.close()
    var configuration = PostgresConfiguration(url: database.appURL, minConnections: 0, maxConnections: 4, acquireTimeout: .seconds(5))
    configuration.reconnectBackoff = PostgresBackoff(initial: .milliseconds(20), maximum: .milliseconds(200))
    let app = try PostgresPool(configuration: configuration, logger: quietLogger)
    let quota = InMemoryQuota()
    let store = SchedulerStore(pool: app, quota: quota, heartbeatGrace: .seconds(3600), logger: quietLogger, clock: clock.reading)
    do {
      try await body(cluster, store, quota, app)
      await app.close()
    } catch {
      await app.close()
      throw error
    }
    try await cluster.destroy()
  } catch {
    try? await cluster.destroy()
    throw error
  }
}
