import MaaSRuntime
import ServiceLifecycle
import Synchronization
import Testing

@Suite("Periodic tasks")
struct PeriodicTaskTests {
  /// Runs a task with an hour between rounds in a service group, waits for its first round, then
  /// ends the group by `stop`; answers how many rounds ran in all.
  private func roundsRun(finalRound: Bool, stop: (ServiceGroup, Task<Void, any Error>) async -> Void) async throws -> Int {
    let rounds = Mutex(0)
    let (ran, roundRan) = AsyncStream.makeStream(of: Void.self)
    let task = PeriodicTask("counting", every: .seconds(3600), finalRound: finalRound, logger: quietLogger) {
      rounds.withLock { $0 += 1 }
      roundRan.yield()
    }
    let group = ServiceGroup(services: [task], logger: quietLogger)
    let running = Task { try await group.run() }
    defer { running.cancel() }
    try await withTimeout("the first round") {
      var iterator = ran.makeAsyncIterator()
      await iterator.next()
    }
    await stop(group, running)
    // Its result (a cancelled group may throw) does not matter; that it returns does.
    _ = try await withTimeout("the group to return") { await running.result }
    return rounds.withLock { $0 }
  }

  @Test("A task asked for a final round runs it once more at graceful shutdown, without waiting out its interval")
  func finalRoundAtGracefulShutdown() async throws {
    let rounds = try await roundsRun(finalRound: true) { group, _ in await group.triggerGracefulShutdown() }
    #expect(rounds == 2)
  }

  @Test("Without a final round, graceful shutdown ends the task after the rounds it ran")
  func noFinalRoundByDefault() async throws {
    let rounds = try await roundsRun(finalRound: false) { group, _ in await group.triggerGracefulShutdown() }
    #expect(rounds == 1)
  }

  @Test("A cancelled task runs no final round: cancelling means stop now")
  func noFinalRoundWhenCancelled() async throws {
    let rounds = try await roundsRun(finalRound: true) { _, running in running.cancel() }
    #expect(rounds == 1)
  }
}
