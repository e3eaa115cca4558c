public import Foundation
import Logging
import Postgres
public import PostgresMigrations

/// The command line every `maas-<service>` executable shares.
///
/// `maas-<service> migrate` applies the service's migrations (safe to run from several replicas
/// at once) and exits: 0 when the schema is up to date, 1 when a migration or the database failed,
/// 2 when the configuration is invalid.
public enum ServiceCommandLine {
  /// Runs the command in `arguments` (without the program name) and returns the exit status.
  /// For services that do not serve yet: only `migrate` and `help`.
  ///
  /// - Parameters:
  ///   - program: the executable's name, for messages (`maas-quota`).
  ///   - prefix: the service's variable prefix (`MAAS_QUOTA`).
  ///   - schema: the service's migrations, granting rights to the given service role.
  public static func run(
    program: String,
    prefix: String,
    arguments: [String],
    environment: [String: String] = ProcessInfo.processInfo.environment,
    schema: @escaping @Sendable (_ serviceRole: String) throws -> MigrationPlan
  ) async -> Int32 {
    await self.run(
      ServiceDefinition<Void>(program: program, prefix: prefix, defaultPort: 0, schema: schema, readSettings: { _ in }),
      arguments: arguments, environment: environment)
  }

  /// Runs the command in `arguments` (without the program name) for `service` and returns the
  /// exit status: `serve` (the default when no command is given), `migrate`, `health`, `config`
  /// or `help`.
  public static func run<Settings>(
    _ service: ServiceDefinition<Settings>,
    arguments: [String],
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) async -> Int32 {
    let program = service.program, prefix = service.prefix
    switch arguments.first {
    case "serve" where service.makeServices != nil, nil where service.makeServices != nil:
      return await self.serve(service, environment: environment)
    case "migrate":
      return await self.migrate(program: program, prefix: prefix, environment: environment, schema: service.schema)
    case "health" where service.makeServices != nil:
      return await self.health(service, arguments: Array(arguments.dropFirst()), environment: environment)
    case "config":
      return self.printDescription(service, environment: environment)
    case "help", "--help", "-h":
      FileHandle.standardOutput.write(Data(self.usage(program: program, prefix: prefix, serves: service.makeServices != nil).utf8))
      return 0
    default:
      FileHandle.standardError.write(Data(self.usage(program: program, prefix: prefix, serves: service.makeServices != nil).utf8))
      return 2
    }
  }

  static func usage(program: String, prefix: String, serves: Bool = false) -> String {
    let commands =
      serves
      ? """
      usage: \(program) [serve]    migrate (unless \(prefix)_MIGRATE_ON_START=false), then serve until SIGTERM
             \(program) migrate    apply the \(program) schema's migrations and exit
             \(program) health [--target HOST:PORT] [--service NAME] [--timeout SECONDS]
                                ask a server's grpc.health.v1.Health (default: this host's); exit 0 if SERVING
      """
      : "usage: \(program) migrate    apply the \(program) schema's migrations and exit"
    return """
      \(commands)
             \(program) config     print, as JSON, the port, commands and every \(prefix)_* variable read,
                                with defaults and the problems the current environment has
             \(program) help       show this

      migrate reads \(prefix)_MIGRATION_DATABASE_URL (else \(prefix)_DATABASE_URL), connecting as the role
      that owns the schema, and grants \(prefix)_DATABASE_SERVICE_ROLE (default maas_app) what the
      service needs.

      """
  }

  static func migrate(
    program: String,
    prefix: String,
    environment: [String: String],
    schema: @Sendable (String) throws -> MigrationPlan
  ) async -> Int32 {
    var reader = EnvironmentReader(environment: environment)
    let server = ServerSettings.read(prefix: prefix, from: &reader)
    let database = DatabaseSettings.read(prefix: prefix, from: &reader)
    do {
      try reader.finish()
    } catch {
      FileHandle.standardError.write(Data("\(program): invalid configuration\n\(error)\n".utf8))
      return configurationErrorExitStatus
    }
    MaaSLogging.bootstrap(server)
    let logger = Logger(label: "\(program).migrate")
    do {
      try await self.applyMigrations(program: program, database: database, schema: schema, logger: logger)
      return 0
    } catch {
      logger.error("migration failed", metadata: ["error": "\(error)"])
      return 1
    }
  }

  static func applyMigrations(
    program: String,
    database: DatabaseSettings,
    schema: @Sendable (String) throws -> MigrationPlan,
    logger: Logger
  ) async throws {
    let plan = try schema(database.serviceRole)
    let pool = try PostgresPool(configuration: database.migrationPool(applicationName: program), logger: logger)
    do {
      let report = try await Migrator(pool: pool, logger: logger).apply(plan)
      logger.info(
        "schema up to date",
        metadata: ["schema": "\(plan.schema)", "version": "\(report.version)", "applied": "\(report.applied)"]
      )
      await pool.close()
    } catch {
      await pool.close()
      throw error
    }
  }
}
