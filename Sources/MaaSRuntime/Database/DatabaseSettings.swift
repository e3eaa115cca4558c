public import Postgres

/// Where a service keeps its state, read from `<PREFIX>_DATABASE_*` variables.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `<PREFIX>_DATABASE_URL` | required | libpq URL the service connects with (a role without BYPASSRLS) |
/// | `<PREFIX>_MIGRATION_DATABASE_URL` | `<PREFIX>_DATABASE_URL` | URL `migrate` uses: the role that owns the schema |
/// | `<PREFIX>_DATABASE_SERVICE_ROLE` | `maas_app` | the role migrations grant the service's rights to |
/// | `<PREFIX>_DATABASE_POOL_SIZE` | `10` | most connections the service opens |
/// | `<PREFIX>_DATABASE_STATEMENT_TIMEOUT_SECONDS` | `10` | longest a statement may run |
/// | `<PREFIX>_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS` | `60` | longest a transaction may wait for the service; the server then ends the session and frees its locks |
public struct DatabaseSettings: Sendable, Hashable {
  public var url: String
  public var migrationURL: String
  public var serviceRole: String
  public var poolSize: Int
  public var statementTimeout: Duration
  /// A replica that stalls inside a transaction (frozen, cut off) holds its row locks, and the
  /// other replicas queue behind them, until the server ends its session after this long. Longer
  /// than any call a service makes inside a transaction (the scheduler's quota call).
  public var idleInTransactionTimeout: Duration

  public init(
    url: String,
    migrationURL: String? = nil,
    serviceRole: String = "maas_app",
    poolSize: Int = 10,
    statementTimeout: Duration = .seconds(10),
    idleInTransactionTimeout: Duration = .seconds(60)
  ) {
    self.url = url
    self.migrationURL = migrationURL ?? url
    self.serviceRole = serviceRole
    self.poolSize = poolSize
    self.statementTimeout = statementTimeout
    self.idleInTransactionTimeout = idleInTransactionTimeout
  }

  /// Reads the settings, recording every problem in `reader` (a missing URL is one).
  public static func read(prefix: String, from reader: inout EnvironmentReader) -> DatabaseSettings {
    let urlName = "\(prefix)_DATABASE_URL"
    let url = reader.readOptional(urlName, as: .nonEmptyString)
    if url == nil {
      reader.report(ConfigurationProblem(
        variable: urlName, value: nil,
        reason: "is required (e.g. postgresql://maas_app@127.0.0.1:54329/maas; `scripts/postgres url` prints the local one)"
      ))
    }
    let migrationURL = reader.readOptional("\(prefix)_MIGRATION_DATABASE_URL", as: .nonEmptyString)
    let role = reader.read("\(prefix)_DATABASE_SERVICE_ROLE", default: "maas_app", as: .sqlIdentifier)
    let poolSize = reader.read("\(prefix)_DATABASE_POOL_SIZE", default: 10, as: .integer(in: 1...500))
    let timeout = reader.read(
      "\(prefix)_DATABASE_STATEMENT_TIMEOUT_SECONDS", default: .seconds(10), as: .seconds(in: 0.001...3_600)
    )
    let idleTimeout = reader.read(
      "\(prefix)_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS", default: .seconds(60), as: .seconds(in: 0.001...3_600)
    )
    return DatabaseSettings(
      url: url ?? "", migrationURL: migrationURL, serviceRole: role, poolSize: poolSize, statementTimeout: timeout,
      idleInTransactionTimeout: idleTimeout
    )
  }

  /// The pool the service serves with.
  /// - Parameter genericPlans: see `PostgresConfiguration.genericPlans`.
  public func servicePool(applicationName: String, genericPlans: Bool = false) -> PostgresConfiguration {
    var configuration = PostgresConfiguration(
      url: self.url, applicationName: applicationName, minConnections: 1,
      maxConnections: self.poolSize, statementTimeout: self.statementTimeout,
      idleInTransactionTimeout: self.idleInTransactionTimeout
    )
    configuration.genericPlans = genericPlans
    return configuration
  }

  /// The small pool `migrate` uses: one connection holds the migration lock, one runs them. No
  /// statement timeout: a migration rewriting a large table may take long.
  public func migrationPool(applicationName: String) -> PostgresConfiguration {
    PostgresConfiguration(
      url: self.migrationURL, applicationName: applicationName + "-migrate", minConnections: 0,
      maxConnections: 2, statementTimeout: nil
    )
  }
}

extension ConfigurationParser where Value == String {
  /// A plain lower-case SQL identifier, as role and schema names here are.
  public static var sqlIdentifier: Self {
    Self(expectation: "a lower-case SQL identifier ([a-z_][a-z0-9_]*)") { text in
      guard let first = text.unicodeScalars.first, text.utf8.count <= 63,
        first == "_" || ("a"..."z").contains(first),
        text.unicodeScalars.allSatisfy({ $0 == "_" || ("a"..."z").contains($0) || ("0"..."9").contains($0) })
      else { return nil }
      return text
    }
  }
}
