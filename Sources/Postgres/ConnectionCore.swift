import Logging

/// A connection's worker-side state: the libpq connection and its prepared statements. Lives on
/// the connection's worker thread and is used only there.
final class ConnectionCore {
  let pq: LibPQConnection
  private var statements: StatementCache
  private let slowQueryThreshold: Duration?
  private let logger: Logger

  init(pq: LibPQConnection, configuration: PostgresConfiguration, logger: Logger) {
    self.pq = pq
    self.statements = StatementCache(capacity: configuration.statementCacheCapacity)
    self.slowQueryThreshold = configuration.slowQueryThreshold
    self.logger = logger
  }

  /// One statement. A statement seen for the first time on this connection is prepared and run
  /// in one round trip (a pipeline); after that only its execution is sent, and the server skips
  /// parsing and planning.
  func query(_ sql: String, _ parameters: [PostgresParameter]) throws -> ResultHandle {
    let start = ContinuousClock.now
    defer { self.logIfSlow(sql, since: start) }
    self.deallocateEvicted()
    guard self.statements.capacity > 0 else { return try self.pq.execute(sql, parameters) }

    let key = StatementKey(sql: sql, types: parameters.map(\.type.oid))
    if let name = self.statements.lookup(key) {
      do {
        return try self.pq.executePrepared(name: name, sql: sql, parameters)
      } catch let error as PostgresError where Self.isStale(error) {
        // Someone ran DEALLOCATE/DISCARD, or the schema changed under a cached plan: forget the
        // statement and prepare it again, unless a transaction is open (it is now aborted, and
        // only the caller can decide to run it again).
        self.statements.remove(key, deallocate: error.sqlState != "26000")
        guard self.pq.transactionStatus == .idle else { throw error }
      }
    }
    let (name, evicted) = self.statements.insert(key)
    if let evicted { self.statements.pendingDeallocation.append(evicted) }
    let results = try self.pq.pipeline([
      .prepare(name: name, sql: sql, types: key.types),
      .executePrepared(name: name, sql: sql, parameters: parameters),
    ])
    if case .failure(let error) = results[0] {
      self.statements.remove(key, deallocate: false)
      throw error
    }
    return try results[1].get()
  }

  /// A transaction's BEGIN statement and its settings (`SET LOCAL`, through `set_config`).
  typealias Beginning = (sql: String, settings: [(name: String, value: String)])

  /// Statements sent in one round trip, after `beginning` (a transaction's BEGIN and settings)
  /// and before `after` (its COMMIT), atomically: if any step fails, the later ones do not run.
  /// The server still runs each statement only once the one before it has finished, so each
  /// takes its own snapshot (under READ COMMITTED, one that includes what others committed while
  /// an earlier statement waited for a lock).
  /// - Parameter committedFirst: a transaction of its own (begun as `beginning` says, one
  ///   statement, its COMMIT) sent ahead of the rest: its COMMIT runs before the rest begins,
  ///   so it stays committed whatever happens after. If it fails, the server skips the rest and
  ///   is left in its aborted transaction, which the caller rolls back.
  /// - Returns: each statement's result, in order (not `committedFirst`'s).
  /// - Throws: the first failure among `committedFirst`, `beginning`, the statements and `after`.
  func query(
    _ statements: [(sql: String, parameters: [PostgresParameter])], beginning: Beginning?, after: [PipelineStep],
    committedFirst: (sql: String, parameters: [PostgresParameter])? = nil
  ) throws -> [ResultHandle] {
    let start = ContinuousClock.now
    defer { self.logIfSlow(statements.map(\.sql).joined(separator: "; "), since: start) }
    self.deallocateEvicted()
    var steps: [PipelineStep] = []
    // Every statement sent, for the cache's bookkeeping below; the caller's, for the answer.
    var owned: [(steps: Range<Int>, prepared: (key: StatementKey, new: Bool)?)] = []
    var answered: [Range<Int>] = []
    if let committedFirst {
      guard let beginning else { preconditionFailure("a transaction committed first needs its BEGIN") }
      owned += try self.append(beginning, to: &steps)
      owned.append(self.append(committedFirst, to: &steps))
      steps.append(.execute(sql: "COMMIT", parameters: []))
    }
    if let beginning { owned += try self.append(beginning, to: &steps) }
    for statement in statements {
      let sent = self.append(statement, to: &steps)
      owned.append(sent)
      answered.append(sent.steps)
    }
    steps += after
    let results = try self.pq.pipeline(steps, atomically: true)
    for (range, prepared) in owned {
      if case .failure(let error) = results[range.lowerBound], let prepared, prepared.new || Self.isStale(error) {
        // A new statement that did not prepare (or never ran: a step before it failed), or a
        // cached one the server no longer has (DISCARD, a schema change): forget it; the
        // caller's transaction is aborted either way.
        self.statements.remove(prepared.key, deallocate: !prepared.new && error.sqlState != "26000")
      }
    }
    // With one sync point, the first failure is the one that made the server skip the rest.
    for result in results { _ = try result.get() }
    return try answered.map { try results[$0.upperBound - 1].get() }
  }

