/// One step of a schema's history: statements that run together in one transaction, or one
/// index built without blocking writes (`concurrentIndex`).
///
/// A migration never changes once it has shipped: the runner stores a checksum of its statements
/// and refuses to go on when an applied migration no longer matches (a later change belongs in a
/// new migration).
public struct Migration: Sendable, Hashable {
  /// Position in the schema's history: 1, 2, 3, ... with no gaps.
  public let version: Int
  /// A short description, recorded with the version (`create_limits`).
  public let name: String
  /// SQL run in order, in one transaction, with the plan's schema as the search path (so
  /// `CREATE TABLE limits` creates `quota.limits`). Postgres' DDL is transactional, so a
  /// migration that fails part-way leaves the schema exactly as it was.
  public let statements: [String]
  /// The index a `concurrentIndex` migration builds; nil for a transactional one.
  public let concurrentIndexName: String?

  public init(_ version: Int, _ name: String, _ statements: [String]) {
    self.version = version
    self.name = name
    self.statements = statements
    self.concurrentIndexName = nil
  }

  private init(_ version: Int, _ name: String, concurrentIndex index: String, statement: String) {
    self.version = version
    self.name = name
    self.statements = [statement]
    self.concurrentIndexName = index
  }

  /// A migration that builds index `index` of the plan's schema with `CREATE INDEX
  /// CONCURRENTLY`: writes to the table go on while it builds, where a plain CREATE INDEX in a
  /// transactional migration blocks every insert, update and delete of a large table until it is
  /// done (during a rolling update, the old replicas still serve from that table).
  ///
  /// Postgres refuses CONCURRENTLY inside a transaction, so this migration is not all or
  /// nothing as the others are. The runner makes it so: a build that fails leaves an invalid
  /// index behind, which the runner drops before it reports the failure; one left by a run that
  /// died is dropped and built again by the next run; the migration is recorded only once the
  /// index is valid. The build waits for every transaction already open on the database to end.
  ///
  /// - Parameters:
  ///   - index: the index's name, a plain lower-case identifier (checked by `MigrationPlan`).
  ///   - unique: CREATE UNIQUE INDEX; duplicates fail the build (and the migration).
  ///   - definition: the rest of the statement, from `ON`: `ON allocations (state, create_time, id)`.
  public static func concurrentIndex(
    _ version: Int, _ name: String, index: String, unique: Bool = false, _ definition: String
  ) -> Migration {
    Migration(
      version, name, concurrentIndex: index,
      statement: "CREATE \(unique ? "UNIQUE " : "")INDEX CONCURRENTLY \(index) \(definition)")
  }

  /// FNV-1a (64 bit) over the statements: stable across processes and releases, unlike Swift's
  /// seeded Hasher; it detects edits, it does not defend against tampering.
  public var checksum: String {
    String(fnv1a64(self.statements), radix: 16)
  }
}

/// A schema and its migrations: what one service ships in its binary.
public struct MigrationPlan: Sendable {
  /// The Postgres schema the service owns (`quota`, `registry`, ...).
  public let schema: String
  public let migrations: [Migration]

  /// - Throws: `MigrationError.invalidPlan` listing every problem: a schema name that is not a
  ///   plain lower-case identifier, versions that do not run 1, 2, 3, ..., empty names or
  ///   statements, an index name that is not a plain identifier.
  public init(schema: String, migrations: [Migration]) throws(MigrationError) {
    var problems: [String] = []
    if !Self.isPlainIdentifier(schema) {
      problems.append("schema \"\(schema)\" is not a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 characters)")
    }
    for (index, migration) in migrations.enumerated() {
      if migration.version != index + 1 {
        problems.append("migration \"\(migration.name)\" has version \(migration.version); expected \(index + 1)")
      }
      if migration.name.isEmpty { problems.append("migration \(migration.version) has no name") }
      if migration.statements.isEmpty || migration.statements.contains(where: { $0.isEmpty }) {
        problems.append("migration \(migration.version) has an empty statement list or statement")
      }
      if let index = migration.concurrentIndexName, !Self.isPlainIdentifier(index) {
        problems.append("migration \(migration.version)'s index \"\(index)\" is not a lower-case identifier")
      }
    }
    guard problems.isEmpty else { throw .invalidPlan(problems) }
    self.schema = schema
    self.migrations = migrations
  }

  /// The schema name, double-quoted for SQL. Identifiers cannot be bound as parameters; this is
  /// one of the two names spliced into SQL (with a `concurrentIndex`'s index), and only after
  /// `isPlainIdentifier` has vetted it.
  var quotedSchema: String { "\"\(self.schema)\"" }

