import Foundation
public import Logging
import Synchronization

/// One connection to Postgres, with a thread of its own for libpq's blocking calls.
///
/// Callers `await`; the statement runs on the connection's worker thread, never on Swift's
/// cooperative pool. Statements from several tasks on one connection run one after another, in
/// the order they were queued. Cancelling the calling task sends the server a cancel request for
/// the running statement (which then fails with kind `.cancelled`) or drops a queued one.
///
/// Most code takes connections from a `PostgresPool`; a connection of its own is for work that
/// holds one session for long (a migration under an advisory lock, LISTEN).
public final class PostgresConnection: PostgresQueryable, Sendable {
  private struct Flags {
    var broken = false
    var closed = false
    var transactionStatus = TransactionStatus.idle
  }

  private static let counter = Atomic<Int>(0)

  /// A number for logs, unique in this process.
  public let id: Int
  /// The server process serving this connection (`pg_backend_pid()`).
  public let backendPID: Int32
  let socket: Int32
  private let worker: SerialWorker
  private let core: WorkerConfined<ConnectionCore>
  private let cancelHandle: CancelHandle?
  private let flags = Mutex(Flags())
  private let logger: Logger

  private init(
    id: Int,
    backendPID: Int32,
    socket: Int32,
    worker: SerialWorker,
    core: WorkerConfined<ConnectionCore>,
    cancelHandle: CancelHandle?,
    logger: Logger
  ) {
    self.id = id
    self.backendPID = backendPID
    self.socket = socket
    self.worker = worker
    self.core = core
    self.cancelHandle = cancelHandle
    self.logger = logger
  }

  deinit {
    // A connection dropped without close() still ends its session and its thread.
    self.worker.stop()
  }

  /// Opens a connection and sets up its session (UTC, ISO dates, the statement timeout).
  /// - Throws: `PostgresError` `.connection` when the server cannot be reached or refuses the
  ///   login (the message is libpq's), `.query` when the session settings are rejected.
  public static func connect(configuration: PostgresConfiguration, logger: Logger) async throws -> PostgresConnection {
    try await self.connect(configuration: configuration, logger: logger, roundTrips: nil)
  }

  /// `connect`, counting the connection's round trips in `roundTrips`.
  static func connect(configuration: PostgresConfiguration, logger: Logger, roundTrips: RoundTripCounter?) async throws
    -> PostgresConnection
  {
    let id = Self.counter.wrappingAdd(1, ordering: .relaxed).newValue
    var logger = logger
    logger[metadataKey: "postgres_connection"] = "\(id)"
    let core = WorkerConfined<ConnectionCore>()
    let worker = SerialWorker(name: "postgres-\(id)") { core.value?.pq.finish() }
    let connectLogger = logger
    let opened: Result<(Int32, Int32, CancelHandle?), any Error> = await withCheckedContinuation { continuation in
      let accepted = worker.submit {
        continuation.resume(
          returning: Result {
            let pq = try LibPQConnection.connect(
              parameters: configuration.connectionParameters, logger: connectLogger, roundTrips: roundTrips)
            core.value = ConnectionCore(pq: pq, configuration: configuration, logger: connectLogger)
            for setting in configuration.sessionSettings {
              let parameters = [try setting.name.postgresParameter(), try setting.value.postgresParameter()]
              _ = try pq.execute("SELECT set_config($1, $2, false)", parameters)
            }
            return (pq.backendPID, pq.socket, pq.makeCancelHandle())
          }
        )
      }
      if !accepted { continuation.resume(returning: .failure(PostgresError.connection("the connection's worker stopped"))) }
    }
    switch opened {
    case .success(let (pid, socket, cancelHandle)):
      logger[metadataKey: "backend_pid"] = "\(pid)"
      return PostgresConnection(
        id: id, backendPID: pid, socket: socket, worker: worker, core: core, cancelHandle: cancelHandle, logger: logger)
    case .failure(let error):
      worker.stop()
      throw error
    }
  }

  /// True once the connection has failed (the server went away, a protocol error): every later
  /// statement fails with `.connection`, and a pool discards it.
  public var isBroken: Bool { self.flags.withLock { $0.broken || $0.closed } }

  var transactionStatus: TransactionStatus { self.flags.withLock { $0.transactionStatus } }

  public func query(_ sql: String, _ parameters: [(any PostgresEncodable)?]) async throws -> PostgresRows {
    let encoded = try Self.encode(parameters, sql: sql)
    let result = try await self.run(sql: sql) { core in try core.query(sql, encoded) }
    return PostgresRows(result: result)
  }

  public func execute(_ sql: String, _ parameters: [(any PostgresEncodable)?]) async throws -> Int {
    try await self.query(sql, parameters).affectedRows
  }

  /// Ends the session and the worker thread, after the statements already queued. Idempotent.
  public func close() async {
    let first = self.flags.withLock { flags in
      defer { flags.closed = true }
      return !flags.closed
    }
    guard first else { return }
    _ = try? await self.run(sql: nil, cancellable: false, ignoringClosed: true) { core in core.pq.finish() }
    self.worker.stop()
  }

