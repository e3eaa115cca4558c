public import Logging
public import Postgres

/// What a run of the migrator did.
public struct MigrationReport: Sendable, Hashable {
  /// Versions applied by this run, in order.
  public var applied: [Int]
  /// The schema's version afterwards.
  public var version: Int
  /// Versions recorded in the database that this binary does not know (a newer release ran);
  /// they are left alone, so that an older replica keeps working during a rolling update.
  public var unknown: [Int]
}

/// Applies a schema's migrations, once, however many replicas start at the same moment.
///
/// Each schema has a session-level advisory lock (a key derived from its name): the migrator
/// takes it on one connection and runs each pending migration in its own transaction on another,
/// recording it in `<schema>.schema_migrations` inside that same transaction. A migration is thus
/// either applied and recorded, or neither (a `concurrentIndex` migration builds its index first,
/// outside any transaction, then records it; see there). Processes that lose the race for the
/// lock wait, then find nothing left to do.
public struct Migrator: Sendable {
  public let pool: PostgresPool
  public let logger: Logger
  /// How long to wait for another process's migration run before giving up.
  public var lockWait: Duration
  private let sleep: @Sendable (Duration) async throws -> Void

  /// - Parameter pool: connects as the role that owns the schemas (two connections are used).
  public init(
    pool: PostgresPool,
    logger: Logger,
    lockWait: Duration = .seconds(60),
    sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
  ) {
    self.pool = pool
    self.logger = logger
    self.lockWait = lockWait
    self.sleep = sleep
  }

  /// Applies every migration of `plan` the database has not recorded yet.
  ///
  /// - Throws: `MigrationError.changedMigration` when a recorded migration differs from the
  ///   plan's, `.lockTimeout` when another run held the lock past `lockWait`, `.failed` (with the
  ///   database's error) when a migration's statements fail; `PostgresError` when the database
  ///   cannot be reached.
  @discardableResult
  public func apply(_ plan: MigrationPlan) async throws -> MigrationReport {
    try await self.pool.withConnection { lockConnection in
      try await self.acquireLock(for: plan, on: lockConnection)
      do {
        let report = try await self.applyHoldingLock(plan)
        _ = try await lockConnection.query("SELECT pg_advisory_unlock($1)", [Self.lockKey(plan.schema)])
        return report
      } catch {
        // The lock is per session; if the unlock cannot be sent, the connection is broken and
        // the server has released the lock with it.
        _ = try? await lockConnection.query("SELECT pg_advisory_unlock($1)", [Self.lockKey(plan.schema)])
        throw error
      }
    }
  }

  /// The versions recorded in the database, in order (empty when the schema has none yet).
  public func appliedVersions(_ plan: MigrationPlan) async throws -> [Int] {
    let exists = try await self.pool.query(
      "SELECT to_regclass($1) IS NOT NULL", [plan.schema + ".schema_migrations"]
    )
    guard try exists.first?.decode(Bool.self, at: 0) == true else { return [] }
    let rows = try await self.pool.query(
      "SELECT version FROM \(plan.quotedSchema).schema_migrations ORDER BY version", []
    )
    return try rows.map { try Int($0.decode(Int64.self, at: 0)) }
  }

  private func acquireLock(for plan: MigrationPlan, on connection: PostgresConnection) async throws {
    // pg_try_advisory_lock in a loop rather than pg_advisory_lock: the wait stays bounded and
    // cancellable, and never ties up a connection's thread in the server.
    let clock = ContinuousClock()
    let start = clock.now
    var pause = Duration.milliseconds(20)
    while true {
      let rows = try await connection.query("SELECT pg_try_advisory_lock($1)", [Self.lockKey(plan.schema)])
      if try rows.first?.decode(Bool.self, at: 0) == true { return }
      let waited = start.duration(to: clock.now)
      if waited >= self.lockWait { throw MigrationError.lockTimeout(schema: plan.schema, waited: waited) }
      self.logger.debug("waiting for the migration lock", metadata: ["schema": "\(plan.schema)"])
      try await self.sleep(pause)
      pause = min(pause * 2, .milliseconds(500))
    }
  }

