public import GRPCCore
public import Logging
public import Postgres
public import PostgresMigrations
public import ServiceLifecycle
import Foundation

/// What a `maas-<service>` executable is made of, for `ServiceCommandLine.run`: its names, its
/// schema, its own configuration and how to build its gRPC services on a database pool.
public struct ServiceDefinition<Settings>: Sendable {
  /// What `makeServices` builds: the gRPC services to mount, and long-lived background parts
  /// (sweepers, loops) that run beside the server and stop after it.
  public struct Parts {
    public var services: [any RegistrableRPCService]
    public var background: [any Service]

    public init(services: [any RegistrableRPCService], background: [any Service] = []) {
      self.services = services
      self.background = background
    }
  }

  /// `metrics`: where the service may add its own metrics (the server's calls and the pool's
  /// connections are already there); served when `<PREFIX>_METRICS_PORT` is set.
  public typealias MakeServices = @Sendable (
    _ settings: Settings, _ pool: PostgresPool, _ logger: Logger, _ metrics: ServerMetrics
  ) throws -> Parts

  public let program: String
  public let prefix: String
  public let defaultPort: Int
  public let schema: @Sendable (_ serviceRole: String) throws -> MigrationPlan
  /// Reads the service's own `<PREFIX>_*` variables, reporting every problem to the reader.
  public let readSettings: @Sendable (inout EnvironmentReader) -> Settings
  /// `nil` for a service that does not serve yet (only `migrate`).
  public let makeServices: MakeServices?
  /// Whether the service's pool plans each prepared statement once (`PostgresConfiguration.genericPlans`).
  public let genericPlans: Bool

  public init(
    program: String,
    prefix: String,
    defaultPort: Int,
    schema: @escaping @Sendable (_ serviceRole: String) throws -> MigrationPlan,
    readSettings: @escaping @Sendable (inout EnvironmentReader) -> Settings,
    genericPlans: Bool = false,
    makeServices: MakeServices? = nil
  ) {
    self.program = program
    self.prefix = prefix
    self.defaultPort = defaultPort
    self.schema = schema
    self.readSettings = readSettings
    self.genericPlans = genericPlans
    self.makeServices = makeServices
  }
}

extension ServiceCommandLine {
  /// `maas-<service> serve`: reads the configuration (every problem listed, exit 2), migrates the
  /// schema unless `<PREFIX>_MIGRATE_ON_START=false` (the advisory lock makes several replicas
  /// starting at once safe), opens the pool, refuses a role that escapes row-level security
  /// (`ServingRoleCheck`), and serves until SIGTERM or SIGINT, then drains.
  /// Exit status 0 after a graceful shutdown, 1 when migrating, the role or serving fails.
  static func serve<Settings>(_ service: ServiceDefinition<Settings>, environment: [String: String]) async -> Int32 {
    guard let makeServices = service.makeServices else { return 2 }
    let configuration = ServeConfiguration(service, environment: environment)
    let (server, database, settings) = (configuration.server, configuration.database, configuration.settings)
    do {
      try configuration.reader.finish()
    } catch {
      FileHandle.standardError.write(Data("\(service.program): invalid configuration\n\(error)\n".utf8))
      return configurationErrorExitStatus
    }
    MaaSLogging.bootstrap(server)
    let logger = Logger(label: service.program)
    if configuration.migrateOnStart {
      do {
        try await self.applyMigrations(program: service.program, database: database, schema: service.schema, logger: logger)
      } catch {
        logger.critical("migration failed", metadata: ["error": "\(error)"])
        return 1
      }
    }
    do {
      let pool = try PostgresPool(
        configuration: database.servicePool(applicationName: service.program, genericPlans: service.genericPlans), logger: logger)
      do {
        if let refusal = await Self.refusal(ofRoleIn: pool, service, database: database, logger: logger) {
          logger.critical("refusing to serve", metadata: ["reason": "\(refusal)"])
          await pool.close()
          return 1
        }
        let metrics = ServerMetrics()
        DatabasePoolMetrics.register(pool, in: metrics)
        let parts = try makeServices(settings, pool, logger, metrics)
        let maas = MaaSServer(
          settings: server, services: parts.services, metrics: metrics, logger: logger,
          onListening: MaaSServer.printListeningLine)
        try await maas.runService(alongside: parts.background)
        await pool.close()
        return 0
      } catch {
        await pool.close()
        throw error
      }
    } catch {
      logger.critical("server failed", metadata: ["error": "\(error)"])
      return 1
    }
  }
}

extension ServiceCommandLine {
  /// Why `serve` must not serve as the pool's role (see `ServingRoleCheck`), or nil. A database
  /// that cannot be asked yet does not stop the start (readiness reports it; migrating on start,
  /// the default, has already reached it).
  static func refusal<Settings>(
    ofRoleIn pool: PostgresPool, _ service: ServiceDefinition<Settings>, database: DatabaseSettings, logger: Logger
  ) async -> ServingRoleCheck.Refusal? {
    do {
      let schema = try service.schema(database.serviceRole).schema
      try await ServingRoleCheck.check(pool, schema: schema, prefix: service.prefix)
      return nil
    } catch let refusal as ServingRoleCheck.Refusal {
      return refusal
    } catch {
      logger.warning("could not check that the service's role is held by row-level security", metadata: ["error": "\(error)"])
      return nil
    }
  }
}

/// Everything `serve` reads, in the order it reads it. `config` reads through the same type, so
/// that what it lists is what serving reads.
struct ServeConfiguration<Settings> {
  var server: ServerSettings
  var database: DatabaseSettings
  var migrateOnStart: Bool
  var settings: Settings
  /// The reader after every variable was read: its problems and the variables it was asked for.
  var reader: EnvironmentReader

  init(_ service: ServiceDefinition<Settings>, environment: [String: String]) {
    var reader = EnvironmentReader(environment: environment)
    self.server = ServerSettings.read(prefix: service.prefix, defaults: ServerSettings(port: service.defaultPort), from: &reader)
    self.database = DatabaseSettings.read(prefix: service.prefix, from: &reader)
    self.migrateOnStart = reader.read("\(service.prefix)_MIGRATE_ON_START", default: true, as: .boolean)
    self.settings = service.readSettings(&reader)
    self.reader = reader
  }
}
