import Synchronization

/// Runs an operation one at a time, and lets callers share a run instead of each starting their
/// own: a caller joins the run that has not started yet, if there is one (it starts after the
/// caller arrived, so it sees everything committed before the call), or queues a new one behind
/// the last. Used for index loads: any number of callers wanting a fresh index at once cost at
/// most two loads (the one running and the one they share).
final class SharedRun: Sendable {
  private struct State {
    /// The run that has not started yet.
    var waiting: (id: Int, task: Task<Void, any Error>)?
    /// The last run queued, started or not: the next one starts after it ends.
    var last: Task<Void, any Error>?
    var nextID = 0
  }
  private let state = Mutex(State())

  /// Waits for a run of `operation` that starts after this call; throws what that run threw.
  func run(_ operation: @escaping @Sendable () async throws -> Void) async throws {
    let task = state.withLock { state -> Task<Void, any Error> in
      if let waiting = state.waiting { return waiting.task }
      let id = state.nextID
      state.nextID += 1
      let previous = state.last
      let task = Task {
        _ = await previous?.result
        self.state.withLock { state in if state.waiting?.id == id { state.waiting = nil } }
        try await operation()
      }
      state.waiting = (id, task)
      state.last = task
      return task
    }
    try await task.value
  }
}
