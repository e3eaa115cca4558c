import GRPCCore
import GRPCShimTransport
import Logging
import MaaSRuntime
import MaaSTesting

/// Runs `body`, cancelling it and throwing `TimedOut` if it has not finished within `limit`.
func withTimeout<Result: Sendable>(
  _ what: String,
  _ limit: Duration = .seconds(30),
  _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
  try await withThrowingTaskGroup(of: Result?.self) { group in
    group.addTask { try await body() }
    group.addTask {
      try await Task.sleep(for: limit)
      return nil
    }
    defer { group.cancelAll() }
    guard let first = try await group.next(), let result = first else {
      throw TimedOut(what: what)
    }
    return result
  }
}

/// A logger that drops everything, so that test output stays readable.
let quietLogger = Logger(label: "maas.test") { _ in SwiftLogNoOpLogHandler() }

extension ServerSettings {
  /// Loopback, a free port, and a grace period long enough never to cut a test's call short.
  static var loopback: ServerSettings {
    ServerSettings(host: "127.0.0.1", port: 0, shutdownGracePeriod: .seconds(30))
  }
}

/// Runs a `MaaSServer` with `services` on loopback and a client connected to it; shuts both
/// down when `body` returns, and waits (bounded) for the server to stop.
func withRunningServer<Result: Sendable>(
  settings: ServerSettings = .loopback,
  services: [any RegistrableRPCService] = [],
  health: HealthService = HealthService(),
  interceptors: [any ServerInterceptor] = [],
  _ body: (MaaSServer, GRPCClient<ShimClientTransport>) async throws -> Result
) async throws -> Result {
  let server = MaaSServer(
    settings: settings,
    services: services,
    interceptors: interceptors,
    health: health,
    logger: quietLogger
  )
  return try await withThrowingTaskGroup(of: Void.self) { group in
    group.addTask { try await server.run() }
    // Leaving the group early (a failed expectation throwing) cancels the server's task.
    let port = try await withTimeout("the server to bind") { try await server.listeningPort() }
    let result = try await withGRPCClient(transport: ShimClientTransport(target: "127.0.0.1:\(port)")) { client in
      try await body(server, client)
    }
    server.beginGracefulShutdown()
    try await group.waitForAll()
    return result
  }
}

/// Tells the test when a call has reached the server, so that it can act while the call is
/// in flight without guessing at timings.
struct ArrivalInterceptor: ServerInterceptor {
  let arrivals: AsyncStream<String>.Continuation
  /// Calls of this method (`service/method`) wait after arriving until `holdUntil` returns: in
  /// flight for as long as a test needs, whatever the machine's speed.
  var holding: String? = nil
  var holdUntil: @Sendable () async -> Void = {}

  func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    self.arrivals.yield(context.descriptor.fullyQualifiedMethod)
    if context.descriptor.fullyQualifiedMethod == self.holding { await self.holdUntil() }
    return try await next(request, context)
  }
}
