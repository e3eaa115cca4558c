import Foundation
import GRPCCore
import MaaSRuntime
import MaaSTesting
import Quota
import Testing

@Suite("maas-<service> config and health")
struct ServiceDescriptionTests {
  @Test("the reader lists each variable once, in the order first asked, with its default as an operator writes it")
  func readerRecordsRequests() {
    var reader = EnvironmentReader(environment: ["MAAS_X_B": "7"])
    _ = reader.read("MAAS_X_GRACE", default: Duration.seconds(25), as: .seconds())
    _ = reader.readOptional("MAAS_X_B", as: .integer(in: 0...10))
    _ = reader.read("MAAS_X_GRACE", default: Duration.seconds(3), as: .seconds())
    _ = reader.rawValue("MAAS_X_SECRET")
    _ = reader.read("MAAS_X_ON", default: true, as: .boolean)
    #expect(reader.requested == [
      RequestedVariable(name: "MAAS_X_GRACE", defaultValue: "25"),
      RequestedVariable(name: "MAAS_X_B", defaultValue: nil),
      RequestedVariable(name: "MAAS_X_SECRET", defaultValue: nil),
      RequestedVariable(name: "MAAS_X_ON", defaultValue: "true"),
    ])
  }

  @Test("an empty environment describes the defaults and names the database URL as required and missing")
  func describesDefaults() throws {
    let description = ServiceCommandLine.describe(QuotaService.definition, environment: [:])
    #expect(description.program == "maas-quota")
    #expect(description.port == 50054)
    #expect(description.defaultPort == 50054)
    #expect(description.healthService == "grpc.health.v1.Health")
    #expect(description.healthCheckName == "")
    #expect(description.commands["migrate"] == ["migrate"])
    #expect(description.commands["serve"] == ["serve"])
    #expect(description.migrationDatabaseURLVariables == ["MAAS_QUOTA_MIGRATION_DATABASE_URL", "MAAS_QUOTA_DATABASE_URL"])
    let variables = Dictionary(uniqueKeysWithValues: description.variables.map { ($0.name, $0) })
    #expect(variables["MAAS_QUOTA_PORT"]?.defaultValue == "50054")
    #expect(variables["MAAS_QUOTA_LOG_LEVEL"]?.defaultValue == "info")
    #expect(variables["MAAS_QUOTA_SHUTDOWN_GRACE_SECONDS"]?.defaultValue == "25")
    #expect(variables["MAAS_QUOTA_MIGRATE_ON_START"]?.defaultValue == "true")
    // The service's own variables are read through the same reader.
    #expect(variables["MAAS_QUOTA_PRICE_GPU_SECONDS"] != nil)
    #expect(variables["MAAS_QUOTA_CONSUME_BATCH_MAX"]?.defaultValue == "256")
    #expect(description.variables.filter(\.required).map(\.name) == ["MAAS_QUOTA_DATABASE_URL"])
    #expect(description.problems.map(\.variable) == ["MAAS_QUOTA_DATABASE_URL"])
    #expect(description.shutdownLimitSeconds == 35)
  }

  @Test("the environment sets the port, the shutdown timings and the problems, never the list of variables")
  func describesUnderAnEnvironment() {
    let environment = [
      "MAAS_QUOTA_DATABASE_URL": "postgresql://maas_app@db/maas",
      "MAAS_QUOTA_PORT": "6000",
      "MAAS_QUOTA_SHUTDOWN_DELAY_SECONDS": "5",
      "MAAS_QUOTA_CURRENCY": "dollars",
    ]
    let description = ServiceCommandLine.describe(QuotaService.definition, environment: environment)
    #expect(description.port == 6000)
    #expect(description.shutdownDelaySeconds == 5)
    #expect(description.shutdownLimitSeconds == 40)
    #expect(description.problems.map(\.variable) == ["MAAS_QUOTA_CURRENCY"])
    #expect(description.variables == ServiceCommandLine.describe(QuotaService.definition, environment: [:]).variables)
  }

  @Test("`maas-quota config` prints the description as JSON")
  func configCommandPrintsJSON() async throws {
    let outcome = try await runToCompletion(
      try builtProduct(named: "maas-quota").path, ["config"], environment: [:], timeLimit: .seconds(60))
    #expect(outcome.succeeded, "\(outcome.standardError)")
    let printed = try JSONDecoder().decode(ServiceDescription.self, from: Data(outcome.standardOutput.utf8))
    #expect(printed == ServiceCommandLine.describe(QuotaService.definition, environment: [:]))
  }

  @Test("the health check answers SERVING for a running server, and fails for an unknown name and a closed port")
  func healthCheck() async throws {
    try await withRunningServer { server, _ in
      let port = try await server.listeningPort()
      let overall = await ServiceCommandLine.checkHealth(target: "127.0.0.1:\(port)", service: "", timeout: .seconds(5))
      #expect(overall.serving)
      #expect(overall.status == "SERVING")
      let unknown = await ServiceCommandLine.checkHealth(target: "127.0.0.1:\(port)", service: "no.such.Service", timeout: .seconds(5))
      #expect(!unknown.serving)
    }
    // Port 1 on loopback: nothing listens there, so the call fails within its deadline.
    let closed = await ServiceCommandLine.checkHealth(target: "127.0.0.1:1", service: "", timeout: .seconds(2))
    #expect(!closed.serving)
  }
}
