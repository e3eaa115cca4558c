import Synchronization

/// A share of a pool's connections for work that holds one while it waits on something else
/// (a transaction that calls another service inside it).
///
/// When that other service hangs, such work holds its connection for as long as the call may
/// take, and enough of it takes the whole pool: then reads and heartbeats, which wait on nothing,
/// fail too. Running such work through a share keeps `reserved` connections for everything
/// else: at most `limit` of its bodies run at once, and the others wait first come, first served,
/// for at most the pool's acquire timeout, then get `.poolExhausted` (which the services answer
/// UNAVAILABLE), as a caller of the pool itself would.
///
/// ```swift
/// let quotaBound = ConnectionShare(of: pool)  // all but `reservedForReads` connections
/// try await quotaBound.run { try await pool.transaction(tenant: tenant) { tx in ... } }
/// ```
public final class ConnectionShare: Sendable {
  /// Connections the services keep from their share for work that waits on nothing else.
  public static let reservedForReads = 2

  /// Bodies that may run at once.
  public let limit: Int
  /// How long a body waits for its turn.
  public let timeout: Duration

  private struct State {
    var running = 0
    var waiters = WaitQueue<Void>()
  }

  private let state = Mutex(State())

  /// At most `limit` (at least 1) bodies at once, each waiting at most `timeout` for its turn.
  public init(limit: Int, timeout: Duration) {
    self.limit = max(1, limit)
    self.timeout = timeout
  }

  /// The pool's connections but `reserving` (at least one for the share), waiting as long as
  /// the pool's acquire timeout.
  public convenience init(of pool: PostgresPool, reserving: Int = ConnectionShare.reservedForReads) {
    self.init(limit: pool.configuration.maxConnections - reserving, timeout: pool.configuration.acquireTimeout)
  }

  /// Bodies running now, for tests and metrics.
  public var running: Int { self.state.withLock { $0.running } }
  /// Bodies waiting for their turn.
  public var waiting: Int { self.state.withLock { $0.waiters.count } }

  /// Runs `body` once fewer than `limit` others run.
  /// - Throws: `PostgresError` `.poolExhausted` when its turn did not come within `timeout`,
  ///   `.cancelled` when the task was cancelled while it waited; else what `body` throws.
  public func run<Value>(isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> Value) async throws -> Value {
    try await self.enter()
    defer { self.leave() }
    return try await body()
  }

  private func enter() async throws {
    let id: Int? = self.state.withLock { state in
      if state.running < self.limit, state.waiters.isEmpty {
        state.running += 1
        return nil
      }
      return state.waiters.nextID()
    }
    guard let id else { return }
    let start = ContinuousClock.now
    try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        enum Next { case fail, go, wait }
        // Decided again under the lock: the bodies running may all have finished since.
        let next: Next = self.state.withLock { state in
          if Task.isCancelled { return .fail }
          if state.running < self.limit, state.waiters.isEmpty {
            state.running += 1
            return .go
          }
          state.waiters.append(id, continuation, since: start)
          return .wait
        }
        switch next {
        case .fail: return continuation.resume(throwing: PostgresError.cancelledWhileWaiting)
        case .go: return continuation.resume()
        case .wait: break
        }
        WaitQueue<Void>.startTimer(until: start + self.timeout) { timer in
          self.state.withLock { $0.waiters.attach(timer, to: id) }
        } expire: { [weak self] in
          self?.timeOut(id)
        }
      }
    } onCancel: {
      self.state.withLock { $0.waiters.remove(id) }?.resume(with: .failure(PostgresError.cancelledWhileWaiting))
    }
  }

  /// Hands the finished body's turn to the first waiter, or frees it.
  private func leave() {
    let next = self.state.withLock { state in
      let next = state.waiters.popFirst()
      if next == nil { state.running -= 1 }
      return next
    }
    next?.resume(with: .success(()))
  }

  private func timeOut(_ id: Int) {
    let outcome = self.state.withLock { state in
      state.waiters.remove(id).map { ($0, state.waiters.count) }
    }
    guard let (waiter, others) = outcome else { return }
    waiter.resume(with: .failure(PostgresError(
      kind: .poolExhausted,
      message: "no turn among the \(self.limit) connections for work that waits on another service came within "
        + "\(self.timeout) (\(others) other callers still waiting); the service it waits on may be slow or down")))
  }
}
