internal import CLibPQ
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Every libpq call in the package is in this file. A PGconn is not thread-safe: a
// LibPQConnection is used only on its connection's worker thread (SerialWorker), which is also
// where its blocking calls (connect, exec, getResult) belong. PGresult and PGcancel are the
// documented exceptions: a finished result is read-only and may be read from any thread, and
// PQcancel is made to be called from another thread while the query runs.

/// libpq's transaction status after the last command.
enum TransactionStatus: UInt8, Sendable {
  case idle, active, inTransaction, failed, unknown
}

/// One statement of a pipeline (PQenterPipelineMode): several statements sent in one write and
/// answered in one read, to spare round trips.
enum PipelineStep: Sendable {
  case prepare(name: String, sql: String, types: [UInt32])
  case execute(sql: String, parameters: [PostgresParameter])
  case executePrepared(name: String, sql: String, parameters: [PostgresParameter])

  var sql: String {
    switch self {
    case .prepare(_, let sql, _), .execute(let sql, _), .executePrepared(_, let sql, _): return sql
    }
  }
}

/// A finished PGresult. Read-only, so it may be read from any thread (libpq's documentation says
/// so); freed when the last row referring to it goes.
final class ResultHandle: @unchecked Sendable {
  private let pointer: OpaquePointer
  let columns: [PostgresColumn]
  let rowCount: Int
  let commandTag: String
  let affectedRows: Int

  fileprivate init(_ pointer: OpaquePointer) {
    self.pointer = pointer
    let fieldCount = Int(PQnfields(pointer))
    self.columns = (0..<fieldCount).map { index in
      PostgresColumn(
        index: index,
        name: String(cString: PQfname(pointer, Int32(index))),
        dataType: PostgresDataType(oid: UInt32(PQftype(pointer, Int32(index))))
      )
    }
    self.rowCount = Int(PQntuples(pointer))
    self.commandTag = String(cString: PQcmdStatus(pointer))
    self.affectedRows = Int(String(cString: PQcmdTuples(pointer))) ?? 0
  }

  deinit { PQclear(self.pointer) }

  func isNull(row: Int, column: Int) -> Bool {
    PQgetisnull(self.pointer, Int32(row), Int32(column)) == 1
  }

  /// Runs `body` with the value's text bytes, or returns nil for NULL. The bytes live as long as
  /// this handle, which `body`'s caller keeps alive.
  func withValue<R>(row: Int, column: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
    try withExtendedLifetime(self) {
      guard PQgetisnull(self.pointer, Int32(row), Int32(column)) == 0 else { return nil }
      let length = Int(PQgetlength(self.pointer, Int32(row), Int32(column)))
      let value = PQgetvalue(self.pointer, Int32(row), Int32(column))
      return try body(UnsafeRawBufferPointer(start: value, count: length))
    }
  }
}

/// A cancel request handle: sends the server a request to cancel whatever the connection is
/// running. Usable from any thread; PQcancel blocks while it connects, so never call it on the
/// cooperative pool.
final class CancelHandle: @unchecked Sendable {
  private let pointer: OpaquePointer

  fileprivate init(_ pointer: OpaquePointer) { self.pointer = pointer }

  deinit { PQfreeCancel(self.pointer) }

  @discardableResult
  func cancel() -> Bool {
    var buffer = [CChar](repeating: 0, count: 256)
    return PQcancel(self.pointer, &buffer, Int32(buffer.count)) == 1
  }
}

/// Where server notices (RAISE NOTICE, "table does not exist, skipping") go instead of stderr.
/// A FATAL that arrives while the connection is idle (the server shutting down, or the backend
/// terminated) comes through here too, because libpq hands unsolicited errors to the notice
/// receiver; it means the session is over even before libpq has read the end of the socket.
private final class NoticeSink {
  let logger: Logger
  var sawFatal = false
  init(logger: Logger) { self.logger = logger }
}

private func receiveNotice(_ context: UnsafeMutableRawPointer?, _ result: OpaquePointer?) {
  guard let context, let result else { return }
  let sink = Unmanaged<NoticeSink>.fromOpaque(context).takeUnretainedValue()
  let message = PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) } ?? ""
  let code = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? ""
  let severity = PQresultErrorField(result, Int32(UInt8(ascii: "V"))).map { String(cString: $0) } ?? ""
  if severity == "FATAL" || severity == "PANIC" {
    sink.sawFatal = true
    sink.logger.info("postgres ended the session", metadata: ["sqlstate": "\(code)", "reason": "\(message)"])
  } else {
    sink.logger.debug("postgres notice", metadata: ["sqlstate": "\(code)", "notice": "\(message)"])
  }
}

