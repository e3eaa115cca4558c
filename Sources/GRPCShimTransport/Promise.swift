import Synchronization

/// A value that arrives once, from any thread, and that any number of tasks can wait for. Package
/// wide: the runtime's metrics endpoint announces its port with one, as the transport does.
package final class Promise<Value: Sendable>: Sendable {
  private struct State {
    var result: Result<Value, any Error>?
    var waiters: [CheckedContinuation<Value, any Error>] = []
  }

  private let state = Mutex(State())

  package init() {}

  package func succeed(_ value: Value) { self.complete(.success(value)) }
  package func fail(_ error: any Error) { self.complete(.failure(error)) }

  /// Completes the promise; only the first completion counts.
  package func complete(_ result: Result<Value, any Error>) {
    let waiters = self.state.withLock { state in
      guard state.result == nil else { return [CheckedContinuation<Value, any Error>]() }
      state.result = result
      defer { state.waiters = [] }
      return state.waiters
    }
    for waiter in waiters { waiter.resume(with: result) }
  }

  /// The value, once it has arrived. Waiting does not end early when the task is cancelled: the
  /// promises here stand for events (a port bound, a server stopped) that always come.
  package var value: Value {
    get async throws {
      try await withCheckedThrowingContinuation { continuation in
        let result: Result<Value, any Error>? = self.state.withLock { state in
          if let result = state.result { return result }
          state.waiters.append(continuation)
          return nil
        }
        if let result { continuation.resume(with: result) }
      }
    }
  }
}

extension Promise where Value == Void {
  func valueIgnoringCancellation() async {
    try? await self.value
  }
}
