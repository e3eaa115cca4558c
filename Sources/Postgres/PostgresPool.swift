public import Logging
import Synchronization

/// A bounded pool of Postgres connections.
///
/// ```swift
/// let pool = try PostgresPool(configuration: PostgresConfiguration(url: url), logger: logger)
/// let rows = try await pool.query("SELECT name FROM registry.models WHERE id = $1", [id])
/// try await pool.transaction(isolation: .serializable, tenant: tenantID) { tx in ... }
/// await pool.close()
/// ```
///
/// - At most `maxConnections` connections exist. When all are checked out, callers wait first
///   come, first served, for at most `acquireTimeout`, then get `.poolExhausted`; with
///   `maxWaiters` already waiting, a caller gets `.poolExhausted` at once.
/// - A connection is handed to one caller at a time; it comes back when the caller's closure
///   returns or throws.
/// - Before a connection is handed out again it is checked: anything the server sent while it
///   was idle is read (after a server restart that is the FATAL that closed it), and one idle
///   longer than `healthCheckAfterIdle` runs `SELECT 1`. A broken connection is dropped, and one
///   returned broken or inside a transaction is closed, never reused.
/// - Connections are opened in the background when callers wait and the pool is below its
///   bound. Failed attempts are retried with exponential backoff while anyone waits or the pool
///   is below `minConnections`, so after the server restarts the next caller gets a new
///   connection as soon as the server accepts one.
public final class PostgresPool: PostgresQueryable, Sendable {
  public let configuration: PostgresConfiguration
  let logger: Logger
  let sleep: @Sendable (Duration) async throws -> Void
  let random: @Sendable () -> Double
  private let state = Mutex(PoolState())
  private let roundTripCounter = RoundTripCounter()

  /// - Parameters:
  ///   - sleep: how the pool pauses between connection attempts and transaction retries
  ///     (injected so tests can see the backoff).
  ///   - random: uniform in 0..<1, for the backoff's jitter.
  /// - Throws: `PostgresError` `.invalidUse` listing every problem with `configuration`.
  public init(
    configuration: PostgresConfiguration,
    logger: Logger,
    sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
    random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
  ) throws {
    let problems = configuration.problems()
    guard problems.isEmpty else {
      throw PostgresError(kind: .invalidUse, message: "invalid Postgres configuration: " + problems.joined(separator: "; "))
    }
    self.configuration = configuration
    self.logger = logger
    self.sleep = sleep
    self.random = random
    let (min, max) = (configuration.minConnections, configuration.maxConnections)
    for _ in 0..<min where self.state.withLock({ $0.reserveOpening(min: min, max: max) }) {
      self.startOpening()
    }
  }

  public var statistics: PostgresPoolStatistics {
    self.state.withLock { state in
      PostgresPoolStatistics(idle: state.idle.count, checkedOut: state.checkedOut.count, opening: state.opening, waiting: state.waiters.count)
    }
  }

  /// How many round trips to the server this pool's connections have made since it was created:
  /// one per statement sent alone, one per pipeline however many statements (and BEGIN, COMMIT)
  /// it carries; the login handshake is not counted. For tests and measurements of how many
  /// times an operation waits for the server.
  public var roundTrips: Int { self.roundTripCounter.value }

  /// Runs `body` with a connection of its own, and takes the connection back when `body` returns
  /// or throws. Statements in `body` run in one session, one after another, but each in its own
  /// transaction unless `body` uses `transaction` (use that, not BEGIN here: a connection
  /// returned inside a transaction is closed rather than reused).
  ///
  /// - Throws: `PostgresError` `.poolExhausted` when no connection came free within
  ///   `acquireTimeout`, `.connection` when none could be opened in that time, `.poolClosed` after
  ///   `close()`, `.cancelled` when the calling task is cancelled while it waits; and whatever
  ///   `body` throws.
  public func withConnection<Result>(
    isolation: isolated (any Actor)? = #isolation,
    _ body: (PostgresConnection) async throws -> Result
  ) async throws -> Result {
    let connection = try await self.acquire()
    let result: Result
    do {
      result = try await body(connection)
    } catch {
      self.release(connection)
      throw error
    }
    self.release(connection)
    return result
  }

  public func query(_ sql: String, _ parameters: [(any PostgresEncodable)?]) async throws -> PostgresRows {
    try await self.withConnection { connection in try await connection.query(sql, parameters) }
  }

  public func execute(_ sql: String, _ parameters: [(any PostgresEncodable)?]) async throws -> Int {
    try await self.withConnection { connection in try await connection.execute(sql, parameters) }
  }

