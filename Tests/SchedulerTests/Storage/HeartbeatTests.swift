import Foundation
import MaaSTesting
import Postgres
import Testing

@testable import Scheduler

/// Heartbeats on Postgres: what a node's silence and its heartbeats do, and heartbeats written
/// together in batches.
@Suite("Heartbeats on Postgres")
struct HeartbeatTests {
  /// A store with a 30 s grace on a fresh database, and the clock it reads, which the test moves.
  func withStore(named name: String, _ body: (MigratedDatabase, SchedulerStore, TestClock) async throws -> Void) async throws {
    try await withMigratedDatabase(named: name, plan: try SchedulerSchema.plan(serviceRole: "maas_app")) { db in
      let clock = TestClock()
      let store = SchedulerStore(
        pool: db.app, quota: InMemoryQuota(), heartbeatGrace: .seconds(30), logger: quietLogger, clock: clock.reading)
      try await body(db, store, clock)
    }
  }

  func recordedHeartbeat(_ db: MigratedDatabase, _ node: String) async throws -> Date {
    try await db.owner.query("SELECT last_heartbeat_time FROM scheduler.nodes WHERE name = $1", [node])[0].decode(Date.self, at: 0)
  }

  @Test("a node silent past the grace is NOT_READY, takes no placements and is listed so; its next heartbeat makes it READY again")
  func silenceAndReturn() async throws {
    try await withStore(named: "scheduler_heartbeat_silence") { db, store, clock in
      try await register(store, "a", gpus: 8)
      #expect(try await store.node("a").state == .ready)

      clock.advance(by: 31)
      #expect(try await store.node("a").state == .notReady)
      let silent = try await store.listNodes(after: "", limit: 10, state: .notReady, selector: [:], gpuModel: "")
      #expect(silent.map(\.node.name) == ["a"])
      await #expect {
        try await store.schedule(ScheduleCommand(tenantID: "t", workloadID: "w", request: exclusive(1, 1)))
      } throws: { error in
        guard case SchedulerError.capacityExhausted(let reason) = error else { return false }
        return reason.contains("1 not ready")
      }

      #expect(try await store.heartbeat("a") == .ready)
      #expect(try await store.node("a").state == .ready)
      #expect(try await recordedHeartbeat(db, "a") == clock.now)
      let allocation = try await store.schedule(ScheduleCommand(tenantID: "t", workloadID: "w", request: exclusive(1, 1)))
      #expect(allocation.placements.map(\.node) == ["a"])
    }
  }

  @Test("heartbeats arriving together are written in shared batches, each answering its own node's state; an unknown node is NOT_FOUND without failing the others")
  func batchesAnswerEachNode() async throws {
    try await withStore(named: "scheduler_heartbeat_batches") { db, store, clock in
      let names = (0..<20).map { String(format: "n-%02d", $0) }
      for name in names { try await register(store, name, gpus: 1) }
      _ = try await store.setCordon("n-03", cordoned: true, reason: "maintenance")
      clock.advance(by: 10)

      let senders = names.flatMap { Array(repeating: $0, count: 10) } + Array(repeating: "ghost", count: 5)
      let batchesBefore = store.heartbeatBatches.load(ordering: .relaxed)
      let answers = await withTaskGroup(of: (String, Result<NodeState, SchedulerError>).self) { group in
        for name in senders.shuffled() {
          group.addTask {
            do {
              return (name, .success(try await store.heartbeat(name)))
            } catch let error as SchedulerError {
              return (name, .failure(error))
            } catch {
              return (name, .failure(.invalidRequest([FieldViolation("unexpected", "\(error)")])))
            }
          }
        }
        return await group.reduce(into: []) { $0.append($1) }
      }
      let batches = store.heartbeatBatches.load(ordering: .relaxed) - batchesBefore

      #expect(answers.count == senders.count)
      for (name, answer) in answers {
        switch name {
        case "ghost": #expect(answer == .failure(.nodeNotFound("ghost")))
        case "n-03": #expect(answer == .success(.cordoned))
        default: #expect(answer == .success(.ready), "\(name)")
        }
      }
      #expect(batches < senders.count, "\(senders.count) heartbeats took \(batches) batches")
      for name in names { #expect(try await recordedHeartbeat(db, name) == clock.now) }
    }
  }

  @Test("a heartbeat stamped earlier than the one recorded (a late one, or another replica's clock) never moves it back")
  func neverMovesBack() async throws {
    try await withStore(named: "scheduler_heartbeat_back") { db, store, clock in
      try await register(store, "a", gpus: 8)
      clock.advance(by: 20)
      _ = try await store.heartbeat("a")
      let recorded = clock.now
      clock.advance(by: -15)
      #expect(try await store.heartbeat("a") == .ready)
      #expect(try await recordedHeartbeat(db, "a") == recorded)
    }
  }
}
