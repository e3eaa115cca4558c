public import Foundation
public import GRPCShimTransport
public import Logging

/// What every MaaS server reads from its environment, under a per-service prefix.
///
/// | variable (prefix `MAAS_ECHO`)          | default   | meaning |
/// |----------------------------------------|-----------|---------|
/// | `MAAS_ECHO_HOST`                       | `0.0.0.0` | address to bind (`[::]` for IPv6, `127.0.0.1` for loopback only) |
/// | `MAAS_ECHO_PORT`                       | per service | TCP port; 0 picks a free one, printed once bound |
/// | `MAAS_ECHO_LOG_LEVEL`                  | `info`    | trace, debug, info, notice, warning, error, critical |
/// | `MAAS_ECHO_LOG_FORMAT`                 | `text`    | text (one readable line) or json (one object per line) |
/// | `MAAS_ECHO_SHUTDOWN_GRACE_SECONDS`     | `25`      | how long in-flight calls may run after SIGTERM before they are cancelled |
/// | `MAAS_ECHO_SHUTDOWN_DELAY_SECONDS`     | `0`       | how long to keep serving, health NOT_SERVING, before the drain starts |
/// | `MAAS_ECHO_MAX_MESSAGE_BYTES`          | `4194304` | largest message received or sent |
/// | `MAAS_ECHO_KEEPALIVE_TIME_SECONDS`     | unset     | interval of keepalive pings to idle clients (unset: grpc's two hours) |
/// | `MAAS_ECHO_KEEPALIVE_TIMEOUT_SECONDS`  | `20`      | how long a keepalive ping may go unanswered |
/// | `MAAS_ECHO_KEEPALIVE_MIN_PING_INTERVAL_SECONDS` | unset | shortest client ping interval tolerated (unset: grpc's five minutes) |
/// | `MAAS_ECHO_KEEPALIVE_PERMIT_WITHOUT_CALLS` | `false` | accept client pings on connections with no call open |
/// | `MAAS_ECHO_METRICS_PORT`               | unset     | TCP port of the Prometheus endpoint (`GET /metrics`, on the same host); unset: none |
///
/// This table is kept by hand; the deploy tests (`Tests/Deploy`) check that the READMEs list
/// exactly the variables each binary's `config` reports, with the same defaults.
public struct ServerSettings: Sendable, Hashable {
  /// The address to bind.
  public var host: String
  /// The TCP port; 0 picks a free one.
  public var port: Int
  /// The lowest level logged.
  public var logLevel: Logger.Level
  /// How log lines are written.
  public var logFormat: LogFormat
  /// How long in-flight calls may run once a graceful shutdown starts before they are cancelled.
  public var shutdownGracePeriod: Duration
  /// How long the server keeps accepting calls, with health reporting NOT_SERVING, before it
  /// drains: time for load balancers that poll health to stop routing to it.
  public var shutdownDelay: Duration
  /// The largest message received or sent, in bytes.
  public var maxMessageBytes: Int
  /// Interval of keepalive pings on idle connections; nil keeps grpc's default (two hours).
  public var keepaliveTime: Duration?
  /// How long a keepalive ping may go unanswered before the connection is closed.
  public var keepaliveTimeout: Duration
  /// The shortest interval between client pings tolerated; nil keeps grpc's (five minutes).
  public var keepaliveMinimumPingInterval: Duration?
  /// Whether client pings are accepted on a connection with no call open.
  public var keepalivePermitWithoutCalls: Bool
  /// The port of the Prometheus metrics endpoint (see `MetricsEndpoint`); nil serves none, 0
  /// picks a free one.
  public var metricsPort: Int?

