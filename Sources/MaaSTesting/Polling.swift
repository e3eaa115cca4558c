/// Waits until `condition` holds, checking every millisecond for up to 20 s, and says whether
/// it did. Tests assert on the answer, never on how long it took: the bound only keeps a broken
/// build from hanging the run.
public func waitUntil(_ condition: () -> Bool) async -> Bool {
  for _ in 0..<20_000 where !condition() { try? await Task.sleep(for: .milliseconds(1)) }
  return condition()
}