/// Counts the round trips connections make to the server: one per statement sent alone, one per
/// pipeline however many statements it carries (the login handshake is not counted). Shared by a pool's
/// connections and read from any thread.
final class RoundTripCounter: Sendable {
  private let count = Atomic<Int>(0)

  var value: Int { self.count.load(ordering: .relaxed) }

  func add() { self.count.wrappingAdd(1, ordering: .relaxed) }
}

/// One PGconn, confined to its worker thread.
final class LibPQConnection {
  private var pointer: OpaquePointer?
  private let noticeSink: Unmanaged<NoticeSink>
  private let roundTrips: RoundTripCounter?
  /// Set when the protocol state is no longer known (a pipeline answered out of order): the
  /// connection must not be used again even if libpq still calls it OK.
  private var desynchronized = false

  private init(pointer: OpaquePointer, logger: Logger, roundTrips: RoundTripCounter?) {
    self.pointer = pointer
    self.roundTrips = roundTrips
    self.noticeSink = Unmanaged.passRetained(NoticeSink(logger: logger))
    PQsetNoticeReceiver(pointer, receiveNotice, self.noticeSink.toOpaque())
  }

  deinit {
    self.finish()
    self.noticeSink.release()
  }

  /// PQconnectdbParams with `expand_dbname`, so the `dbname` value may be a whole
  /// `postgresql://` URL or keyword/value string; later pairs override what it sets.
  static func connect(parameters: [(String, String)], logger: Logger, roundTrips: RoundTripCounter? = nil) throws
    -> LibPQConnection
  {
    let keywords = parameters.map { strdup($0.0) }
    let values = parameters.map { strdup($0.1) }
    defer {
      keywords.forEach { free($0) }
      values.forEach { free($0) }
    }
    let keywordPointers = keywords.map { UnsafePointer($0) } + [nil]
    let valuePointers = values.map { UnsafePointer($0) } + [nil]
    guard let pointer = PQconnectdbParams(keywordPointers, valuePointers, 1) else {
      throw PostgresError.connection("libpq could not allocate a connection")
    }
    guard PQstatus(pointer) == CONNECTION_OK else {
      let message = String(cString: PQerrorMessage(pointer)).trimmingTrailingNewlines()
      PQfinish(pointer)
      throw PostgresError.connection("could not connect: \(message)")
    }
    return LibPQConnection(pointer: pointer, logger: logger, roundTrips: roundTrips)
  }

  var isBroken: Bool {
    guard let pointer, !self.desynchronized, !self.noticeSink.takeUnretainedValue().sawFatal else { return true }
    return PQstatus(pointer) != CONNECTION_OK
  }

  var transactionStatus: TransactionStatus {
    guard let pointer else { return .unknown }
    switch PQtransactionStatus(pointer) {
    case PQTRANS_IDLE: return .idle
    case PQTRANS_ACTIVE: return .active
    case PQTRANS_INTRANS: return .inTransaction
    case PQTRANS_INERROR: return .failed
    default: return .unknown
    }
  }

  var backendPID: Int32 { self.pointer.map { PQbackendPID($0) } ?? 0 }
  var socket: Int32 { self.pointer.map { PQsocket($0) } ?? -1 }

  func makeCancelHandle() -> CancelHandle? {
    self.pointer.flatMap { PQgetCancel($0) }.map(CancelHandle.init)
  }

  /// Reads whatever the server sent while the connection was idle (a FATAL before it closed the
  /// socket, a notification) without blocking; false if the connection turns out to be broken.
  func absorbPendingInput() -> Bool {
    guard let pointer else { return false }
    // A server that ends the session sends a FATAL and then closes the socket: the first read
    // may get only the message, a later one the end of the stream (PQconsumeInput returns 0 and
    // libpq marks the connection bad). A few rounds cover both without ever blocking.
    for _ in 0..<4 where socketHasPendingInput(self.socket) {
      let readable = PQconsumeInput(pointer) == 1
      // Parses what was read: notifications are dropped (nothing here LISTENs), errors go to
      // the notice receiver.
      while let notification = PQnotifies(pointer) { PQfreemem(notification) }
      if !readable || self.isBroken { return false }
    }
    return !self.isBroken
  }

  func finish() {
    if let pointer {
      PQfinish(pointer)
      self.pointer = nil
    }
  }