  /// Appends BEGIN and the transaction's settings: all of them in one statement, prepared like
  /// any other, so that the server neither parses nor plans it per transaction.
  private func append(
    _ beginning: Beginning, to steps: inout [PipelineStep]
  ) throws -> [(steps: Range<Int>, prepared: (key: StatementKey, new: Bool)?)] {
    steps.append(.execute(sql: beginning.sql, parameters: []))
    guard !beginning.settings.isEmpty else { return [] }
    return [self.append(try Self.settingsStatement(beginning.settings), to: &steps)]
  }

  /// `SELECT set_config($1, $2, true), ...`: SET LOCAL of each setting, the values as parameters.
  static func settingsStatement(_ settings: [(name: String, value: String)]) throws -> (sql: String, parameters: [PostgresParameter]) {
    let calls = settings.indices.map { "set_config($\(2 * $0 + 1), $\(2 * $0 + 2), true)" }
    let parameters = try settings.flatMap { [try $0.name.postgresParameter(), try $0.value.postgresParameter()] }
    return ("SELECT " + calls.joined(separator: ", "), parameters)
  }

  /// Appends the steps that run `statement`: its prepared statement when the cache has it, else
  /// PREPARE then the execution (the cache taking it), or a plain execution with the cache off.
  /// - Returns: the steps it took, and the cache entry it used.
  private func append(
    _ statement: (sql: String, parameters: [PostgresParameter]), to steps: inout [PipelineStep]
  ) -> (steps: Range<Int>, prepared: (key: StatementKey, new: Bool)?) {
    let (sql, parameters) = statement
    let first = steps.count
    guard self.statements.capacity > 0 else {
      steps.append(.execute(sql: sql, parameters: parameters))
      return (first..<steps.count, nil)
    }
    let key = StatementKey(sql: sql, types: parameters.map(\.type.oid))
    if let name = self.statements.lookup(key) {
      steps.append(.executePrepared(name: name, sql: sql, parameters: parameters))
      return (first..<steps.count, (key, false))
    }
    let (name, evicted) = self.statements.insert(key)
    if let evicted { self.statements.pendingDeallocation.append(evicted) }
    steps.append(.prepare(name: name, sql: sql, types: key.types))
    steps.append(.executePrepared(name: name, sql: sql, parameters: parameters))
    return (first..<steps.count, (key, true))
  }

  /// BEGIN and the transaction's settings, in one round trip.
  func begin(_ beginning: Beginning) throws {
    _ = try self.query([], beginning: beginning, after: [])
  }

  /// COMMIT, unless a statement failed and the server has already aborted the transaction: then
  /// ROLLBACK and throw `aborted`.
  func commit(aborted: PostgresError) throws {
    switch self.pq.transactionStatus {
    case .failed:
      _ = try? self.pq.execute("ROLLBACK", [])
      throw aborted
    default:
      _ = try self.pq.execute("COMMIT", [])
    }
  }