  private func applyHoldingLock(_ plan: MigrationPlan) async throws -> MigrationReport {
    try await self.pool.transaction { tx in
      _ = try await tx.execute("CREATE SCHEMA IF NOT EXISTS \(plan.quotedSchema)", [])
      _ = try await tx.execute(
        """
        CREATE TABLE IF NOT EXISTS \(plan.quotedSchema).schema_migrations (
          version integer PRIMARY KEY,
          name text NOT NULL,
          checksum text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now(),
          duration_ms integer NOT NULL
        )
        """,
        []
      )
    }
    let rows = try await self.pool.query(
      "SELECT version, name, checksum FROM \(plan.quotedSchema).schema_migrations ORDER BY version", []
    )
    var recorded: [Int: String] = [:]
    for row in rows {
      recorded[Int(try row.decode(Int64.self, column: "version"))] = try row.decode(String.self, column: "checksum")
    }
    for migration in plan.migrations {
      if let checksum = recorded[migration.version], checksum != migration.checksum {
        throw MigrationError.changedMigration(
          version: migration.version, name: migration.name, applied: checksum, shipped: migration.checksum
        )
      }
    }
    let known = Set(plan.migrations.map(\.version))
    let unknown = recorded.keys.filter { !known.contains($0) }.sorted()
    if !unknown.isEmpty {
      self.logger.warning(
        "the database has migrations this binary does not know; a newer release has run",
        metadata: ["schema": "\(plan.schema)", "versions": "\(unknown)"]
      )
    }

    var applied: [Int] = []
    for migration in plan.migrations where recorded[migration.version] == nil {
      let clock = ContinuousClock()
      let start = clock.now
      do {
        if let index = migration.concurrentIndexName {
          try await self.buildConcurrently(migration, index: index, in: plan)
        }
        try await self.pool.transaction { tx in
          if migration.concurrentIndexName == nil {
            // Unqualified names in a migration mean the plan's schema.
            _ = try await tx.execute("SET LOCAL search_path TO \(plan.quotedSchema)", [])
            for statement in migration.statements {
              _ = try await tx.execute(statement, [])
            }
          }
          let elapsed = start.duration(to: clock.now)
          _ = try await tx.execute(
            "INSERT INTO \(plan.quotedSchema).schema_migrations (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)",
            [migration.version, migration.name, migration.checksum, Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)]
          )
        }
      } catch {
        throw MigrationError.failed(version: migration.version, name: migration.name, cause: error)
      }
      applied.append(migration.version)
      self.logger.info(
        "migration applied",
        metadata: ["schema": "\(plan.schema)", "version": "\(migration.version)", "name": "\(migration.name)"]
      )
    }
    let version = max(plan.migrations.last?.version ?? 0, recorded.keys.max() ?? 0)
    return MigrationReport(applied: applied, version: version, unknown: unknown)
  }

  /// Builds the index of a `concurrentIndex` migration, outside any transaction, on one
  /// connection whose search path is the plan's schema for the build only. Leaves the schema as
  /// it was when the build fails; an index of that name already valid is a previous run's that
  /// died before recording it, and is kept.
  private func buildConcurrently(_ migration: Migration, index: String, in plan: MigrationPlan) async throws {
    let qualified = "\(plan.quotedSchema).\"\(index)\""
    try await self.pool.withConnection { connection in
      switch try await Self.validity(of: index, in: plan, on: connection) {
      case true?:
        self.logger.notice("index already built; recording its migration", metadata: ["schema": "\(plan.schema)", "index": "\(index)"])
        return
      case false?:
        // Left invalid by a run that died while building it: in the way of the build, and of no use.
        self.logger.notice("dropping an index left invalid by an earlier run", metadata: ["schema": "\(plan.schema)", "index": "\(index)"])
        _ = try await connection.execute("DROP INDEX CONCURRENTLY IF EXISTS \(qualified)", [])
      case nil:
        break
      }
      _ = try await connection.execute("SELECT set_config('search_path', $1, false)", [plan.quotedSchema])
      do {
        _ = try await connection.execute(migration.statements[0], [])
      } catch {
        // A failed build leaves its index in the catalog, invalid (and still written to by every
        // insert): gone, so that the schema is as it was.
        _ = try? await connection.execute("RESET search_path", [])
        if (try? await Self.validity(of: index, in: plan, on: connection)) == false {
          _ = try? await connection.execute("DROP INDEX CONCURRENTLY IF EXISTS \(qualified)", [])
        }
        throw error
      }
      _ = try await connection.execute("RESET search_path", [])
    }
  }

  /// Whether index `index` of the plan's schema is valid; nil when there is no such index.
  private static func validity(of index: String, in plan: MigrationPlan, on connection: PostgresConnection) async throws -> Bool? {
    let rows = try await connection.query(
      """
      SELECT i.indisvalid FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relname = $2
      """, [plan.schema, index])
    return try rows.first.map { try $0.decode(Bool.self, at: 0) }
  }

  /// The advisory-lock key of a schema: FNV-1a (64 bit) of "maas.migrations.<schema>", stable
  /// across processes and releases.
  static func lockKey(_ schema: String) -> Int64 {
    Int64(bitPattern: fnv1a64(["maas.migrations.\(schema)"]))
  }
}