  /// One statement through the extended protocol with an unnamed statement (PQexecParams).
  func execute(_ sql: String, _ parameters: [PostgresParameter]) throws -> ResultHandle {
    let pointer = try self.usablePointer(sql: sql)
    self.roundTrips?.add()
    let raw = try withParameterArrays(parameters) { count, types, values, lengths, formats in
      PQexecParams(pointer, sql, count, types, values, lengths, formats, PostgresFormat.text.rawValue)
    }
    return try self.result(raw, sql: sql)
  }

  /// One execution of a statement prepared on this connection (PQexecPrepared).
  func executePrepared(name: String, sql: String, _ parameters: [PostgresParameter]) throws -> ResultHandle {
    let pointer = try self.usablePointer(sql: sql)
    self.roundTrips?.add()
    let raw = try withParameterArrays(parameters) { count, _, values, lengths, formats in
      PQexecPrepared(pointer, name, count, values, lengths, formats, PostgresFormat.text.rawValue)
    }
    return try self.result(raw, sql: sql)
  }

  /// Sends every step in one write, each followed by its own sync point (so one step's failure
  /// neither aborts nor rolls back the others, exactly as if they had been sent one by one), and
  /// reads every answer. Throws only when the connection itself fails.
  /// Sends `steps` in one write and reads their answers in one go.
  ///
  /// - Parameter atomically: one sync point after the last step instead of one per step, so a
  ///   failing step makes the server skip every later one (answered `PIPELINE_ABORTED`). A
  ///   transaction's BEGIN and first statement go together this way: if BEGIN failed, the
  ///   statement must not run outside the transaction.
  func pipeline(_ steps: [PipelineStep], atomically: Bool = false) throws -> [Result<ResultHandle, PostgresError>] {
    let pointer = try self.usablePointer(sql: steps.first?.sql)
    self.roundTrips?.add()
    guard PQenterPipelineMode(pointer) == 1 else {
      throw self.connectionError("could not enter pipeline mode", sql: steps.first?.sql)
    }
    for (index, step) in steps.enumerated() {
      let sent: Int32
      switch step {
      case .prepare(let name, let sql, let types):
        sent = types.withUnsafeBufferPointer { PQsendPrepare(pointer, name, sql, Int32(types.count), $0.baseAddress) }
      case .execute(let sql, let parameters):
        sent = try withParameterArrays(parameters) { count, types, values, lengths, formats in
          PQsendQueryParams(pointer, sql, count, types, values, lengths, formats, PostgresFormat.text.rawValue)
        }
      case .executePrepared(let name, _, let parameters):
        sent = try withParameterArrays(parameters) { count, _, values, lengths, formats in
          PQsendQueryPrepared(pointer, name, count, values, lengths, formats, PostgresFormat.text.rawValue)
        }
      }
      let syncs = !atomically || index == steps.count - 1
      guard sent == 1, !syncs || PQpipelineSync(pointer) == 1 else {
        self.desynchronized = true
        throw self.connectionError("could not send a pipelined statement", sql: step.sql)
      }
    }
    var results: [Result<ResultHandle, PostgresError>] = []
    for (index, step) in steps.enumerated() {
      guard let raw = PQgetResult(pointer) else {
        self.desynchronized = true
        throw self.connectionError("the pipeline ended early", sql: step.sql)
      }
      if PQresultStatus(raw) == PGRES_PIPELINE_ABORTED {
        PQclear(raw)
        let message = "not run: an earlier pipelined statement failed"
        results.append(.failure(PostgresError(kind: .query, message: message, statement: step.sql)))
      } else {
        do {
          results.append(.success(try self.result(raw, sql: step.sql)))
        } catch let error as PostgresError {
          results.append(.failure(error))
        }
      }
      // Each statement's results end with NULL; then, where a sync point was sent, its result.
      if let extra = PQgetResult(pointer) {
        PQclear(extra)
        self.desynchronized = true
        throw self.connectionError("the pipeline answered out of order", sql: step.sql)
      }
      if !atomically || index == steps.count - 1 {
        let sync = PQgetResult(pointer)
        guard let sync, PQresultStatus(sync) == PGRES_PIPELINE_SYNC else {
          if let sync { PQclear(sync) }
          self.desynchronized = true
          throw self.connectionError("the pipeline answered out of order", sql: step.sql)
        }
        PQclear(sync)
      }
    }
    guard PQexitPipelineMode(pointer) == 1 else {
      self.desynchronized = true
      throw self.connectionError("could not leave pipeline mode", sql: steps.last?.sql)
    }
    return results
  }

