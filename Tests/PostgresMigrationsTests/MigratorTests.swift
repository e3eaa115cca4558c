import Logging
import MaaSTesting
import Postgres
import PostgresMigrations
import Testing

let quietLogger = Logger(label: "maas.migrations.test") { _ in SwiftLogNoOpLogHandler() }

/// A fresh database per test (migrations change schemas; tests must not see each other's).
func withFreshDatabase<Result>(
  _ name: String,
  _ body: (PostgresTestDatabase, PostgresPool) async throws -> Result
) async throws -> Result {
  let database = try await PostgresFixture.shared().createDatabase(named: name)
  let pool = try PostgresPool(
    configuration: PostgresConfiguration(url: database.ownerURL, minConnections: 0, maxConnections: 4),
    logger: quietLogger
  )
  do {
    let result = try await body(database, pool)
    await pool.close()
    return result
  } catch {
    await pool.close()
    throw error
  }
}

func plan(_ schema: String, _ migrations: [Migration]) throws -> MigrationPlan {
  try MigrationPlan(schema: schema, migrations: migrations)
}

let widgets = [
  Migration(1, "create_widgets", ["CREATE TABLE widgets (id bigint PRIMARY KEY, name text NOT NULL)"]),
  Migration(2, "add_colour", ["ALTER TABLE widgets ADD COLUMN colour text"]),
]

@Suite("Migrations against a real Postgres", .serialized, .timeLimit(.minutes(2)))
struct MigratorTests {
  @Test("pending migrations apply in order and are recorded; a second run applies nothing")
  func appliesOnce() async throws {
    try await withFreshDatabase("migrations_apply_once") { _, pool in
      let plan = try plan("shop", widgets)
      let migrator = Migrator(pool: pool, logger: quietLogger)
      let first = try await migrator.apply(plan)
      #expect(first.applied == [1, 2])
      #expect(first.version == 2)
      let second = try await migrator.apply(plan)
      #expect(second.applied == [])
      #expect(try await migrator.appliedVersions(plan) == [1, 2])
      // The tables landed in the plan's schema, not in public.
      let columns = try await pool.query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        ["shop", "widgets"]
      )
      #expect(try columns.map { try $0.decode(String.self, at: 0) } == ["id", "name", "colour"])
    }
  }

  @Test("a later release's migration applies on top of the recorded ones")
  func appliesOnlyTheNewOnes() async throws {
    try await withFreshDatabase("migrations_incremental") { _, pool in
      let migrator = Migrator(pool: pool, logger: quietLogger)
      try await migrator.apply(try plan("shop", [widgets[0]]))
      let report = try await migrator.apply(try plan("shop", widgets))
      #expect(report.applied == [2])
    }
  }

  @Test("a failing migration leaves the schema as it was and says which one failed")
  func failureRollsBack() async throws {
    try await withFreshDatabase("migrations_failure") { _, pool in
      let broken = try plan("shop", [
        widgets[0],
        Migration(2, "half_done", [
          "CREATE TABLE gadgets (id bigint PRIMARY KEY)",
          "ALTER TABLE no_such_table ADD COLUMN x int",
        ]),
      ])
      let migrator = Migrator(pool: pool, logger: quietLogger)
      await #expect {
        try await migrator.apply(broken)
      } throws: { error in
        guard case MigrationError.failed(let version, let name, _) = error else { return false }
        return version == 2 && name == "half_done"
      }
      // Migration 1 stands; nothing of migration 2 does, neither its table nor its record.
      #expect(try await migrator.appliedVersions(broken) == [1])
      let gadgets = try await pool.query("SELECT to_regclass('shop.gadgets') IS NULL", [])
      #expect(try gadgets.first?.decode(Bool.self, at: 0) == true)
    }
  }

  @Test("a shipped migration that was edited is refused")
  func editedMigrationIsRefused() async throws {
    try await withFreshDatabase("migrations_edited") { _, pool in
      let migrator = Migrator(pool: pool, logger: quietLogger)
      try await migrator.apply(try plan("shop", [widgets[0]]))
      let edited = Migration(1, "create_widgets", ["CREATE TABLE widgets (id bigint PRIMARY KEY)"])
      await #expect {
        try await migrator.apply(try plan("shop", [edited]))
      } throws: { error in
        guard case MigrationError.changedMigration(let version, _, _, _) = error else { return false }
        return version == 1
      }
    }
  }

  @Test("an older binary leaves a newer release's migrations alone and reports them")
  func newerDatabaseIsTolerated() async throws {
    try await withFreshDatabase("migrations_newer") { _, pool in
      let migrator = Migrator(pool: pool, logger: quietLogger)
      try await migrator.apply(try plan("shop", widgets))
      let report = try await migrator.apply(try plan("shop", [widgets[0]]))
      #expect(report.applied == [])
      #expect(report.unknown == [2])
    }
  }

  @Test("many migrators started together apply each migration exactly once")
  func concurrentMigratorsApplyOnce() async throws {
    try await withFreshDatabase("migrations_concurrent") { database, _ in
      // CREATE TABLE without IF NOT EXISTS: a second application would fail, so every run
      // succeeding proves that each migration ran once. Each migrator has a pool of its own, as
      // separate replicas would.
      let plan = try plan("shop", widgets)
      try await withThrowingTaskGroup(of: MigrationReport.self) { group in
        for _ in 0..<8 {
          group.addTask {
            let pool = try PostgresPool(
              configuration: PostgresConfiguration(url: database.ownerURL, minConnections: 0, maxConnections: 2),
              logger: quietLogger
            )
            do {
              let report = try await Migrator(pool: pool, logger: quietLogger).apply(plan)
              await pool.close()
              return report
            } catch {
              await pool.close()
              throw error
            }
          }
        }
        var applied: [Int] = []
        for try await report in group { applied += report.applied }
        #expect(applied.sorted() == [1, 2])
      }
    }
  }

  @Test("a plan with gaps, a bad schema name or empty statements is refused before touching the database")
  func invalidPlans() {
    #expect(throws: MigrationError.self) { try MigrationPlan(schema: "Shop; DROP", migrations: widgets) }
    #expect(throws: MigrationError.self) { try MigrationPlan(schema: "shop", migrations: [widgets[1]]) }
    #expect(throws: MigrationError.self) {
      try MigrationPlan(schema: "shop", migrations: [Migration(1, "empty", [])])
    }
  }
}
