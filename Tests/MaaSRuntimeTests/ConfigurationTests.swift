import GRPCShimTransport
import Logging
import MaaSRuntime
import Testing

@Suite("Server settings from the environment")
struct ConfigurationTests {
  @Test("Unset variables take the defaults the service passes")
  func defaults() throws {
    let settings = try ServerSettings.load(prefix: "MAAS_ECHO", defaults: ServerSettings(port: 50050), environment: [:])
    #expect(settings == ServerSettings(port: 50050))
    #expect(settings.host == "0.0.0.0")
    #expect(settings.logLevel == .info)
    #expect(settings.logFormat == .text)
    #expect(settings.shutdownGracePeriod == .seconds(25))
    #expect(settings.maxMessageBytes == 4 * 1024 * 1024)
    #expect(settings.metricsPort == nil)
  }

  @Test("Empty variables count as unset")
  func emptyValues() throws {
    let environment = ServerSettings.variables(prefix: "MAAS_ECHO").reduce(into: [String: String]()) {
      $0[$1.name] = ""
    }
    #expect(try ServerSettings.load(prefix: "MAAS_ECHO", environment: environment) == ServerSettings())
  }

  @Test("The documented defaults, set explicitly, load as the defaults")
  func documentedDefaultsRoundTrip() throws {
    let defaults = ServerSettings(port: 50061, keepaliveTime: .seconds(60))
    var environment: [String: String] = [:]
    for variable in ServerSettings.variables(prefix: "MAAS_QUOTA", defaults: defaults) {
      environment[variable.name] = variable.defaultValue
    }
    #expect(try ServerSettings.load(prefix: "MAAS_QUOTA", environment: environment) == defaults)
  }

  @Test("The variable list names every setting once, under the prefix, with a description")
  func variableList() {
    let variables = ServerSettings.variables(prefix: "MAAS_ECHO")
    let names = variables.map(\.name)
    #expect(Set(names).count == names.count)
    #expect(names.allSatisfy { $0.hasPrefix("MAAS_ECHO_") })
    #expect(variables.allSatisfy { !$0.description.isEmpty })
    for expected in [
      "MAAS_ECHO_HOST", "MAAS_ECHO_PORT", "MAAS_ECHO_LOG_LEVEL", "MAAS_ECHO_LOG_FORMAT",
      "MAAS_ECHO_SHUTDOWN_GRACE_SECONDS", "MAAS_ECHO_MAX_MESSAGE_BYTES", "MAAS_ECHO_KEEPALIVE_TIME_SECONDS",
      "MAAS_ECHO_METRICS_PORT",
    ] {
      #expect(names.contains(expected))
    }
  }

