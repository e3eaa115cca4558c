public import GRPCCore
public import GRPCShimTransport
public import Logging
import MaaSContracts
public import ServiceLifecycle
import Synchronization

/// A gRPC server over the shim transport as a swift-service-lifecycle `Service`: what each MaaS
/// executable runs.
///
/// ```swift
/// let settings = loadConfigurationOrExit(program: "maas-quota") { try ServerSettings.load(prefix: "MAAS_QUOTA") }
/// MaaSLogging.bootstrap(settings)
/// let server = MaaSServer(settings: settings, services: [QuotaService(...)], logger: Logger(label: "maas.quota"))
/// try await server.runService()   // until SIGTERM or SIGINT
/// ```
///
/// Every server mounts `health` (the standard health service) and marks each mounted service
/// SERVING in it. A graceful shutdown, from a signal, the `ServiceGroup` or
/// `beginGracefulShutdown()`, runs in this order:
/// 1. health reports NOT_SERVING for everything, so health-checking load balancers stop routing;
/// 2. the server keeps taking calls for `settings.shutdownDelay` (0 by default);
/// 3. Watch streams end, the transport stops accepting calls and in-flight calls get
///    `settings.shutdownGracePeriod` to finish before they are cancelled;
/// 4. `run()` returns.
///
/// With `settings.metricsPort` set, every call is counted and timed (`ServerMetrics`) and a
/// `MetricsEndpoint` serves the figures for Prometheus beside the gRPC port, until `run()`
/// returns: scrapes still see the drain.
public final class MaaSServer: Service, Sendable {
  /// The settings the server was built with.
  public let settings: ServerSettings
  /// The health service this server mounts; services may set their own statuses on it.
  public let health: HealthService
  /// The transport, bound to `settings.host` and `settings.port`.
  public let transport: ShimServerTransport
  /// What the server counts, when it exports metrics (`settings.metricsPort` set); services may
  /// register their own in its registry.
  public let metrics: ServerMetrics?

  private let server: GRPCServer<MeteredServerTransport<ShimServerTransport>>
  private let metricsEndpoint: MetricsEndpoint?
  private let logger: Logger
  private let onListening: @Sendable (ListeningAddress) -> Void
  private let started = Mutex(false)
  /// Yields once when a graceful shutdown is asked for, from whichever side asks first.
  private let shutdownRequests: AsyncStream<Void>
  private let shutdownRequester: AsyncStream<Void>.Continuation

  /// - Parameters:
  ///   - settings: Where to bind, the transport's limits, the shutdown timings.
  ///   - services: The services to serve; `health` is added to them.
  ///   - interceptors: Applied, in order, to every call except health's (Kubernetes probes
  ///     carry no credentials, so an authenticating interceptor must not see them).
  ///   - health: The health service to mount; pass one to control statuses from outside.
  ///   - metrics: Where the calls are counted when `settings.metricsPort` is set; pass one to
  ///     add a service's own metrics to the same endpoint (a new one by default).
  ///   - logger: Receives "listening", "shutting down" and "stopped".
  ///   - onListening: Called once the port is bound, with the address (the real port when
  ///     `settings.port` is 0); executables pass `MaaSServer.printListeningLine`.
  public init(
    settings: ServerSettings,
    services: [any RegistrableRPCService],
    interceptors: [any ServerInterceptor] = [],
    health: HealthService = HealthService(),
    metrics: ServerMetrics? = nil,
    logger: Logger,
    onListening: @escaping @Sendable (ListeningAddress) -> Void = { _ in }
  ) {
    self.settings = settings
    self.health = health
    self.logger = logger
    self.onListening = onListening
    self.transport = ShimServerTransport(
      host: settings.host,
      port: settings.port,
      configuration: settings.transportConfiguration
    )

    if let port = settings.metricsPort {
      let metrics = metrics ?? ServerMetrics()
      self.metrics = metrics
      self.metricsEndpoint = MetricsEndpoint(host: settings.host, port: port, logger: logger) { metrics.render() }
    } else {
      (self.metrics, self.metricsEndpoint) = (nil, nil)
    }
    var router = RPCRouter<MeteredServerTransport<ShimServerTransport>>()
    for service in services + [health] {
      service.registerMethods(with: &router)
    }
    // Probes carry no credentials and must not be rate limited: health is never intercepted.
    let healthService = Grpc_Health_V1_Health.descriptor
    router.registerInterceptors(
      pipeline: interceptors.map { .apply($0, to: .allExcluding(services: [healthService], methods: [])) }
    )
    self.metrics?.serve(router.methods)
    self.server = GRPCServer(
      transport: MeteredServerTransport(base: self.transport, metrics: self.metrics), router: router)

    let mounted = Set(router.methods.map(\.service)).subtracting([healthService])
    for service in mounted {
      health.setStatus(.serving, forService: service.fullyQualifiedService)
    }
    (self.shutdownRequests, self.shutdownRequester) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
  }

  /// The bound port, once `run()` has bound it (the real one when `settings.port` is 0).
  ///
  /// Waits until `run()` binds; throws the transport's error if binding failed.
  public func listeningPort() async throws -> Int {
    try await self.transport.listeningPort()
  }