  /// Defaults that suit a service on a cluster network. The grace period stays under
  /// Kubernetes' default termination grace (30 s) so that the drain ends before SIGKILL.
  public init(
    host: String = "0.0.0.0",
    port: Int = 50051,
    logLevel: Logger.Level = .info,
    logFormat: LogFormat = .text,
    shutdownGracePeriod: Duration = .seconds(25),
    shutdownDelay: Duration = .zero,
    maxMessageBytes: Int = 4 * 1024 * 1024,
    keepaliveTime: Duration? = nil,
    keepaliveTimeout: Duration = .seconds(20),
    keepaliveMinimumPingInterval: Duration? = nil,
    keepalivePermitWithoutCalls: Bool = false,
    metricsPort: Int? = nil
  ) {
    self.host = host
    self.port = port
    self.logLevel = logLevel
    self.logFormat = logFormat
    self.shutdownGracePeriod = shutdownGracePeriod
    self.shutdownDelay = shutdownDelay
    self.maxMessageBytes = maxMessageBytes
    self.keepaliveTime = keepaliveTime
    self.keepaliveTimeout = keepaliveTimeout
    self.keepaliveMinimumPingInterval = keepaliveMinimumPingInterval
    self.keepalivePermitWithoutCalls = keepalivePermitWithoutCalls
    self.metricsPort = metricsPort
  }

  /// How long after SIGTERM a server may take to stop: the delay, the grace period, and ten
  /// seconds for what is still running to notice its cancellation and for the pools to close.
  /// Past it the service group cancels everything. A pod's `terminationGracePeriodSeconds`
  /// should be at least this, or Kubernetes kills a drain the server would have finished.
  public var shutdownLimit: Duration {
    self.shutdownDelay + self.shutdownGracePeriod + .seconds(10)
  }

  /// The shim server transport's configuration for these settings.
  public var transportConfiguration: ShimTransportConfiguration {
    ShimTransportConfiguration(
      maxReceiveMessageBytes: self.maxMessageBytes,
      maxSendMessageBytes: self.maxMessageBytes,
      keepaliveTime: self.keepaliveTime,
      keepaliveTimeout: self.keepaliveTimeout,
      keepalivePermitWithoutCalls: self.keepalivePermitWithoutCalls,
      minimumPingInterval: self.keepaliveMinimumPingInterval,
      shutdownGracePeriod: self.shutdownGracePeriod
    )
  }

  /// Loads the settings named `<prefix>_HOST`, `<prefix>_PORT`, ... from `environment`.
  ///
  /// - Parameters:
  ///   - prefix: The service's prefix without the trailing underscore, e.g. `MAAS_QUOTA`.
  ///   - defaults: The values of unset variables; a service passes its own port here.
  /// - Throws: `ConfigurationError` naming every variable whose value is invalid.
  public static func load(
    prefix: String,
    defaults: ServerSettings = ServerSettings(),
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws(ConfigurationError) -> ServerSettings {
    var reader = EnvironmentReader(environment: environment)
    let settings = Self.read(prefix: prefix, defaults: defaults, from: &reader)
    try reader.finish()
    return settings
  }

  /// Reads the settings through `reader`, which collects their problems along with those of the
  /// service's own variables; call `reader.finish()` once everything is read.
  public static func read(
    prefix: String,
    defaults: ServerSettings = ServerSettings(),
    from reader: inout EnvironmentReader
  ) -> ServerSettings {
    var settings = defaults
    for field in Self.fields {
      field.read(&settings, &reader, "\(prefix)_\(field.suffix)")
    }
    return settings
  }

  /// Every variable read under `prefix`: its name, its default as text (empty when unset means
  /// "the library's default") and what it does, in the order of the table above.
  public static func variables(
    prefix: String,
    defaults: ServerSettings = ServerSettings()
  ) -> [ConfigurationVariable] {
    Self.fields.map { field in
      ConfigurationVariable(
        name: "\(prefix)_\(field.suffix)",
        defaultValue: field.defaultText(defaults),
        description: field.description
      )
    }
  }
}

/// One documented environment variable.
public struct ConfigurationVariable: Sendable, Hashable {
  /// The full name, prefix included.
  public var name: String
  /// The value used when the variable is unset or empty, as text; empty when the default is to
  /// leave the setting to the underlying library.
  public var defaultValue: String
  /// What it controls and which values are valid.
  public var description: String

