import Synchronization

/// A one-shot signal tasks can wait for: every `wait` before `fire` waits, every one after it
/// returns at once. Tests hold a call where it stands (a quota service that stopped answering,
/// a connection kept checked out) and let it go on later.
public final class Signal: Sendable {
  private let state = Mutex<(fired: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

  public init() {}

  /// Tasks waiting now.
  public var waiting: Int { self.state.withLock { $0.waiters.count } }

  public func fire() {
    let waiters = self.state.withLock { state in
      state.fired = true
      defer { state.waiters = [] }
      return state.waiters
    }
    for waiter in waiters { waiter.resume() }
  }

  public func wait() async {
    await withCheckedContinuation { continuation in
      let fired = self.state.withLock { state in
        if !state.fired { state.waiters.append(continuation) }
        return state.fired
      }
      if fired { continuation.resume() }
    }
  }
}
