import MaaSRuntime
import Testing

@Suite("Database settings from the environment")
struct DatabaseSettingsTests {
  @Test("Unset timeouts take the documented defaults, and the service's pool runs its sessions with them")
  func defaults() throws {
    var reader = EnvironmentReader(environment: ["MAAS_QUOTA_DATABASE_URL": "postgresql://maas_app@db/maas"])
    let settings = DatabaseSettings.read(prefix: "MAAS_QUOTA", from: &reader)
    try reader.finish()
    #expect(settings.statementTimeout == .seconds(10))
    #expect(settings.idleInTransactionTimeout == .seconds(60))
    let pool = settings.servicePool(applicationName: "maas-quota")
    #expect(pool.statementTimeout == .seconds(10))
    #expect(pool.idleInTransactionTimeout == .seconds(60))
  }

  @Test("The idle-in-transaction timeout is read in seconds, and a value out of range is refused naming the variable")
  func idleInTransactionTimeout() throws {
    var reader = EnvironmentReader(environment: [
      "MAAS_QUOTA_DATABASE_URL": "postgresql://maas_app@db/maas",
      "MAAS_QUOTA_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS": "2.5",
    ])
    let settings = DatabaseSettings.read(prefix: "MAAS_QUOTA", from: &reader)
    try reader.finish()
    #expect(settings.servicePool(applicationName: "maas-quota").idleInTransactionTimeout == .milliseconds(2_500))

    var refusing = EnvironmentReader(environment: [
      "MAAS_QUOTA_DATABASE_URL": "postgresql://maas_app@db/maas",
      "MAAS_QUOTA_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS": "0",
    ])
    _ = DatabaseSettings.read(prefix: "MAAS_QUOTA", from: &refusing)
    let error = #expect(throws: ConfigurationError.self) { try refusing.finish() }
    #expect(error.map { "\($0)" }?.contains("MAAS_QUOTA_DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS") == true)
  }
}
