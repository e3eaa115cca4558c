public import Postgres
public import PostgresMigrations
import Logging

/// A fresh test database with one service's schema migrated: a pool as the service role (row-level
/// security applies, as in production) and one as the owner, for checking rows behind the
/// service's back.
public struct MigratedDatabase: Sendable {
  public let app: PostgresPool
  public let owner: PostgresPool
  public let database: PostgresTestDatabase
}

/// Creates the database `name` (unique per test) on the shared test cluster, migrates `plan` as
/// the owner, runs `body`, and closes both pools whatever happens.
public func withMigratedDatabase<Result>(
  named name: String,
  plan: MigrationPlan,
  appConnections: Int = 8,
  _ body: (MigratedDatabase) async throws -> Result
) async throws -> Result {
  let quiet = Logger(label: "maas.testing.database") { _ in SwiftLogNoOpLogHandler() }
  let database = try await PostgresFixture.shared().createDatabase(named: name)
  // Generous bounds: with the whole suite running at once on two cores, one connection has taken
  // over 5 s (the defaults) to be accepted. These tests do not measure that; they only must not hang.
  let owner = try PostgresPool(
    configuration: PostgresConfiguration(
      url: database.ownerURL, minConnections: 0, maxConnections: 4, acquireTimeout: .seconds(30), connectTimeout: .seconds(15)),
    logger: quiet)
  let app = try PostgresPool(
    configuration: PostgresConfiguration(
      url: database.appURL, minConnections: 0, maxConnections: appConnections, acquireTimeout: .seconds(30),
      connectTimeout: .seconds(15)),
    logger: quiet)
  do {
    try await Migrator(pool: owner, logger: quiet).apply(plan)
    let result = try await body(MigratedDatabase(app: app, owner: owner, database: database))
    await app.close()
    await owner.close()
    return result
  } catch {
    await app.close()
    await owner.close()
    throw error
  }
}