  /// Stops handing out connections: waiting callers get `.poolClosed`, idle connections are
  /// closed now, checked-out ones when they come back, and this returns once all are closed.
  public func close() async {
    let (idle, waiters) = self.state.withLock { state in
      state.closing = true
      defer { state.idle = [] }
      return (state.idle, state.waiters.removeAll())
    }
    for waiter in waiters {
      let message = "the pool was closed while this caller waited for a connection"
      waiter.resume(with: .failure(PostgresError(kind: .poolClosed, message: message)))
    }
    for entry in idle { await entry.connection.close() }
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
      let drained = self.state.withLock { state in
        state.closeWaiters.append(continuation)
        return state.takeCloseWaitersIfDrained()
      }
      for waiter in drained { waiter.resume() }
    }
  }

  // MARK: - Checking out and in

  func acquire() async throws -> PostgresConnection {
    let start = ContinuousClock.now
    let deadline = start + self.configuration.acquireTimeout
    while true {
      let checkout = try await self.checkout(start: start, deadline: deadline)
      guard let idleSince = checkout.idleSince else { return checkout.connection }
      let probe = ContinuousClock.now - idleSince >= self.configuration.healthCheckAfterIdle
      if await checkout.connection.verify(probe: probe) { return checkout.connection }
      self.logger.info("dropping a broken idle postgres connection", metadata: ["postgres_connection": "\(checkout.connection.id)"])
      self.discard(checkout.connection)
    }
  }

  private func checkout(start: ContinuousClock.Instant, deadline: ContinuousClock.Instant) async throws -> Checkout {
    let id = self.state.withLock { $0.waiters.nextID() }
    return try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Checkout, any Error>) in
        enum Next {
          case fail(PostgresError)
          case take(Checkout)
          case wait(open: Bool)
        }
        let next: Next = self.state.withLock { state in
          if state.closing {
            return .fail(PostgresError(kind: .poolClosed, message: "the pool is closed"))
          }
          if Task.isCancelled { return .fail(.cancelledWhileWaiting) }
          if let entry = state.idle.popLast() {
            state.checkOut(entry.connection)
            return .take(Checkout(connection: entry.connection, idleSince: entry.since))
          }
          if state.waiters.count >= self.configuration.maxWaiters {
            return .fail(PostgresError(
              kind: .poolExhausted,
              message: "no Postgres connection free and \(state.waiters.count) callers already waiting, the most the pool "
                + "queues (maxWaiters); all \(state.checkedOut.count) of maxConnections \(self.configuration.maxConnections) "
                + "are checked out or opening"))
          }
          state.waiters.append(id, continuation, since: start)
          return .wait(open: state.reserveOpening(min: self.configuration.minConnections, max: self.configuration.maxConnections))
        }
        switch next {
        case .fail(let error):
          continuation.resume(throwing: error)
        case .take(let checkout):
          continuation.resume(returning: checkout)
        case .wait(let open):
          if open { self.startOpening() }
          WaitQueue<Checkout>.startTimer(until: deadline) { timer in
            self.state.withLock { $0.waiters.attach(timer, to: id) }
          } expire: { [weak self] in
            self?.timeOut(waiter: id)
          }
        }
      }
    } onCancel: {
      self.state.withLock { $0.waiters.remove(id) }?.resume(with: .failure(PostgresError.cancelledWhileWaiting))
    }
  }

  private func timeOut(waiter id: Int) {
    let outcome: (WaitQueue<Checkout>.Waiter, PostgresError)? = self.state.withLock { state in
      guard let waiter = state.waiters.remove(id) else { return nil }
      let waited = ContinuousClock.now - waiter.since
      let timeout = self.configuration.acquireTimeout
      let error: PostgresError
      if let lastError = state.lastConnectError, state.consecutiveFailures > 0 {
        error = PostgresError(
          kind: .connection,
          message: "no Postgres connection within the acquire timeout (\(timeout)): "
            + "\(state.consecutiveFailures) connection attempts in a row failed, the last with: \(lastError)",
          underlying: lastError as? PostgresError
        )
      } else {
        error = PostgresError(
          kind: .poolExhausted,
          message: "no Postgres connection came free within the acquire timeout (\(timeout)): "
            + "all \(state.checkedOut.count) of maxConnections \(self.configuration.maxConnections) are checked out; "
            + "waited \(waited), \(state.waiters.count) other callers still waiting"
        )
      }
      return (waiter, error)
    }
    if let (waiter, error) = outcome { waiter.resume(with: .failure(error)) }
  }

  /// Takes a connection back: to the first waiter, to the idle list, or closed if it is broken,
  /// inside a transaction, or the pool is closing.
  func release(_ connection: PostgresConnection) {
    if connection.isBroken || connection.transactionStatus != .idle {
      if !connection.isBroken {
        self.logger.warning(
          "closing a postgres connection returned inside a transaction",
          metadata: ["postgres_connection": "\(connection.id)"]
        )
      }
      self.discard(connection)
      return
    }
    let next: Next = self.state.withLock { state in
      state.checkIn(connection)
      if state.closing { return .close(state.takeCloseWaitersIfDrained()) }
      if let waiter = state.waiters.popFirst() {
        state.checkOut(connection)
        return .hand(waiter)
      }
      state.idle.append(PoolState.Idle(connection: connection, since: .now))
      return .keep
    }
    self.perform(next, with: connection, idleSince: .now)
  }

  /// Closes a checked-out connection for good, and opens a replacement if someone waits or the
  /// pool fell below its minimum.
  private func discard(_ connection: PostgresConnection) {
    let (open, drained) = self.state.withLock { state in
      state.checkIn(connection)
      return (
        state.reserveOpening(min: self.configuration.minConnections, max: self.configuration.maxConnections),
        state.takeCloseWaitersIfDrained()
      )
    }
    Task {
      await connection.close()
      for waiter in drained { waiter.resume() }
    }
    if open { self.startOpening() }
  }

  // MARK: - Opening connections

  /// Opens one connection for a slot already reserved in `opening`, retrying with backoff while
  /// it is still wanted.
  private func startOpening() {
    Task { await self.open() }
  }

  private func open() async {
    while true {
      do {
        let connection = try await PostgresConnection.connect(
          configuration: self.configuration, logger: self.logger, roundTrips: self.roundTripCounter)
        self.opened(connection)
        return
      } catch {
        enum Next {
          case retry(attempt: Int)
          case stop([CheckedContinuation<Void, Never>])
        }
        let next: Next = self.state.withLock { state in
          state.consecutiveFailures += 1
          state.lastConnectError = error
          let wanted = !state.waiters.isEmpty || state.total <= self.configuration.minConnections
          guard !state.closing, wanted else {
            state.opening -= 1
            return .stop(state.takeCloseWaitersIfDrained())
          }
          return .retry(attempt: state.consecutiveFailures)
        }
        switch next {
        case .stop(let drained):
          for waiter in drained { waiter.resume() }
          return
        case .retry(let attempt):
          let delay = self.configuration.reconnectBackoff.delay(attempt: attempt, random: self.random())
          self.logger.warning(
            "could not connect to postgres; retrying",
            metadata: ["attempt": "\(attempt)", "retry_in": "\(delay)", "error": "\(error)"]
          )
          try? await self.sleep(delay)
        }
      }
    }
  }

  /// What becomes of a connection that came free (checked in, or newly opened).
  private enum Next {
    /// The pool is closing: close it, then wake `close()`'s callers if it was the last.
    case close([CheckedContinuation<Void, Never>])
    /// A caller is waiting: it takes the connection.
    case hand(WaitQueue<Checkout>.Waiter)
    /// Nobody wants it: it stays idle.
    case keep
  }

  private func perform(_ next: Next, with connection: PostgresConnection, idleSince: ContinuousClock.Instant?) {
    switch next {
    case .close(let drained):
      Task {
        await connection.close()
        for waiter in drained { waiter.resume() }
      }
    case .hand(let waiter):
      waiter.resume(with: .success(Checkout(connection: connection, idleSince: idleSince)))
    case .keep:
      break
    }
  }

  private func opened(_ connection: PostgresConnection) {
    let (next, failures): (Next, Int) = self.state.withLock { state in
      state.opening -= 1
      let failures = state.consecutiveFailures
      state.consecutiveFailures = 0
      state.lastConnectError = nil
      if state.closing {
        return (.close(state.takeCloseWaitersIfDrained()), failures)
      }
      if let waiter = state.waiters.popFirst() {
        state.checkOut(connection)
        return (.hand(waiter), failures)
      }
      state.idle.append(PoolState.Idle(connection: connection, since: .now))
      return (.keep, failures)
    }
    if failures > 0 {
      self.logger.info("reconnected to postgres", metadata: ["failed_attempts": "\(failures)", "postgres_connection": "\(connection.id)"])
    }
    self.perform(next, with: connection, idleSince: nil)
  }
}
