import Foundation
import Logging
import MaaSRuntime
import MaaSTesting
import Postgres
import Quota
import Testing

@Suite("maas-<service> migrate", .serialized, .timeLimit(.minutes(3)))
struct MigrateCommandTests {
  /// Runs `maas-quota migrate` with `environment`; returns its exit status and stderr. Bounded:
  /// a process still running after a minute is killed.
  static func migrate(_ environment: [String: String]) async throws -> (Int32, String) {
    let outcome = try await runToCompletion(
      try builtProduct(named: "maas-quota").path, ["migrate"], environment: environment, timeLimit: .seconds(60))
    return (outcome.status, outcome.standardError)
  }

  @Test("several processes migrating one database at once apply each migration exactly once")
  func concurrentProcessesApplyOnce() async throws {
    let database = try await PostgresFixture.shared().createDatabase(named: "migrate_processes")
    let environment = [
      "MAAS_QUOTA_DATABASE_URL": database.appURL,
      "MAAS_QUOTA_MIGRATION_DATABASE_URL": database.ownerURL,
      "MAAS_QUOTA_LOG_FORMAT": "json",
    ]
    let results = try await withThrowingTaskGroup(of: (Int32, String).self) { group in
      for _ in 0..<4 { group.addTask { try await Self.migrate(environment) } }
      return try await group.reduce(into: []) { $0.append($1) }
    }
    for (status, errors) in results {
      #expect(status == 0, "maas-quota migrate failed: \(errors)")
    }
    // One record per migration, and exactly one process reported applying it.
    let pool = try PostgresPool(
      configuration: PostgresConfiguration(url: database.ownerURL, minConnections: 0, maxConnections: 1),
      logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    )
    let versions = try await pool.query("SELECT version FROM quota.schema_migrations ORDER BY version", [])
      .map { try $0.decode(Int64.self, at: 0) }
    await pool.close()
    let shipped = try QuotaSchema.plan(serviceRole: "maas_app").migrations.map { Int64($0.version) }
    #expect(versions == shipped)
    let applyingProcesses = results.filter { $0.1.contains("\"migration applied\"") }.count
    #expect(applyingProcesses == 1)
  }

  @Test("the service role can use the schema after migrating, and cannot create in it")
  func serviceRoleRights() async throws {
    let database = try await PostgresFixture.shared().createDatabase(named: "migrate_rights")
    let (status, errors) = try await Self.migrate([
      "MAAS_QUOTA_DATABASE_URL": database.appURL,
      "MAAS_QUOTA_MIGRATION_DATABASE_URL": database.ownerURL,
    ])
    #expect(status == 0, "\(errors)")
    let pool = try PostgresPool(
      configuration: PostgresConfiguration(url: database.appURL, minConnections: 0, maxConnections: 1),
      logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    )
    let rights = try await pool.query(
      "SELECT has_schema_privilege('quota', 'USAGE'), has_schema_privilege('quota', 'CREATE')", []
    )
    await pool.close()
    #expect(try rights.first?.decode(Bool.self, at: 0) == true)
    #expect(try rights.first?.decode(Bool.self, at: 1) == false)
  }

  @Test("without a database URL, migrate names the missing variable and exits 2")
  func missingURL() async throws {
    let (status, errors) = try await Self.migrate([:])
    #expect(status == 2)
    #expect(errors.contains("MAAS_QUOTA_DATABASE_URL"))
  }

  @Test("a database that cannot be reached fails the migration with status 1")
  func unreachableDatabase() async throws {
    let (status, errors) = try await Self.migrate([
      "MAAS_QUOTA_DATABASE_URL": "postgresql://maas_app@127.0.0.1:1/maas?connect_timeout=2"
    ])
    #expect(status == 1)
    #expect(errors.contains("migration failed"))
  }
}
