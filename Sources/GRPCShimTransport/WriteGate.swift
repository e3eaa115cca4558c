import Synchronization

/// Where a writer waits after the shim reported its write queue full (MAAS_GRPC_WRITE_BLOCKED)
/// until on_writable, or until the call ends.
///
/// The shim sends exactly one on_writable per BLOCKED, and it may arrive before the writer gets
/// here, so an early signal is remembered.
final class WriteGate: Sendable {
  private struct State {
    var signalled = false
    var closed = false
    var waiter: CheckedContinuation<Void, Never>?
  }

  private let state = Mutex(State())

  /// Returns once the queue has room again, the call has ended, or the task is cancelled.
  func waitUntilWritable() async {
    await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        let resumeNow = self.state.withLock { state in
          if state.signalled || state.closed || Task.isCancelled {
            state.signalled = false
            return true
          }
          state.waiter = continuation
          return false
        }
        if resumeNow { continuation.resume() }
      }
    } onCancel: {
      self.state.withLock { state in
        defer { state.waiter = nil }
        return state.waiter
      }?.resume()
    }
  }

  /// The queue has room (on_writable).
  func signal() {
    let waiter = self.state.withLock { state in
      guard let waiter = state.waiter else {
        state.signalled = true
        return nil as CheckedContinuation<Void, Never>?
      }
      state.waiter = nil
      return waiter
    }
    waiter?.resume()
  }

  /// The call has ended: wake the writer for good.
  func close() {
    let waiter = self.state.withLock { state in
      state.closed = true
      defer { state.waiter = nil }
      return state.waiter
    }
    waiter?.resume()
  }
}
