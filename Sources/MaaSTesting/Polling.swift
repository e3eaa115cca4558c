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