  /// The bound port of the metrics endpoint, once `run()` has bound it; nil when the server
  /// exports no metrics.
  public func metricsPort() async throws -> Int? {
    guard let endpoint = self.metricsEndpoint else { return nil }
    return try await endpoint.listeningPort()
  }

  /// Starts a graceful shutdown (see the type's documentation); `run()` then returns once
  /// in-flight calls have finished or the grace period has passed. Safe to call more than
  /// once, and before `run()`.
  public func beginGracefulShutdown() {
    self.shutdownRequester.yield()
    self.shutdownRequester.finish()
  }

  /// Serves until a graceful shutdown completes, or until the task is cancelled (which cancels
  /// in-flight calls at once).
  ///
  /// - Throws: `RuntimeError` when the port cannot be bound or the server was already run.
  public func run() async throws {
    let first = self.started.withLock { started in
      defer { started = true }
      return !started
    }
    guard first else {
      throw RuntimeError(code: .serverIsAlreadyRunning, message: "A MaaSServer can only run once.")
    }

    try await withGracefulShutdownHandler {
      try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask {
          try await self.server.serve()
          return true
        }
        group.addTask {
          await self.announceWhenBound()
          return false
        }
        group.addTask {
          await self.drainWhenAsked()
          return false
        }
        if let endpoint = self.metricsEndpoint {
          group.addTask {
            try await endpoint.run()
            return false
          }
        }
        // Serving is what the other two tasks exist for: once it ends, they have nothing to do.
        while let servingEnded = try await group.next() {
          if servingEnded { group.cancelAll() }
        }
      }
    } onGracefulShutdown: {
      self.beginGracefulShutdown()
    }
    self.logger.info("stopped")
  }

  /// Runs the server, and `services` alongside it, in a `ServiceGroup` that shuts down
  /// gracefully on SIGTERM and SIGINT. Returns once everything has stopped.
  public func runService(alongside services: [any Service] = []) async throws {
    try await self.makeServiceGroup(alongside: services).run()
  }

  /// The `ServiceGroup` `runService` runs. The server comes last so that the group, which
  /// shuts services down in reverse order, drains it before the pools and loops it uses.
  ///
  /// - Parameters:
  ///   - services: Long-lived parts the server depends on (pools, background loops).
  ///   - handlingSignals: Whether SIGTERM and SIGINT start a graceful shutdown; tests that run
  ///     several servers in one process pass false and call `triggerGracefulShutdown()`.
  public func makeServiceGroup(alongside services: [any Service] = [], handlingSignals: Bool = true) -> ServiceGroup {
    var configuration = ServiceGroupConfiguration(services: services + [self], logger: self.logger)
    if handlingSignals {
      configuration.gracefulShutdownSignals = [.sigterm, .sigint]
    }
    // A drain that outlives its grace period has a stuck call in it; cancelling ends that call.
    configuration.maximumGracefulShutdownDuration = self.settings.shutdownLimit
    return ServiceGroup(configuration: configuration)
  }

  /// Prints `listening on HOST:PORT` to stdout and flushes it: the one line scripts and tests
  /// read to learn the port when it was 0.
  public static let printListeningLine: @Sendable (ListeningAddress) -> Void = { address in
    // Straight to the file descriptor: stdio would hold the line in its buffer when stdout is
    // a pipe, and the reader would wait for it.
    writeToStandardOutput("listening on \(address)\n")
  }

  private func announceWhenBound() async {
    // A bind failure makes serve() throw; that error is the one reported.
    guard let port = try? await self.transport.listeningPort() else { return }
    let address = ListeningAddress(host: self.settings.host, port: port)
    self.logger.info("listening", metadata: ["host": "\(address.host)", "port": "\(port)"])
    self.onListening(address)
  }

  private func drainWhenAsked() async {
    var requests = self.shutdownRequests.makeAsyncIterator()
    // nil: the server stopped on its own and this task was cancelled.
    guard await requests.next() != nil else { return }
    self.logger.info(
      "shutting down",
      metadata: [
        "delay_seconds": "\(self.settings.shutdownDelay.secondsText)",
        "grace_seconds": "\(self.settings.shutdownGracePeriod.secondsText)",
      ]
    )
    self.health.markAllNotServing()
    if self.settings.shutdownDelay > .zero {
      try? await Task.sleep(for: self.settings.shutdownDelay)
    }
    self.health.endWatches()
    // The transport rather than GRPCServer: a server asked to stop before serve() has started
    // would refuse to serve at all, and the port would never be announced. The transport
    // instead binds, then drains at once.
    self.transport.beginGracefulShutdown()
  }
}

extension MaaSServer: CustomStringConvertible {
  /// How the service group names this server in its logs.
  public var description: String {
    "MaaSServer(\(ListeningAddress(host: self.settings.host, port: self.settings.port)))"
  }
}

/// Where a server listens: the configured host and the bound port.
public struct ListeningAddress: Sendable, Hashable, CustomStringConvertible {
  /// The host as configured ("0.0.0.0", "::", "127.0.0.1").
  public var host: String
  /// The bound port, never 0.
  public var port: Int

  /// The address `host:port`.
  public init(host: String, port: Int) {
    self.host = host
    self.port = port
  }

  /// `host:port`, with IPv6 hosts in brackets (`[::]:50051`) so that the text dials as it reads.
  public var description: String {
    self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
  }
}