  private func usablePointer(sql: String?) throws -> OpaquePointer {
    guard let pointer, !self.isBroken else {
      throw PostgresError(kind: .connection, message: "the connection is closed or broken", statement: sql)
    }
    return pointer
  }

  private func connectionError(_ what: String, sql: String?) -> PostgresError {
    let detail = self.pointer.map { String(cString: PQerrorMessage($0)).trimmingTrailingNewlines() } ?? ""
    return PostgresError(kind: .connection, message: detail.isEmpty ? what : "\(what): \(detail)", statement: sql)
  }

  /// The one place a libpq answer becomes rows or a `PostgresError`: the server's error fields
  /// when it sent an error, `.connection` when the connection is what failed.
  private func result(_ raw: OpaquePointer?, sql: String) throws -> ResultHandle {
    guard let raw else { throw self.connectionError("no answer from the server", sql: sql) }
    switch PQresultStatus(raw) {
    case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
      return ResultHandle(raw)
    default:
      defer { PQclear(raw) }
      func field(_ code: Character) -> String? {
        PQresultErrorField(raw, Int32(code.asciiValue!)).map { String(cString: $0) }
      }
      let sqlState = field("C")
      var message = field("M") ?? String(cString: PQresultErrorMessage(raw)).trimmingTrailingNewlines()
      if message.isEmpty { message = String(cString: PQerrorMessage(self.pointer)).trimmingTrailingNewlines() }
      let severity = field("V") ?? field("S")
      let kind: PostgresError.Kind
      // FATAL and PANIC end the session (the server closes it right after), whatever libpq has
      // noticed so far; an ERROR, even of class 08 (a protocol violation), leaves it usable.
      if self.isBroken || severity == "FATAL" || severity == "PANIC" {
        kind = .connection
      } else if sqlState == "57014" {
        kind = .timeout
      } else {
        kind = .query
      }
      throw PostgresError(
        kind: kind,
        message: message,
        sqlState: sqlState,
        severity: severity,
        detail: field("D"),
        hint: field("H"),
        schema: field("s"),
        table: field("t"),
        column: field("c"),
        constraint: field("n"),
        statement: sql
      )
    }
  }
}

/// Lays the parameters out as libpq wants them: one array each of types, value pointers,
/// lengths and formats, with text values NUL-terminated, all valid for the call in `body`.
private func withParameterArrays<R>(
  _ parameters: [PostgresParameter],
  _ body: (Int32, UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) throws -> R
) throws -> R {
  guard parameters.count <= Int(UInt16.max) else {
    throw PostgresError.encoding("\(parameters.count) parameters; the protocol allows at most 65535")
  }
  var storage: [UInt8] = [0]
  var offsets: [Int?] = []
  offsets.reserveCapacity(parameters.count)
  for parameter in parameters {
    guard let bytes = parameter.bytes else {
      offsets.append(nil)
      continue
    }
    guard bytes.count < Int(Int32.max) else {
      throw PostgresError.encoding("a parameter of \(bytes.count) bytes is larger than the protocol allows")
    }
    offsets.append(storage.count)
    storage += bytes
    if parameter.format == .text { storage.append(0) }
  }
  let types = parameters.map { Oid($0.type.oid) }
  let lengths = parameters.map { Int32($0.bytes?.count ?? 0) }
  let formats = parameters.map { $0.format.rawValue }
  return try storage.withUnsafeBytes { buffer in
    let base = buffer.baseAddress!
    let values: [UnsafePointer<CChar>?] = offsets.map { offset in
      offset.map { (base + $0).assumingMemoryBound(to: CChar.self) }
    }
    return try types.withUnsafeBufferPointer { types in
      try values.withUnsafeBufferPointer { values in
        try lengths.withUnsafeBufferPointer { lengths in
          try formats.withUnsafeBufferPointer { formats in
            try body(Int32(parameters.count), types.baseAddress, values.baseAddress, lengths.baseAddress, formats.baseAddress)
          }
        }
      }
    }
  }
}

extension String {
  func trimmingTrailingNewlines() -> String {
    var text = Substring(self)
    while let last = text.last, last.isNewline || last == " " { text.removeLast() }
    return String(text)
  }
}

/// Whether the socket has anything to read right now (poll with a zero timeout: never blocks).
/// An idle connection has nothing to read unless the server sent a FATAL and closed it, or a
/// notification arrived, so readable means "look closer before handing this out".
func socketHasPendingInput(_ socket: Int32) -> Bool {
  guard socket >= 0 else { return true }
  var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
  let ready = poll(&descriptor, 1, 0)
  return ready != 0
}
