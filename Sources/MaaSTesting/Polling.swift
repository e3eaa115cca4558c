/// A bounded wait ran out: the thing waited for never happened. The bounds only keep a broken
/// build from hanging the run; no test asserts on how long anything took.
public struct TimedOut: Error, CustomStringConvertible {
  public var what: String

  public init(what: String) { self.what = what }

  public var description: String { "timed out waiting for \(self.what)" }
}

/// Waits until `condition` holds, checking every few milliseconds for up to `limit`, and throws
/// `TimedOut` naming `what` when it never did (`CancellationError` if the task is cancelled
/// first). The condition may ask something (a database, a server) and fail: its error ends the
/// wait.
public func waitUntil(
  _ what: String, within limit: Duration = .seconds(20), _ condition: () async throws -> Bool
) async throws {
  let deadline = ContinuousClock.now + limit
  while try await !condition() {
    guard ContinuousClock.now < deadline else { throw TimedOut(what: what) }
    try await Task.sleep(for: .milliseconds(5))
  }
}

/// As `waitUntil(_:within:_:)`, saying whether `condition` came to hold rather than throwing.
/// Tests assert on the answer, never on how long it took: the bound only keeps a broken build
/// from hanging the run.
public func waitUntil(within limit: Duration = .seconds(20), _ condition: () -> Bool) async -> Bool {
  do {
    try await waitUntil("a condition", within: limit, condition)
    return true
  } catch {
    // Out of time, or cancelled: one last look.
    return condition()
  }
}
