import MaaSTesting
import Synchronization
import Testing

@Suite("waitUntil waits for a condition, within a bound")
struct PollingTests {
  private struct Refused: Error {}

  @Test("a condition that comes to hold is waited for, and says so")
  func conditionThatComesToHold() async throws {
    let checks = Atomic(0)
    #expect(await waitUntil { checks.add(1, ordering: .relaxed).newValue >= 3 })
    try await waitUntil("the third check") { checks.add(1, ordering: .relaxed).newValue >= 6 }
    #expect(checks.load(ordering: .relaxed) == 6)
  }

  @Test("a condition that never holds answers false, or throws TimedOut naming what was waited for")
  func conditionThatNeverHolds() async throws {
    #expect(await waitUntil(within: .milliseconds(20)) { false } == false)
    let error = await #expect(throws: TimedOut.self) {
      try await waitUntil("the row to appear", within: .milliseconds(20)) { false }
    }
    #expect(error?.description == "timed out waiting for the row to appear")
  }

  @Test("a condition's own error ends the wait with that error")
  func conditionThatFails() async throws {
    await #expect(throws: Refused.self) {
      try await waitUntil("a refused check") { throw Refused() }
    }
  }
}
