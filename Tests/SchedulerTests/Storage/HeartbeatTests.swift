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

  @Test("ListNodes by state answers exactly the nodes in each state, page after page")
  func listingByState() async throws {
    try await withStore(named: "scheduler_list_by_state") { _, store, clock in
      let names = (0..<12).map { String(format: "n-%02d", $0) }
      for name in names { try await register(store, name, gpus: 1) }
      // n-00 to n-03 fall silent past the 30 s grace; the others heartbeat on.
      clock.advance(by: 20)
      for name in names.dropFirst(4) { _ = try await store.heartbeat(name) }
      clock.advance(by: 15)
      _ = try await store.setCordon("n-05", cordoned: true, reason: "maintenance")
      // Drained with nothing on it: CORDONED.
      _ = try await store.drain("n-06", reason: "move")
      // Drained while holding an allocation: DRAINING.
      let allocation = try await store.schedule(ScheduleCommand(tenantID: "t", workloadID: "w", request: exclusive(1, 1)))
      let holder = allocation.placements[0].node
      _ = try await store.drain(holder, reason: "move")

      func listed(_ state: NodeState) async throws -> [String] {
        var seen: [String] = []
        while true {
          let page = try await store.listNodes(after: seen.last ?? "", limit: 2, state: state, selector: [:], gpuModel: "")
          if page.isEmpty { return seen }
          #expect(page.allSatisfy { $0.state == state })
          seen += page.map(\.node.name)
        }
      }
      let silent = Array(names.prefix(4))
      #expect(try await listed(.notReady) == silent)
      #expect(try await listed(.draining) == [holder])
      #expect(try await listed(.cordoned) == ["n-05", "n-06"])
      #expect(try await listed(.ready) == names.filter { !silent.contains($0) && !["n-05", "n-06", holder].contains($0) })
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