  static func isPlainIdentifier(_ name: String) -> Bool {
    guard let first = name.utf8.first, name.utf8.count <= 63 else { return false }
    let isLetter = { (byte: UInt8) in (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F }
    return isLetter(first) && name.utf8.allSatisfy { isLetter($0) || ($0 >= 0x30 && $0 <= 0x39) }
  }
}

/// Why migrations did not apply.
public enum MigrationError: Error, Sendable, CustomStringConvertible {
  /// The plan itself is wrong (caught before touching the database).
  case invalidPlan([String])
  /// An applied migration's statements differ from the binary's.
  case changedMigration(version: Int, name: String, applied: String, shipped: String)
  /// Another process held the schema's migration lock for longer than the wait allowed.
  case lockTimeout(schema: String, waited: Duration)
  /// A migration failed; its transaction was rolled back (a `concurrentIndex` one: its index dropped).
  case failed(version: Int, name: String, cause: any Error)

  public var description: String {
    switch self {
    case .invalidPlan(let problems):
      return "invalid migration plan: " + problems.joined(separator: "; ")
    case .changedMigration(let version, let name, let applied, let shipped):
      return "migration \(version) (\(name)) was applied with checksum \(applied) but the binary ships \(shipped): "
        + "shipped migrations must not change; add a new one"
    case .lockTimeout(let schema, let waited):
      return "another process held the migration lock of schema \(schema) for over \(waited)"
    case .failed(let version, let name, let cause):
      return "migration \(version) (\(name)) failed and was undone: \(cause)"
    }
  }
}

/// FNV-1a (64 bit) over strings, each followed by a NUL so that ["ab", "c"] and ["a", "bc"]
/// differ.
func fnv1a64(_ strings: [String]) -> UInt64 {
  var hash: UInt64 = 0xcbf2_9ce4_8422_2325
  for string in strings {
    for byte in string.utf8 + [0] {
      hash ^= UInt64(byte)
      hash = hash &* 0x100_0000_01b3
    }
  }
  return hash
}

extension Migration {
  /// The first migration of every service schema: the service's role may use the schema, and
  /// every table and sequence the owner creates in it later is open to that role for reading and
  /// writing (row-level security then narrows it to one tenant's rows).
  ///
  /// - Throws: `MigrationError.invalidPlan` when `schema` or `role` is not a plain lower-case
  ///   identifier; both are spliced into SQL, since identifiers cannot be bound as parameters.
  public static func serviceRoleGrants(_ version: Int, schema: String, role: String) throws(MigrationError) -> Migration {
    let problems = [("schema", schema), ("role", role)].compactMap { kind, name in
      MigrationPlan.isPlainIdentifier(name) ? nil : "\(kind) \"\(name)\" is not a lower-case identifier"
    }
    guard problems.isEmpty else { throw .invalidPlan(problems) }
    return Migration(version, "grant_\(role)", [
      "GRANT USAGE ON SCHEMA \"\(schema)\" TO \"\(role)\"",
      "ALTER DEFAULT PRIVILEGES IN SCHEMA \"\(schema)\" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO \"\(role)\"",
      "ALTER DEFAULT PRIVILEGES IN SCHEMA \"\(schema)\" GRANT USAGE, SELECT ON SEQUENCES TO \"\(role)\"",
    ])
  }
}

extension Migration {
  /// The statements that hold each of `tables` to one tenant for the service role: row-level
  /// security on `tenant_id = current_setting('maas.tenant_id', true)` (set per transaction by
  /// `PostgresPool.transaction(tenant:)`), for reads and writes alike. Not FORCE: the owner
  /// (migrations, SECURITY DEFINER functions) sees every row.
  ///
  /// - Throws: `MigrationError.invalidPlan` when a table name is not a plain lower-case
  ///   identifier; names are spliced into SQL, since identifiers cannot be bound as parameters.
  public static func tenantIsolation(_ tables: [String]) throws(MigrationError) -> [String] {
    let problems = tables.filter { !MigrationPlan.isPlainIdentifier($0) }.map { "table \"\($0)\" is not a lower-case identifier" }
    guard problems.isEmpty else { throw .invalidPlan(problems) }
    return tables.flatMap { table in
      [
        "ALTER TABLE \(table) ENABLE ROW LEVEL SECURITY",
        """
        CREATE POLICY tenant_isolation ON \(table)
          USING (tenant_id = current_setting('maas.tenant_id', true))
          WITH CHECK (tenant_id = current_setting('maas.tenant_id', true))
        """,
      ]
    }
  }
}
