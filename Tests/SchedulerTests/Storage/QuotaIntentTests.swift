import Foundation
import GRPCCore
import MaaSContracts
import MaaSTesting
import Postgres
import Quota
import QuotaClient
@testable import Scheduler
import Testing

/// A replica that stops inside a Schedule, after the quota service took its quota and before its
/// COMMIT, leaves a hold that no allocation accounts for. Its quota intent lets any replica give
/// that hold back once no live Schedule can still own it.
@Suite("Quota intents of Schedules whose replica stopped")
struct QuotaIntentTests {
  typealias Round = SchedulerStore.IntentRound

  @Test("a replica that stops between taking the quota and COMMIT leaves an intent; after the grace another replica gives the hold back, once")
  func stoppedReplicasHoldIsGivenBack() async throws {
    try await withPrivateStore(named: "quota-intent-stopped") { cluster, store, quota, app in
      _ = try await store.registerNode(try RegisterNodeCommand.validate(name: "a", labels: [:], gpus: [gpu("a-g0"), gpu("a-g1")]).get())
      quota.beforeCommitting.withLock { $0 = { try await cluster.stop() } }
      let command = ScheduleCommand(tenantID: "t1", workloadID: "w", request: exclusive(1, 2))
      await #expect(throws: PostgresError.self) { try await store.schedule(command) }
      quota.beforeCommitting.withLock { $0 = nil }
      // The replica stops here: the hold it remembered in memory is gone with it.
      #expect(quota.inUse("t1") == 2)
      try await cluster.start()

      let clock = TestClock()
      let restarted = SchedulerStore(pool: app, quota: quota, heartbeatGrace: .seconds(3600), logger: quietLogger, clock: clock.reading)
      clock.advance(by: 60)
      #expect(try await restarted.reconcileQuotaIntents(olderThan: .seconds(300)) == Round(), "younger than the grace: its Schedule may be running")
      #expect(quota.inUse("t1") == 2)

      clock.advance(by: 300)
      #expect(try await restarted.reconcileQuotaIntents(olderThan: .seconds(300)) == Round(settled: 0, givenBack: 1, skipped: 0))
      #expect(quota.inUse("t1") == 0)
      #expect(try await restarted.reconcileQuotaIntents(olderThan: .seconds(300)) == Round(), "given back once")
      // The workload places afresh on the GPUs nothing holds.
      #expect(try await restarted.schedule(command).placements.flatMap(\.claims).count == 2)
    }
  }

