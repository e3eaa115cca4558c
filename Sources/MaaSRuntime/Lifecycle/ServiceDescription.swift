import Foundation
import GRPCCore
import MaaSContracts

/// What a `maas-<service>` binary reads and serves, as `maas-<service> config` prints it (JSON):
/// the one source deployment manifests are checked against (`Tests/Deploy`), so that a port, a
/// probe, a variable name or the migrate command in them cannot drift from the code.
///
/// Described under an environment: `port`, the shutdown timings and `problems` are what serving
/// would use and refuse under it; `variables` and their defaults do not depend on it.
public struct ServiceDescription: Sendable, Hashable, Codable {
  /// One variable the service reads.
  public struct Variable: Sendable, Hashable, Codable {
    public var name: String
    /// The value used when unset, as text; nil when there is none.
    public var defaultValue: String?
    /// Whether serving refuses to start without it.
    public var required: Bool

    enum CodingKeys: String, CodingKey {
      case name
      case defaultValue = "default"
      case required
    }
  }

  /// A variable the environment gets wrong. The value is left out: it may be a secret.
  public struct Problem: Sendable, Hashable, Codable {
    public var variable: String
    public var reason: String
  }

  /// `maas-quota`.
  public var program: String
  /// `MAAS_QUOTA`.
  public var prefix: String
  /// The port the server binds under the environment.
  public var port: Int
  /// The port it binds when `<PREFIX>_PORT` is unset.
  public var defaultPort: Int
  /// The health service every server mounts (`grpc.health.v1.Health`) ...
  public var healthService: String
  /// ... and the name whose status is the whole server's: what a probe asks by default.
  public var healthCheckName: String
  /// The arguments, after the program name, of each command: `serve`, `migrate`, `health`.
  public var commands: [String: [String]]
  /// The variables `migrate` takes its database URL from, the first one set winning.
  public var migrationDatabaseURLVariables: [String]
  /// After SIGTERM: seconds serving with health NOT_SERVING, then seconds in-flight calls get.
  public var shutdownDelaySeconds: Double
  public var shutdownGraceSeconds: Double
  /// Seconds after SIGTERM by which the process has stopped (`ServerSettings.shutdownLimit`).
  public var shutdownLimitSeconds: Double
  /// Every variable read, in the order serving reads them.
  public var variables: [Variable]
  /// What serving would refuse under the environment; empty when it would start.
  public var problems: [Problem]
}

extension ServiceCommandLine {
  /// Describes `service` as serving would read `environment`.
  ///
  /// Required variables are found by reading an empty environment: those it reports missing.
  public static func describe<Settings>(
    _ service: ServiceDefinition<Settings>,
    environment: [String: String]
  ) -> ServiceDescription {
    let configuration = ServeConfiguration(service, environment: environment)
    let empty = ServeConfiguration(service, environment: [:])
    let required = Set(empty.reader.problems.filter { $0.value == nil }.map(\.variable))
    let server = configuration.server
    let serves = service.makeServices != nil
    var commands = ["migrate": ["migrate"]]
    if serves {
      commands["serve"] = ["serve"]
      commands["health"] = ["health"]
    }
    return ServiceDescription(
      program: service.program,
      prefix: service.prefix,
      port: server.port,
      defaultPort: service.defaultPort,
      healthService: Grpc_Health_V1_Health.descriptor.fullyQualifiedService,
      healthCheckName: "",
      commands: commands,
      migrationDatabaseURLVariables: ["\(service.prefix)_MIGRATION_DATABASE_URL", "\(service.prefix)_DATABASE_URL"],
      shutdownDelaySeconds: server.shutdownDelay.seconds,
      shutdownGraceSeconds: server.shutdownGracePeriod.seconds,
      shutdownLimitSeconds: server.shutdownLimit.seconds,
      variables: configuration.reader.requested.map {
        ServiceDescription.Variable(name: $0.name, defaultValue: $0.defaultValue, required: required.contains($0.name))
      },
      problems: configuration.reader.problems.map { ServiceDescription.Problem(variable: $0.variable, reason: $0.reason) }
    )
  }

  /// `maas-<service> config`: prints `describe(service, environment:)` as JSON on stdout and
  /// exits 0, whatever the problems (they are part of the answer).
  static func printDescription<Settings>(_ service: ServiceDefinition<Settings>, environment: [String: String]) -> Int32 {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    do {
      let json = try encoder.encode(self.describe(service, environment: environment))
      FileHandle.standardOutput.write(json + Data("\n".utf8))
      return 0
    } catch {
      FileHandle.standardError.write(Data("\(service.program) config: \(error)\n".utf8))
      return 1
    }
  }
}

extension Duration {
  /// Whole and fractional seconds as one number.
  var seconds: Double {
    self / .seconds(1)
  }
}