  /// Whether the connection can be handed out: reads anything the server sent while it sat idle
  /// (a FATAL before a restart closed it) and, if asked, runs `SELECT 1`.
  func verify(probe: Bool) async -> Bool {
    guard !self.isBroken else { return false }
    guard probe || socketHasPendingInput(self.socket) else { return true }
    do {
      return try await self.run(sql: "SELECT 1", cancellable: false) { core in
        guard core.pq.absorbPendingInput() else { return false }
        if probe { _ = try core.pq.execute("SELECT 1", []) }
        return true
      }
    } catch {
      return false
    }
  }

  /// `query`, with the transaction's BEGIN and settings (`beginning`) sent before it and COMMIT
  /// (`committing`) after it, in the same round trip; if one fails, the later ones do not run.
  func query(
    _ sql: String, _ parameters: [(any PostgresEncodable)?],
    beginning: (sql: String, settings: [(name: String, value: String)])?, committing: Bool
  ) async throws -> PostgresRows {
    try await self.query([PostgresStatement(sql, parameters)], beginning: beginning, committing: committing)[0]
  }

  /// Several statements in one round trip, with the transaction's BEGIN and settings
  /// (`beginning`) before them and COMMIT (`committing`) after them; each runs once the one
  /// before it has finished, and if one fails, the later ones do not run.
  /// - Parameter committedFirst: a statement run and committed ahead of them, in a transaction
  ///   of its own begun as `beginning` says (which it needs), in the same round trip.
  /// - Returns: each statement's rows, in order.
  func query(
    _ statements: [PostgresStatement],
    beginning: (sql: String, settings: [(name: String, value: String)])?, committing: Bool,
    committedFirst: PostgresStatement? = nil
  ) async throws -> [PostgresRows] {
    let encoded = try statements.map { (sql: $0.sql, parameters: try Self.encode($0.parameters, sql: $0.sql)) }
    let after: [PipelineStep] = committing ? [.execute(sql: "COMMIT", parameters: [])] : []
    let first = try committedFirst.map { (sql: $0.sql, parameters: try Self.encode($0.parameters, sql: $0.sql)) }
    // A COMMIT on its way is not cancelled: that would leave its outcome unknown for no gain.
    let results = try await self.run(sql: statements.first?.sql, cancellable: !committing && first == nil) { core in
      try core.query(encoded, beginning: beginning, after: after, committedFirst: first)
    }
    return results.map { PostgresRows(result: $0) }
  }

  func begin(_ beginSQL: String, settings: [(name: String, value: String)]) async throws {
    try await self.run(sql: beginSQL) { core in try core.begin((beginSQL, settings)) }
  }

  func commit(aborted: PostgresError) async throws {
    // Not cancellable: a cancel request between COMMIT's send and its answer would leave the
    // outcome unknown for no gain.
    try await self.run(sql: "COMMIT", cancellable: false) { core in try core.commit(aborted: aborted) }
  }

  func rollbackIfNeeded() async {
    _ = try? await self.run(sql: "ROLLBACK", cancellable: false) { core in core.rollbackIfNeeded() }
  }

  /// Runs `body` on the worker thread and waits for it. Cancelling the calling task drops the
  /// job if it has not started, or asks the server to cancel it if it has.
  private func run<T: Sendable>(
    sql: String?,
    cancellable: Bool = true,
    ignoringClosed: Bool = false,
    _ body: @escaping @Sendable (ConnectionCore) throws -> T
  ) async throws -> T {
    if !ignoringClosed, self.flags.withLock({ $0.closed }) {
      throw PostgresError(kind: .connection, message: "the connection is closed", statement: sql)
    }
    let ticket = JobTicket()
    let core = self.core
    let result: Result<T, any Error> = await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        let accepted = self.worker.submit {
          guard ticket.begin() else {
            continuation.resume(returning: .failure(PostgresError(kind: .cancelled, message: "cancelled before it ran", statement: sql)))
            return
          }
          guard let connection = core.value else {
            _ = ticket.end()
            continuation.resume(returning: .failure(PostgresError(kind: .connection, message: "the connection is closed", statement: sql)))
            return
          }
          var result = Result { try body(connection) }
          let cancelSent = ticket.end()
          let broken = connection.pq.isBroken
          let status = connection.pq.transactionStatus
          let becameBroken = self.flags.withLock { flags in
            defer {
              flags.broken = flags.broken || broken
              flags.transactionStatus = status
            }
            return broken && !flags.broken && !flags.closed
          }
          if becameBroken, case .failure(let error) = result {
            self.logger.warning("postgres connection lost", metadata: ["error": "\(error)"])
          }
          if cancelSent, case .failure(var error as PostgresError) = result, error.isQueryCanceled {
            error.kind = .cancelled
            result = .failure(error)
          }
          continuation.resume(returning: result)
        }
        if !accepted {
          continuation.resume(returning: .failure(PostgresError(kind: .connection, message: "the connection is closed", statement: sql)))
        }
      }
    } onCancel: {
      if cancellable { ticket.cancel(using: self.cancelHandle) }
    }
    return try result.get()
  }

  static func encode(_ parameters: [(any PostgresEncodable)?], sql: String) throws -> [PostgresParameter] {
    do {
      return try parameters.map { try $0?.postgresParameter() ?? .null }
    } catch var error as PostgresError {
      error.statement = sql
      throw error
    }
  }
}
