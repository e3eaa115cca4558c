/// A bounded wait ran out: the thing waited for never happened. The bounds only keep a broken
/// build from hanging the run; no test asserts on how long anything took.
public struct TimedOut: Error, CustomStringConvertible {
  public var what: String

  public init(what: String) { self.what = what }

  public var description: String { "timed out waiting for \(self.what)" }
}

/// Waits until `condition` holds, checking every millisecond for up to `limit`, and says whether
/// it did. Tests assert on the answer, never on how long it took: the bound only keeps a broken
/// build from hanging the run.
public func waitUntil(within limit: Duration = .seconds(20), _ condition: () -> Bool) async -> Bool {
  let deadline = ContinuousClock.now + limit
  while !condition() {
    guard ContinuousClock.now < deadline else { return false }
    try? await Task.sleep(for: .milliseconds(1))
  }
  return true
}

/// As `waitUntil(within:_:)` for a condition that asks something (a database, a server) and may
/// fail: checks every few milliseconds, passes the condition's errors on, and throws `TimedOut`
/// naming `what` when the bound runs out.
public func waitUntil(
  _ what: String, within limit: Duration = .seconds(20), _ condition: () async throws -> Bool
) async throws {
  let deadline = ContinuousClock.now + limit
  while try await !condition() {
    guard ContinuousClock.now < deadline else { throw TimedOut(what: what) }
    try await Task.sleep(for: .milliseconds(5))
  }
}