  @Test("Valid values are read into the settings and the transport configuration")
  func validValues() throws {
    let settings = try ServerSettings.load(
      prefix: "MAAS_ECHO",
      environment: [
        "MAAS_ECHO_HOST": "::",
        "MAAS_ECHO_PORT": "0",
        "MAAS_ECHO_LOG_LEVEL": "DEBUG",
        "MAAS_ECHO_LOG_FORMAT": "json",
        "MAAS_ECHO_SHUTDOWN_GRACE_SECONDS": "2.5",
        "MAAS_ECHO_SHUTDOWN_DELAY_SECONDS": "1",
        "MAAS_ECHO_MAX_MESSAGE_BYTES": "1024",
        "MAAS_ECHO_KEEPALIVE_TIME_SECONDS": "30",
        "MAAS_ECHO_KEEPALIVE_TIMEOUT_SECONDS": "5",
        "MAAS_ECHO_KEEPALIVE_MIN_PING_INTERVAL_SECONDS": "10",
        "MAAS_ECHO_KEEPALIVE_PERMIT_WITHOUT_CALLS": "yes",
        "MAAS_ECHO_METRICS_PORT": "9090",
      ]
    )
    #expect(settings == ServerSettings(
      host: "::", port: 0, logLevel: .debug, logFormat: .json,
      shutdownGracePeriod: .milliseconds(2_500), shutdownDelay: .seconds(1), maxMessageBytes: 1024,
      keepaliveTime: .seconds(30), keepaliveTimeout: .seconds(5),
      keepaliveMinimumPingInterval: .seconds(10), keepalivePermitWithoutCalls: true, metricsPort: 9090
    ))
    let transport = settings.transportConfiguration
    #expect(transport.maxReceiveMessageBytes == 1024)
    #expect(transport.maxSendMessageBytes == 1024)
    #expect(transport.shutdownGracePeriod == .milliseconds(2_500))
    #expect(transport.keepaliveTime == .seconds(30))
    #expect(transport.keepaliveTimeout == .seconds(5))
    #expect(transport.minimumPingInterval == .seconds(10))
    #expect(transport.keepalivePermitWithoutCalls)
  }

  @Test("Every invalid variable is reported at once")
  func everyProblemReported() throws {
    let environment = [
      "MAAS_QUOTA_HOST": "10.0.0.1:50051",
      "MAAS_QUOTA_PORT": "abc",
      "MAAS_QUOTA_LOG_LEVEL": "loud",
      "MAAS_QUOTA_LOG_FORMAT": "xml",
      "MAAS_QUOTA_SHUTDOWN_GRACE_SECONDS": "-1",
      "MAAS_QUOTA_SHUTDOWN_DELAY_SECONDS": "soon",
      "MAAS_QUOTA_MAX_MESSAGE_BYTES": "0",
      "MAAS_QUOTA_KEEPALIVE_TIME_SECONDS": "0",
      "MAAS_QUOTA_KEEPALIVE_TIMEOUT_SECONDS": "nan",
      "MAAS_QUOTA_KEEPALIVE_MIN_PING_INTERVAL_SECONDS": "1e9",
      "MAAS_QUOTA_KEEPALIVE_PERMIT_WITHOUT_CALLS": "maybe",
      "MAAS_QUOTA_METRICS_PORT": "65536",
    ]
    let error = try #require(throws: ConfigurationError.self) {
      try ServerSettings.load(prefix: "MAAS_QUOTA", environment: environment)
    }
    #expect(Set(error.variables) == Set(environment.keys))
    #expect(error.problems.count == environment.count)
    for problem in error.problems {
      #expect(problem.value == environment[problem.variable])
    }
  }

  @Test("A problem names the variable, quotes its value and says what was expected")
  func problemText() throws {
    let error = try #require(throws: ConfigurationError.self) {
      try ServerSettings.load(prefix: "MAAS_QUOTA", environment: ["MAAS_QUOTA_PORT": "abc"])
    }
    #expect(error.problems.map(\.description) == [#"MAAS_QUOTA_PORT: "abc" is not a port (0-65535; 0 picks a free one)"#])
    #expect(error.description.hasPrefix("invalid configuration (1 problem):\n"))
  }

  @Test("A port that Kubernetes injected as a service link is refused with the fix named")
  func kubernetesServiceLink() throws {
    let error = try #require(throws: ConfigurationError.self) {
      try ServerSettings.load(prefix: "MAAS_QUOTA", environment: ["MAAS_QUOTA_PORT": "tcp://10.96.0.12:50051"])
    }
    #expect(error.variables == ["MAAS_QUOTA_PORT"])
    #expect(error.problems.first?.reason.contains("enableServiceLinks: false") == true)
  }

  @Test("Another service's variables do not leak into this one's settings")
  func prefixIsolation() throws {
    let environment = [
      "MAAS_QUOTA_PORT": "abc",
      "MAAS_QUOTA_LOG_LEVEL": "debug",
      "MAAS_ECHO_PORT": "7001",
      "MAAS_ECHOES_PORT": "7002",
      "PORT": "7003",
    ]
    let echo = try ServerSettings.load(prefix: "MAAS_ECHO", environment: environment)
    #expect(echo.port == 7001)
    #expect(echo.logLevel == .info)
    let registry = try ServerSettings.load(prefix: "MAAS_REGISTRY", environment: environment)
    #expect(registry == ServerSettings())
  }

  @Test("A service's own variables are validated together with the server's")
  func sharedReader() throws {
    var reader = EnvironmentReader(environment: [
      "MAAS_QUOTA_PORT": "70000",
      "MAAS_QUOTA_DATABASE_URL": " postgres://db ",
    ])
    _ = ServerSettings.read(prefix: "MAAS_QUOTA", from: &reader)
    _ = reader.read("MAAS_QUOTA_DATABASE_URL", default: "postgres://localhost/maas", as: .nonEmptyString)
    let error = try #require(throws: ConfigurationError.self) { try reader.finish() }
    #expect(error.variables == ["MAAS_QUOTA_PORT", "MAAS_QUOTA_DATABASE_URL"])
  }

  @Test(
    "Host values are accepted or refused",
    arguments: [
      ("0.0.0.0", true), ("127.0.0.1", true), ("::", true), ("[::1]", true), ("maas-quota.svc", true),
      ("host:80", false), ("http://host", false), ("a b", false), (" host", false),
    ]
  )
  func hosts(value: String, accepted: Bool) {
    let result = ConfigurationParser<String>.host.parse(value)
    #expect(((try? result.get()) != nil) == accepted)
  }

  @Test(
    "Boolean spellings are understood",
    arguments: [("true", true), ("TRUE", true), ("1", true), ("on", true), ("false", false), ("0", false), ("No", false)]
  )
  func booleans(value: String, expected: Bool) throws {
    #expect(try ConfigurationParser<Bool>.boolean.parse(value).get() == expected)
  }
}
