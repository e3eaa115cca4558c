import GRPCCore
import GRPCShimTransport
import MaaSContracts
import MaaSRuntime
import MaaSTesting
import ServiceLifecycle
import Testing

@Suite("Server lifecycle")
struct LifecycleTests {
  @Test("A graceful shutdown lets the in-flight call finish, then the server returns")
  func drainsInFlightCall() async throws {
    let (arrivals, arrived) = AsyncStream.makeStream(of: String.self)
    let server = MaaSServer(
      settings: .loopback,
      services: [EchoService()],
      interceptors: [ArrivalInterceptor(arrivals: arrived)],
      logger: quietLogger
    )
    let group = server.makeServiceGroup(handlingSignals: false)

    let running = Task { try await group.run() }
    defer { running.cancel() }
    let port = try await withTimeout("the server to bind") { try await server.listeningPort() }

    let reply = try await withGRPCClient(transport: ShimClientTransport(target: "127.0.0.1:\(port)")) { client in
      let echo = Maas_Echo_V1_Echo.Client(wrapping: client)
      async let reply = echo.get(.with { $0.text = "slow" }, metadata: ["x-delay-ms": "300"])
      // Shut down only once the call is known to be on the server.
      let first = try await withTimeout("the call to reach the server") {
        var iterator = arrivals.makeAsyncIterator()
        return await iterator.next()
      }
      #expect(first == "maas.echo.v1.Echo/Get")
      await group.triggerGracefulShutdown()
      return try await reply
    }
    #expect(reply.text == "slow")
    try await withTimeout("the service group to return") { try await running.value }
  }

  @Test("Shutting down reports NOT_SERVING to watchers, then ends their streams")
  func healthGoesNotServing() async throws {
    // A short delay, as deployed (5 s there), so NOT_SERVING reaches the watcher before the
    // drain. Without one, NOT_SERVING, the stream's end and the connection's close leave
    // together, and grpc C-core closes a connection as soon as its last stream ends after
    // GOAWAY: a client frame (a BDP ping, say) that crosses that close draws a reset, and the
    // client can fail the Watch with UNAVAILABLE "Broken pipe" before it reads the end. That
    // happened once in a CI run.
    var settings = ServerSettings.loopback
    settings.shutdownDelay = .milliseconds(200)
    let server = MaaSServer(settings: settings, services: [EchoService()], logger: quietLogger)
    let group = server.makeServiceGroup(handlingSignals: false)

    let running = Task { try await group.run() }
    defer { running.cancel() }
    let port = try await withTimeout("the server to bind") { try await server.listeningPort() }

    let seen = try await withGRPCClient(transport: ShimClientTransport(target: "127.0.0.1:\(port)")) { client in
      let health = Grpc_Health_V1_Health.Client(wrapping: client)
      return try await withTimeout("the watch to end") {
        try await health.watch(.with { $0.service = "maas.echo.v1.Echo" }) { response in
          var statuses: [Grpc_Health_V1_HealthCheckResponse.ServingStatus] = []
          for try await message in response.messages {
            statuses.append(message.status)
            if statuses.count == 1 { await group.triggerGracefulShutdown() }
          }
          return statuses
        }
      }
    }
    #expect(seen == [.serving, .notServing])
    try await withTimeout("the service group to return") { try await running.value }
  }

  @Test("During the shutdown delay the server still answers calls while health says NOT_SERVING")
  func servesDuringShutdownDelay() async throws {
    var settings = ServerSettings.loopback
    settings.shutdownDelay = .seconds(600)
    let server = MaaSServer(settings: settings, services: [EchoService()], logger: quietLogger)
    let running = Task { try await server.run() }
    defer { running.cancel() }
    let port = try await withTimeout("the server to bind") { try await server.listeningPort() }

    try await withGRPCClient(transport: ShimClientTransport(target: "127.0.0.1:\(port)")) { client in
      let health = Grpc_Health_V1_Health.Client(wrapping: client)
      let seen = try await withTimeout("the watched statuses") {
        try await health.watch(.with { $0.service = "" }) { response in
          var messages = response.messages.makeAsyncIterator()
          let first = try await messages.next()?.status
          server.beginGracefulShutdown()
          let second = try await messages.next()?.status
          return [first, second]
        }
      }
      #expect(seen == [.serving, .notServing])
      #expect(try await health.check(.with { $0.service = "" }).status == .notServing)
      let echo = Maas_Echo_V1_Echo.Client(wrapping: client)
      #expect(try await echo.get(.with { $0.text = "still here" }).text == "still here")
    }
    // Cancelling cuts the delay short and stops the server at once.
    running.cancel()
    _ = try await withTimeout("the server to return") { await running.result }
  }

  @Test("A server asked to stop before it runs still binds, then returns")
  func shutdownBeforeRun() async throws {
    let server = MaaSServer(settings: .loopback, services: [], logger: quietLogger)
    server.beginGracefulShutdown()
    try await withTimeout("the server to return") { try await server.run() }
    #expect(try await server.listeningPort() > 0)
    #expect(server.health.status(forService: "") == .notServing)
  }

  @Test("A server runs only once")
  func runsOnce() async throws {
    let server = MaaSServer(settings: .loopback, services: [], logger: quietLogger)
    server.beginGracefulShutdown()
    try await withTimeout("the server to return") { try await server.run() }
    await #expect(throws: RuntimeError.self) { try await server.run() }
  }

  @Test("The listening address puts IPv6 hosts in brackets")
  func listeningAddress() {
    #expect(ListeningAddress(host: "0.0.0.0", port: 50051).description == "0.0.0.0:50051")
    #expect(ListeningAddress(host: "::", port: 50051).description == "[::]:50051")
  }
}
