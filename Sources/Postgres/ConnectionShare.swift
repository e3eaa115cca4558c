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
/// let quotaBound = ConnectionShare(of: pool, reserving: 2)
/// try await quotaBound.run { try await pool.transaction(tenant: tenant) { tx in ... } }
/// ```
public final class ConnectionShare: Sendable {
  /// Connections the services keep from their share for work that waits on nothing else.
  public static let reservedForReads = 2

  /// Bodies that may run at once.
  public let limit: Int
  /// How long a body waits for its turn.
  public let timeout: Duration

  private struct Waiter {
    let id: Int
    let continuation: CheckedContinuation<Void, any Error>
    var timer: Task<Void, Never>?
  }

  private struct State {
    var running = 0
    /// First come, first served.
    var waiters: [Waiter] = []
    var nextID = 0

    mutating func remove(_ id: Int) -> Waiter? {
      guard let index = self.waiters.firstIndex(where: { $0.id == id }) else { return nil }
      return self.waiters.remove(at: index)
    }
  }

  private let state = Mutex(State())

  /// At most `limit` (at least 1) bodies at once, each waiting at most `timeout` for its turn.
  public init(limit: Int, timeout: Duration) {
    self.limit = max(1, limit)
    self.timeout = timeout
  }

  /// The pool's connections but `reserving` (at least one for the share), waiting as long as
  /// the pool's acquire timeout.
  public convenience init(of pool: PostgresPool, reserving: Int) {
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
      defer { state.nextID += 1 }
      return state.nextID
    }
    guard let id else { return }
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
          state.waiters.append(Waiter(id: id, continuation: continuation))
          return .wait
        }
        switch next {
        case .fail: return continuation.resume(throwing: Self.cancelledError)
        case .go: return continuation.resume()
        case .wait: break
        }
        let timer = Task { [weak self, timeout] in
          guard (try? await Task.sleep(for: timeout)) != nil else { return }
          self?.timeOut(id)
        }
        let served = self.state.withLock { state in
          guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return true }
          state.waiters[index].timer = timer
          return false
        }
        if served { timer.cancel() }
      }
    } onCancel: {
      if let waiter = self.state.withLock({ $0.remove(id) }) {
        waiter.timer?.cancel()
        waiter.continuation.resume(throwing: Self.cancelledError)
      }
    }
  }

  /// Hands the finished body's turn to the first waiter, or frees it.
  private func leave() {
    let next: Waiter? = self.state.withLock { state in
      if state.waiters.isEmpty {
        state.running -= 1
        return nil
      }
      return state.waiters.removeFirst()
    }
    if let next {
      next.timer?.cancel()
      next.continuation.resume()
    }
  }

  private func timeOut(_ id: Int) {
    let outcome: (Waiter, Int)? = self.state.withLock { state in
      state.remove(id).map { ($0, state.waiters.count) }
    }
    guard let (waiter, others) = outcome else { return }
    waiter.continuation.resume(throwing: PostgresError(
      kind: .poolExhausted,
      message: "no turn among the \(self.limit) connections for work that waits on another service came within "
        + "\(self.timeout) (\(others) other callers still waiting); the service it waits on may be slow or down"))
  }

  private static var cancelledError: PostgresError {
    PostgresError(kind: .cancelled, message: "cancelled while waiting for a connection")
  }
}
