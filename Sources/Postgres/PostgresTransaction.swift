import Synchronization

/// How much a transaction sees of others running at the same time (SQL's isolation levels).
public enum PostgresIsolationLevel: String, Sendable, Hashable {
  case readCommitted = "READ COMMITTED"
  case repeatableRead = "REPEATABLE READ"
  case serializable = "SERIALIZABLE"
}

/// One statement and its parameters, for sending several in one round trip
/// (`PostgresTransaction.queryBatch`).
public struct PostgresStatement: Sendable {
  /// One statement, with `$1`... for its parameters.
  public var sql: String
  /// Bound in order; nil is SQL NULL.
  public var parameters: [(any PostgresEncodable)?]

  public init(_ sql: String, _ parameters: [(any PostgresEncodable)?] = []) {
    self.sql = sql
    self.parameters = parameters
  }
}

/// The statements of one transaction, on one connection; what `PostgresPool.transaction` hands
/// its closure. Usable only inside that closure: afterwards every statement throws `.invalidUse`.
public final class PostgresTransaction: PostgresQueryable, Sendable {
  typealias Start = (sql: String, settings: [(name: String, value: String)])

  private struct State {
    var finished = false
    /// BEGIN and its settings, until the first statement takes them along (one round trip less).
    var pendingStart: Start?
    var committed = false
    var firstError: PostgresError?
  }

  /// How the closure left the transaction.
  struct Outcome {
    /// The first server error a statement met, if any.
    var firstError: PostgresError?
    /// Whether BEGIN was sent (false when the closure ran no statement).
    var begun: Bool
    /// Whether `queryAndCommit` already committed it.
    var committed: Bool
  }

  private let connection: PostgresConnection
  private let state: Mutex<State>

  init(connection: PostgresConnection, start: Start) {
    self.connection = connection
    self.state = Mutex(State(pendingStart: start))
  }

  /// The server process running the transaction (`pg_backend_pid()`).
  public var backendPID: Int32 { self.connection.backendPID }

  public func query(_ sql: String, _ parameters: [(any PostgresEncodable)?]) async throws -> PostgresRows {
    try await self.run(sql, parameters, committing: false)
  }

  public func execute(_ sql: String, _ parameters: [(any PostgresEncodable)?]) async throws -> Int {
    try await self.query(sql, parameters).affectedRows
  }

  /// Runs the transaction's last statement and COMMIT in one round trip, and returns the
  /// statement's rows; the transaction is then over (later statements throw `.invalidUse`).
  /// Hot paths use it to save the round trip of a separate COMMIT.
  ///
  /// - Throws: as `query`; also the error of an earlier statement when one failed (the
  ///   transaction is aborted then, and nothing is committed), and COMMIT's own error.
  public func queryAndCommit(_ sql: String, _ parameters: [(any PostgresEncodable)?]) async throws -> PostgresRows {
    if let earlier = self.state.withLock({ $0.firstError }) { throw earlier }
    return try await self.run(sql, parameters, committing: true)
  }

  /// Runs `statements` one after another and returns each one's rows, all in one round trip
  /// (with BEGIN too, when they are the transaction's first). The server starts each statement
  /// only once the one before it has finished, so under READ COMMITTED a later statement's
  /// snapshot includes what other transactions committed while an earlier one waited for a lock:
  /// a transaction can lock a row in one statement and read what the lock's previous holders
  /// wrote in the next, for the price of one round trip.
  ///
  /// - Throws: as `query`, for the first statement that fails; the later ones do not run, and
  ///   the transaction is aborted as after any failed statement.
  public func queryBatch(_ statements: [PostgresStatement]) async throws -> [PostgresRows] {
    guard let first = statements.first else { return [] }
    return try await self.running(first.sql, committing: false) { pendingStart in
      try await self.connection.query(statements, beginning: pendingStart, committing: false)
    }
  }

  /// `queryBatch` as the transaction's first round trip, with `committedFirst` run ahead of it
  /// as a transaction of its own (this one's BEGIN and settings, the statement, COMMIT), in the
  /// same round trip: for a write that must be committed before this transaction's work goes on
  /// outside the database (the scheduler's quota intent, before its quota call), for no round
  /// trip of its own. It commits even when the statements then fail.
  ///
  /// - Throws: `committedFirst`'s error when it fails (the statements then fail too, and the
  ///   transaction is rolled back); as `queryBatch` for the statements; `.invalidUse` when the
  ///   transaction has already begun.
  public func queryBatch(_ statements: [PostgresStatement], committedFirst: PostgresStatement) async throws -> [PostgresRows] {
    guard let first = statements.first else { return [] }
    return try await self.running(first.sql, committing: false) { pendingStart in
      guard let pendingStart else {
        throw PostgresError(
          kind: .invalidUse, message: "a statement committed first must go with the transaction's first round trip",
          statement: committedFirst.sql)
      }
      return try await self.connection.query(statements, beginning: pendingStart, committing: false, committedFirst: committedFirst)
    }
  }

  private func run(_ sql: String, _ parameters: [(any PostgresEncodable)?], committing: Bool) async throws -> PostgresRows {
    try await self.running(sql, committing: committing) { pendingStart in
      if pendingStart == nil && !committing {
        try await self.connection.query(sql, parameters)
      } else {
        try await self.connection.query(sql, parameters, beginning: pendingStart, committing: committing)
      }
    }
  }