  @Test("a Schedule that writes its allocation leaves an intent the loop deletes without asking the quota service; one that writes nothing deletes its own")
  func writtenAllocationsSettleWithoutQuotaCalls() async throws {
    try await withIntentStore(named: "scheduler_intents_settle") { store, quota, clock, owner in
      let placed = try await store.schedule(ScheduleCommand(tenantID: "t1", workloadID: "w", request: exclusive(1, 1)))
      #expect(try await intents(owner) == [placed.id])

      // The same workload again finds it placed; another over the quota is refused.
      _ = try await store.schedule(ScheduleCommand(tenantID: "t1", workloadID: "w", request: exclusive(1, 1)))
      quota.setLimit(1)
      await #expect(throws: SchedulerError.self) {
        try await store.schedule(ScheduleCommand(tenantID: "t1", workloadID: "w2", request: exclusive(1, 1)))
      }
      #expect(try await intents(owner) == [placed.id], "neither leaves an intent")

      let reserves = quota.reserveCalls
      clock.advance(by: 301)
      #expect(try await store.reconcileQuotaIntents(olderThan: .seconds(300)) == Round(settled: 1, givenBack: 0, skipped: 0))
      #expect(quota.reserveCalls == reserves, "a written allocation needs no quota call")
      #expect(quota.isHeld(placed.quotaReservationID))
      #expect(try await intents(owner) == [])
    }
  }

  @Test("a Schedule's intent goes with its transaction's first round trip: two round trips to Postgres in all")
  func intentGoesWithTheFirstRoundTrip() async throws {
    try await withIntentStore(named: "scheduler_intents_round_trips") { store, _, _, owner in
      // The first loads the index; the second is a Schedule as the hot path makes it.
      _ = try await store.schedule(ScheduleCommand(tenantID: "t1", workloadID: "w1", request: exclusive(1, 1)))
      let before = store.pool.roundTrips
      let placed = try await store.schedule(ScheduleCommand(tenantID: "t1", workloadID: "w2", request: exclusive(1, 1)))
      #expect(store.pool.roundTrips - before == 2, "the intent with the GPU locks, then the write with COMMIT")
      #expect(try await intents(owner).contains(placed.id))
    }
  }

  @Test("an intent whose Schedule still holds its lock is left alone until that transaction ends")
  func lockedIntentIsSkipped() async throws {
    try await withIntentStore(named: "scheduler_intents_locked") { store, quota, clock, owner in
      let command = ScheduleCommand(tenantID: "t1", workloadID: "w", request: exclusive(1, 1))
      let id = UUID()
      try await store.writeQuotaIntent(id, for: command)
      let reservation = try await store.acquireQuota(command, for: id)
      clock.advance(by: 301)

      let (lockClass, lockKey) = SchedulerStore.intentLock(for: id)
      let whileLocked = try await owner.transaction { tx in
        _ = try await tx.query("SELECT pg_advisory_xact_lock($1, $2)", [lockClass, lockKey])
        return try await store.reconcileQuotaIntents(olderThan: .seconds(300))
      }
      #expect(whileLocked == Round(settled: 0, givenBack: 0, skipped: 1))
      #expect(quota.isHeld(reservation))

      #expect(try await store.reconcileQuotaIntents(olderThan: .seconds(300)) == Round(settled: 0, givenBack: 1, skipped: 0))
      #expect(!quota.isHeld(reservation))
    }
  }

  @Test("a Schedule whose intent the loop has already settled writes nothing and takes no quota")
  func settledIntentStopsTheSchedule() async throws {
    try await withIntentStore(named: "scheduler_intents_gone") { store, quota, _, owner in
      let command = ScheduleCommand(tenantID: "t1", workloadID: "w", request: exclusive(1, 1))
      // As if its intent had been written, and deleted by the loop after the grace.
      let taken = TakenQuota()
      taken.recordIntent()
      let placements = try store.index.assume { store.engine.place(command.request, in: $0, at: epoch) }.get()
      await #expect(throws: SchedulerError.intentSettled) { try await store.commit(command, placements, id: UUID(), quotaTaken: taken) }
      #expect(quota.inUse("t1") == 0)
      #expect(try await owner.query("SELECT count(*) FROM scheduler.allocations", [])[0].decode(Int.self, at: 0) == 0)
    }
  }

  @Test("the hold a stopped Schedule took at the real quota service is found under its key and given back, and the tenant places again")
  func realQuotaServiceHoldIsGivenBack() async throws {
    try await withMigratedDatabase(named: "scheduler_intents_q", plan: try QuotaSchema.plan(serviceRole: "maas_app")) { quotaDB in
      let quotaService = QuotaRPCService(store: QuotaStore(pool: quotaDB.app, policy: QuotaPolicy(), logger: quietLogger), logger: quietLogger)
      try await withLoopbackServer(services: [quotaService]) { quotaClient, quotaServer in
        let quota = Maas_Quota_V1_Quota.Client(wrapping: quotaClient)
        _ = try await quota.setLimits(.with {
          $0.tenantID = "acme"
          $0.limits = [.with { $0.resource = .concurrentGpus; $0.value = 2 }]
          $0.idempotencyKey = "register"
        })
        func concurrentGPUs() async throws -> (Int64, Int64) {
          let line = try await quota.getQuota(.with { $0.tenantID = "acme" }).resources.first { $0.resource == .concurrentGpus }!
          return (line.used, line.reserved)
        }
        try await withMigratedDatabase(named: "scheduler_intents_s", plan: try SchedulerSchema.plan(serviceRole: "maas_app")) { db in
          let clock = TestClock()
          let store = SchedulerStore(
            pool: db.app, quota: GRPCQuotaGate(channel: quotaServer.clientTransport), heartbeatGrace: .seconds(3600), logger: quietLogger, clock: clock.reading)
          _ = try await store.registerNode(try RegisterNodeCommand.validate(name: "a", labels: [:], gpus: [gpu("a-g0"), gpu("a-g1")]).get())
          let command = ScheduleCommand(tenantID: "acme", workloadID: "llama", request: exclusive(1, 2))
          // What a replica that stopped inside this Schedule left: its intent, and the quota it
          // took under its key.
          let id = UUID()
          try await store.writeQuotaIntent(id, for: command)
          _ = try await store.acquireQuota(command, for: id)
          #expect(try await concurrentGPUs() == (2, 0))
          await #expect(throws: SchedulerError.self, "the stranded hold fills the limit") { try await store.schedule(command) }

          clock.advance(by: 301)
          #expect(try await store.reconcileQuotaIntents(olderThan: .seconds(300)) == Round(settled: 0, givenBack: 1, skipped: 0))
          #expect(try await concurrentGPUs() == (0, 0))
          #expect(try await store.schedule(command).placements.count == 1)
          #expect(try await concurrentGPUs() == (2, 0))
        }
      }
    }
  }

  /// A store on a fresh database with a quota in memory, a clock the test moves, one node "a" of
  /// two H100s, and the owner's pool for looking behind the store's back.
  private func withIntentStore(
    named name: String, _ body: (SchedulerStore, InMemoryQuota, TestClock, PostgresPool) async throws -> Void
  ) async throws {
    try await withStore(named: name, gpus: 2) { store, quota, clock, db in try await body(store, quota, clock, db.owner) }
  }

  /// The allocation ids of every quota intent.
  private func intents(_ owner: PostgresPool) async throws -> [UUID] {
    try await owner.query("SELECT allocation_id FROM scheduler.quota_intents ORDER BY create_time", []).map { try $0.decode(UUID.self, at: 0) }
  }
}

extension SchedulerStore {
  /// Commits a Schedule's quota intent on its own, as `commit` does ahead of its transaction: a
  /// replica that stopped right after it.
  fileprivate func writeQuotaIntent(_ id: UUID, for command: ScheduleCommand) async throws {
    let intent = quotaIntent(id, for: command)
    _ = try await pool.transaction(tenant: command.tenantID) { tx in try await tx.queryAndCommit(intent.sql, intent.parameters) }
  }
}
