import Synchronization

/// What a waiting `withConnection` is given: a connection, and since when it sat idle (nil for
/// one just opened, which needs no check).
struct Checkout: Sendable {
  let connection: PostgresConnection
  let idleSince: ContinuousClock.Instant?
}

/// The pool's bookkeeping, always changed under its lock. Every connection is in exactly one
/// place: idle, checked out, or (before it exists) counted in `opening`.
struct PoolState {
  struct Idle {
    let connection: PostgresConnection
    let since: ContinuousClock.Instant
  }

  /// Most recently returned last: handing out the warmest connection lets the others idle long
  /// enough to be health-checked, and keeps few server processes busy under light load.
  var idle: [Idle] = []
  var checkedOut: Set<Int> = []
  var opening = 0
  var waiters = WaitQueue<Checkout>()
  var closing = false
  var consecutiveFailures = 0
  var lastConnectError: (any Error)?
  var closeWaiters: [CheckedContinuation<Void, Never>] = []

  var total: Int { self.idle.count + self.checkedOut.count + self.opening }

  /// Marks `connection` checked out. A connection is never handed out twice: that would let two
  /// callers interleave statements in one session, so it stops the process rather than go on.
  mutating func checkOut(_ connection: PostgresConnection) {
    let (inserted, _) = self.checkedOut.insert(connection.id)
    precondition(inserted, "postgres connection \(connection.id) handed out twice")
  }

  mutating func checkIn(_ connection: PostgresConnection) {
    let removed = self.checkedOut.remove(connection.id)
    precondition(removed != nil, "postgres connection \(connection.id) returned but not checked out")
  }

  /// Whether one more connection should be opened: someone waits who is not already covered by
  /// a connection being opened, or the pool is below its minimum; never past the maximum.
  mutating func reserveOpening(min: Int, max: Int) -> Bool {
    guard !self.closing, self.total < max else { return false }
    guard self.waiters.count > self.opening || self.total < min else { return false }
    self.opening += 1
    return true
  }

  /// The continuations to resume once the pool is closed and nothing is out.
  mutating func takeCloseWaitersIfDrained() -> [CheckedContinuation<Void, Never>] {
    guard self.closing, self.checkedOut.isEmpty, self.opening == 0 else { return [] }
    defer { self.closeWaiters = [] }
    return self.closeWaiters
  }
}

/// Sizes of the pool at one moment, for metrics and tests.
public struct PostgresPoolStatistics: Sendable, Hashable {
  public var idle: Int
  public var checkedOut: Int
  public var opening: Int
  public var waiting: Int

  public init(idle: Int, checkedOut: Int, opening: Int, waiting: Int) {
    self.idle = idle
    self.checkedOut = checkedOut
    self.opening = opening
    self.waiting = waiting
  }
}