  /// Sends what `body` sends as the transaction's next round trip: with BEGIN if it has not been
  /// sent yet (`body` gets it), and as its last if `committing`.
  private func running<T>(
    _ sql: String, committing: Bool, _ body: (_ pendingStart: Start?) async throws -> T
  ) async throws -> T {
    let start: Start?? = self.state.withLock { state in
      guard !state.finished else { return .none }
      defer {
        state.pendingStart = nil
        if committing { state.finished = true }
      }
      return .some(state.pendingStart)
    }
    guard case .some(let pendingStart) = start else {
      throw PostgresError(kind: .invalidUse, message: "the transaction has already finished", statement: sql)
    }
    do {
      let result = try await body(pendingStart)
      if committing { self.state.withLock { $0.committed = true } }
      return result
    } catch let error as PostgresError {
      // The first failure aborts the transaction on the server; remember it, so that a closure
      // that catches it and carries on still has the transaction retried or failed for it.
      self.state.withLock { state in
        if state.firstError == nil, error.sqlState != nil { state.firstError = error }
      }
      throw error
    }
  }

  /// Ends use by the closure.
  func finish() -> Outcome {
    self.state.withLock { state in
      state.finished = true
      return Outcome(firstError: state.firstError, begun: state.pendingStart == nil, committed: state.committed)
    }
  }
}

extension PostgresPool {
  /// Runs `body` in one transaction: BEGIN, `body`, COMMIT; ROLLBACK if `body` throws.
  ///
  /// When the transaction fails with a serialization failure (40001) or a deadlock (40P01),
  /// wherever that happens (a statement, or COMMIT), the whole of `body` runs again in a new
  /// transaction, after a jittered backoff, up to `transactionMaxAttempts` times in all. So
  /// `body` must be safe to run more than once: do only database work in it, and act on the
  /// result after it returns.
  ///
  /// - Parameters:
  ///   - isolation: the isolation level; `.serializable` is what makes check-then-write logic
  ///     (quotas, capacity) safe without explicit locks.
  ///   - tenant: set as `maas.tenant_id` for this transaction only (`SET LOCAL`, through
  ///     `set_config`), so row-level security policies on `current_setting('maas.tenant_id')`
  ///     admit that tenant's rows and no others.
  ///   - readOnly: BEGIN ... READ ONLY.
  ///   - statementTimeout: this transaction's `statement_timeout` (SET LOCAL); nil takes the
  ///     configuration's. Set on every transaction, so a session changed by earlier work still
  ///     gets the configured bound.
  /// - Throws: `PostgresError`: the statement's own error (a transient one once the attempts are
  ///   used up), `.connection` when the connection fails (if that happens during COMMIT the
  ///   outcome is unknown), any error of `withConnection`; and whatever `body` throws.
  public func transaction<Result>(
    isolation level: PostgresIsolationLevel = .readCommitted,
    tenant: String? = nil,
    readOnly: Bool = false,
    statementTimeout: Duration? = nil,
    callerIsolation: isolated (any Actor)? = #isolation,
    _ body: (PostgresTransaction) async throws -> Result
  ) async throws -> Result {
    var beginSQL = "BEGIN ISOLATION LEVEL \(level.rawValue)"
    if readOnly { beginSQL += " READ ONLY" }
    var settings: [(name: String, value: String)] = []
    if let timeout = statementTimeout ?? self.configuration.statementTimeout {
      settings.append(("statement_timeout", "\(timeout.wholeMilliseconds)"))
    }
    if let tenant { settings.append(("maas.tenant_id", tenant)) }

    var attempt = 1
    while true {
      do {
        return try await self.withConnection { connection in
          try await Self.runOnce(on: connection, beginSQL: beginSQL, settings: settings, body)
        }
      } catch let error as PostgresError where error.isTransient && attempt < self.configuration.transactionMaxAttempts {
        let delay = self.configuration.transactionRetryBackoff.delay(attempt: attempt, random: self.random())
        self.logger.debug(
          "retrying postgres transaction",
          metadata: ["sqlstate": "\(error.sqlState ?? "")", "attempt": "\(attempt)", "retry_in": "\(delay)"]
        )
        try await self.sleep(delay)
        attempt += 1
      }
    }
  }

  private static func runOnce<Result>(
    on connection: PostgresConnection,
    beginSQL: String,
    settings: [(name: String, value: String)],
    isolation: isolated (any Actor)? = #isolation,
    _ body: (PostgresTransaction) async throws -> Result
  ) async throws -> Result {
    // BEGIN goes out with the closure's first statement (one round trip less per transaction).
    let transaction = PostgresTransaction(connection: connection, start: (beginSQL, settings))
    let result: Result
    do {
      result = try await body(transaction)
    } catch {
      let firstError = transaction.finish().firstError
      await connection.rollbackIfNeeded()
      // A closure that caught a serialization failure and threw something else of its own still
      // ran in a failed transaction: retry it for the server's reason.
      if let firstError, firstError.isTransient, !((error as? PostgresError)?.isTransient ?? false) {
        throw firstError
      }
      throw error
    }
    let outcome = transaction.finish()
    // Nothing to commit: no statement ran, or `queryAndCommit` committed already.
    guard outcome.begun, !outcome.committed else { return result }
    let aborted =
      outcome.firstError
      ?? PostgresError(kind: .query, message: "the transaction was aborted by an earlier error and rolled back", statement: "COMMIT")
    try await connection.commit(aborted: aborted)
    return result
  }
}