  /// A documented variable; see the properties.
  public init(name: String, defaultValue: String, description: String) {
    self.name = name
    self.defaultValue = defaultValue
    self.description = description
  }
}

extension ServerSettings {
  /// One variable: how it is named, documented and read. Loader and documentation both come
  /// from this list.
  private struct Field: Sendable {
    var suffix: String
    var description: String
    var defaultText: @Sendable (ServerSettings) -> String
    var read: @Sendable (inout ServerSettings, inout EnvironmentReader, String) -> Void

    init<Value>(
      _ suffix: String,
      _ keyPath: any WritableKeyPath<ServerSettings, Value> & Sendable,
      _ parser: ConfigurationParser<Value>,
      _ meaning: String,
      render: @escaping @Sendable (Value) -> String
    ) {
      self.suffix = suffix
      self.description = "\(meaning) Valid: \(parser.expectation)."
      self.defaultText = { render($0[keyPath: keyPath]) }
      self.read = { settings, reader, name in
        settings[keyPath: keyPath] = reader.read(name, default: settings[keyPath: keyPath], as: parser)
      }
    }

    init<Value>(
      _ suffix: String,
      _ keyPath: any WritableKeyPath<ServerSettings, Value?> & Sendable,
      _ parser: ConfigurationParser<Value>,
      _ meaning: String,
      render: @escaping @Sendable (Value) -> String
    ) {
      self.suffix = suffix
      self.description = "\(meaning) Valid: \(parser.expectation)."
      self.defaultText = { $0[keyPath: keyPath].map(render) ?? "" }
      self.read = { settings, reader, name in
        if let value = reader.readOptional(name, as: parser) { settings[keyPath: keyPath] = value }
      }
    }
  }

  private static let fields: [Field] = [
    Field("HOST", \.host, .host, "Address to bind: 0.0.0.0 (every IPv4 interface), [::] (IPv6), 127.0.0.1 (loopback only).", render: { $0 }),
    Field("PORT", \.port, .port, "TCP port to listen on; with 0 the bound port is logged and printed.", render: { String($0) }),
    Field("LOG_LEVEL", \.logLevel, .oneOf, "Lowest level logged.", render: { $0.rawValue }),
    Field("LOG_FORMAT", \.logFormat, .oneOf, "Log lines on stderr: text for people, json for log collectors.", render: { $0.rawValue }),
    Field("SHUTDOWN_GRACE_SECONDS", \.shutdownGracePeriod, .seconds(in: 0...3_600), "After SIGTERM, how long in-flight calls may finish before they are cancelled.", render: \.secondsText),
    Field("SHUTDOWN_DELAY_SECONDS", \.shutdownDelay, .seconds(in: 0...600), "After SIGTERM, how long to keep serving with health NOT_SERVING before the drain, so load balancers stop routing first.", render: \.secondsText),
    Field("MAX_MESSAGE_BYTES", \.maxMessageBytes, .integer(in: 1...Int(Int32.max)), "Largest message received or sent; larger ones fail with RESOURCE_EXHAUSTED.", render: { String($0) }),
    Field("KEEPALIVE_TIME_SECONDS", \.keepaliveTime, .seconds(in: 1...86_400), "Interval of keepalive pings to idle clients; unset keeps grpc's two hours.", render: \.secondsText),
    Field("KEEPALIVE_TIMEOUT_SECONDS", \.keepaliveTimeout, .seconds(in: 1...3_600), "How long a keepalive ping may go unanswered before the connection is closed.", render: \.secondsText),
    Field("KEEPALIVE_MIN_PING_INTERVAL_SECONDS", \.keepaliveMinimumPingInterval, .seconds(in: 1...86_400), "Shortest interval between client pings tolerated; unset keeps grpc's five minutes.", render: \.secondsText),
    Field("KEEPALIVE_PERMIT_WITHOUT_CALLS", \.keepalivePermitWithoutCalls, .boolean, "Whether client pings are accepted on connections with no call open.", render: { String($0) }),
    Field("METRICS_PORT", \.metricsPort, .port, "TCP port of the Prometheus metrics endpoint (GET /metrics on the same host); unset serves none, 0 picks a free one (logged).", render: { String($0) }),
  ]
}

extension Duration {
  /// Whole or fractional seconds as an operator would write them: "25", "0.5".
  var secondsText: String {
    (self / .seconds(1)).compact
  }
}