  /// ROLLBACK if a transaction is open; nothing otherwise.
  func rollbackIfNeeded() {
    switch self.pq.transactionStatus {
    case .inTransaction, .failed:
      _ = try? self.pq.execute("ROLLBACK", [])
    case .idle, .active, .unknown:
      break
    }
  }

  private func deallocateEvicted() {
    guard !self.statements.pendingDeallocation.isEmpty, self.pq.transactionStatus == .idle else { return }
    for name in self.statements.pendingDeallocation {
      // The name is one this cache made up ("maas_<n>"), never caller input.
      _ = try? self.pq.execute("DEALLOCATE \(name)", [])
    }
    self.statements.pendingDeallocation.removeAll()
  }

  /// `sql` is only formed for a slow statement: a batch's joined text would cost every call.
  private func logIfSlow(_ sql: @autoclosure () -> String, since start: ContinuousClock.Instant) {
    guard let threshold = self.slowQueryThreshold else { return }
    let elapsed = ContinuousClock.now - start
    guard elapsed >= threshold else { return }
    self.logger.warning(
      "slow postgres statement",
      metadata: [
        "sql": "\(Self.excerpt(sql(), limit: Self.loggedSQLBytes))", "duration_ms": "\(elapsed.wholeMilliseconds)",
        "backend_pid": "\(self.pq.backendPID)",
      ]
    )
  }

  /// How much of a slow statement's SQL is logged: enough to recognise it. A batch's joined text
  /// runs to kilobytes, and a stalled database logs one line per waiting statement.
  static let loggedSQLBytes = 512

  /// `sql` cut to at most `limit` bytes on a character boundary, saying how long it was.
  static func excerpt(_ sql: String, limit: Int) -> String {
    let total = sql.utf8.count
    guard total > limit else { return sql }
    var kept = ""
    var bytes = 0
    for character in sql {
      let size = character.utf8.count
      if bytes + size > limit { break }
      kept.append(character)
      bytes += size
    }
    return "\(kept)... (\(total) bytes in all)"
  }

  /// 26000: the prepared statement is gone. 0A000 on a cached statement: "cached plan must not
  /// change result type" after a schema change.
  private static func isStale(_ error: PostgresError) -> Bool {
    error.kind == .query && (error.sqlState == "26000" || error.sqlState == "0A000")
  }
}

/// A prepared statement is specific to its parameter types: the same SQL sent once with a NULL
/// (type left to the server) and once with an Int (int8) needs two statements.
struct StatementKey: Hashable {
  let sql: String
  let types: [UInt32]
}

/// Names of the statements prepared on one connection, least recently used evicted first.
struct StatementCache {
  let capacity: Int
  private var entries: [StatementKey: (name: String, lastUse: UInt64)] = [:]
  private var clock: UInt64 = 0
  private var nextNumber = 0
  /// Evicted statements still prepared on the server; deallocated when no transaction is open
  /// (DEALLOCATE fails inside an aborted one).
  var pendingDeallocation: [String] = []

  init(capacity: Int) { self.capacity = capacity }

  mutating func lookup(_ key: StatementKey) -> String? {
    guard let entry = self.entries[key] else { return nil }
    self.clock += 1
    self.entries[key] = (entry.name, self.clock)
    return entry.name
  }

  /// Adds a statement under a fresh name; returns the name of the one it pushed out, if any.
  mutating func insert(_ key: StatementKey) -> (name: String, evicted: String?) {
    var evicted: String?
    if self.entries.count >= self.capacity, let oldest = self.entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
      self.entries[oldest.key] = nil
      evicted = oldest.value.name
    }
    self.nextNumber += 1
    self.clock += 1
    let name = "maas_\(self.nextNumber)"
    self.entries[key] = (name, self.clock)
    return (name, evicted)
  }

  mutating func remove(_ key: StatementKey, deallocate: Bool) {
    guard let entry = self.entries.removeValue(forKey: key) else { return }
    if deallocate { self.pendingDeallocation.append(entry.name) }
  }
}
