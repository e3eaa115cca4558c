import Foundation
import GRPCCore
import GRPCProtobuf
import GRPCShimTransport
import MaaSContracts
import MaaSTesting
import Prometheus
import Synchronization
import Testing

@testable import MaaSRuntime

extension ServerSettings {
  /// `loopback`, with the metrics endpoint on a free port.
  static var loopbackWithMetrics: ServerSettings {
    var settings = ServerSettings.loopback
    settings.metricsPort = 0
    return settings
  }
}

/// Makes one health check: a client that makes no call at all fails `withGRPCClient`.
private func checkHealth(_ client: GRPCClient<ShimClientTransport>) async throws {
  _ = try await Grpc_Health_V1_Health.Client(wrapping: client).check(.init())
}

/// The series of one Echo method, as the endpoint writes it.
private func echo(_ method: String, _ extra: String = "") -> String {
  "grpc_service=\"maas.echo.v1.Echo\",grpc_method=\"\(method)\"\(extra)"
}

@Suite("A server's metrics endpoint")
struct MetricsTests {
  @Test("counts each call by method and status code, times it, and counts a path nobody serves as unknown")
  func countsCalls() async throws {
    try await withRunningServer(settings: .loopbackWithMetrics, services: [EchoService()]) { server, client in
      let echoClient = Maas_Echo_V1_Echo.Client(wrapping: client)
      _ = try await echoClient.get(.with { $0.text = "a" })
      _ = try await echoClient.get(.with { $0.text = "b" })
      await #expect(throws: RPCError.self) {
        try await echoClient.get(.init(), metadata: ["x-fail-code": "9", "x-fail-message": "not now"])
      }
      let unknown = MethodDescriptor(fullyQualifiedService: "nope.v1.Nope", method: "Invent")
      let error = await #expect(throws: RPCError.self) {
        try await client.unary(
          request: ClientRequest(message: Maas_Echo_V1_EchoRequest()), descriptor: unknown,
          serializer: ProtobufSerializer<Maas_Echo_V1_EchoRequest>(),
          deserializer: ProtobufDeserializer<Maas_Echo_V1_EchoResponse>(), options: .defaults
        ) { try $0.message }
      }
      #expect(error?.code == .unimplemented)

      let port = try #require(try await server.metricsPort())
      let samples = try scrapeMetrics(port: port)
      #expect(samples["grpc_server_started_total{\(echo("Get"))}"] == 3)
      #expect(samples["grpc_server_handled_total{\(echo("Get", ",grpc_code=\"OK\""))}"] == 2)
      #expect(samples["grpc_server_handled_total{\(echo("Get", ",grpc_code=\"FailedPrecondition\""))}"] == 1)
      #expect(samples["grpc_server_handling_seconds_count{\(echo("Get"))}"] == 3)
      #expect(samples["grpc_server_handling_seconds_bucket{\(echo("Get", ",le=\"+Inf\""))}"] == 3)
      #expect((samples["grpc_server_handling_seconds_sum{\(echo("Get"))}"] ?? 0) > 0)
      // Served methods read 0 before their first call; invented paths never get a series.
      #expect(samples["grpc_server_started_total{\(echo("Update"))}"] == 0)
      #expect(samples["grpc_server_started_total{grpc_service=\"unknown\",grpc_method=\"unknown\"}"] == 1)
      #expect(
        samples["grpc_server_handled_total{grpc_service=\"unknown\",grpc_method=\"unknown\",grpc_code=\"Unimplemented\"}"] == 1)
      #expect(!samples.keys.contains { $0.contains("nope.v1.Nope") || $0.contains("Invent") })
      #expect(samples["maas_grpc_server_inflight_calls"] == 0)
    }
  }

  @Test("counts a call in flight while it runs, and leaves health calls out of that gauge")
  func countsCallsInFlight() async throws {
    let (arrivals, arrived) = AsyncStream.makeStream(of: String.self)
    // The echo call stays in flight until the gauge has been read (no race with a delay).
    let (gate, openGate) = AsyncStream.makeStream(of: Void.self)
    let interceptor = ArrivalInterceptor(arrivals: arrived, holding: "maas.echo.v1.Echo/Get") { for await _ in gate {} }
    try await withRunningServer(
      settings: .loopbackWithMetrics, services: [EchoService()], interceptors: [interceptor]
    ) { server, client in
      let port = try #require(try await server.metricsPort())
      // A health Watch stream, open while the gauge is read: counted as started, not in flight.
      let health = Grpc_Health_V1_Health.Client(wrapping: client)
      let duringWatch = try await health.watch(.with { $0.service = "" }) { response in
        for try await _ in response.messages { return try scrapeMetrics(port: port) }
        return [:]
      }
      #expect(duringWatch["grpc_server_started_total{grpc_service=\"grpc.health.v1.Health\",grpc_method=\"Watch\"}"] == 1)
      #expect(duringWatch["maas_grpc_server_inflight_calls"] == 0)

      let echoClient = Maas_Echo_V1_Echo.Client(wrapping: client)
      async let reply = echoClient.get(.with { $0.text = "held" })
      _ = try await withTimeout("the call to reach the server") {
        var iterator = arrivals.makeAsyncIterator()
        while let method = await iterator.next(), method != "maas.echo.v1.Echo/Get" {}
        return true
      }
      #expect(try scrapeMetrics(port: port)["maas_grpc_server_inflight_calls"] == 1)
      openGate.finish()
      _ = try await reply
      #expect(try scrapeMetrics(port: port)["maas_grpc_server_inflight_calls"] == 0)
    }
  }

  @Test("exports the process's CPU time, resident memory, open files and start time")
  func exportsProcessFigures() async throws {
    try await withRunningServer(settings: .loopbackWithMetrics, services: [EchoService()]) { server, client in
      try await checkHealth(client)
      let samples = try scrapeMetrics(port: try #require(try await server.metricsPort()))
      #expect((samples["process_cpu_seconds_total"] ?? 0) > 0)
      #expect((samples["process_resident_memory_bytes"] ?? 0) > 1_000_000)
      #expect((samples["process_open_fds"] ?? 0) > 3)
      let started = try #require(samples["process_start_time_seconds"])
      // This test process started before the test, and not days before.
      #expect(started <= Date().timeIntervalSince1970 && started > Date().timeIntervalSince1970 - 86_400)
    }
  }

  @Test("answers another path 404, another method 405 and a line that is not HTTP 400, and goes on serving")
  func refusesOtherRequests() async throws {
    try await withRunningServer(settings: .loopbackWithMetrics, services: [EchoService()]) { server, client in
      try await checkHealth(client)
      let port = try #require(try await server.metricsPort())
      #expect(try exchangeHTTP(port: port, "GET / HTTP/1.1\r\n\r\n").status == 404)
      let post = try exchangeHTTP(port: port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
      #expect(post.status == 405)
      #expect(post.headers["allow"] == "GET, HEAD")
      #expect(try exchangeHTTP(port: port, "hello\r\n\r\n").status == 400)
      let head = try exchangeHTTP(port: port, "HEAD /metrics HTTP/1.0\r\n\r\n")
      #expect(head.status == 200 && head.body.isEmpty && Int(head.headers["content-length"] ?? "0")! > 0)
      let scrape = try exchangeHTTP(port: port, "GET /metrics?debug=1 HTTP/1.1\r\n\r\n")
      #expect(scrape.status == 200)
      #expect(scrape.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
      #expect(scrape.body.contains("# TYPE grpc_server_handled_total counter"))
    }
  }

  @Test("stops serving once the server has stopped")
  func stopsWithTheServer() async throws {
    let port = try await withRunningServer(settings: .loopbackWithMetrics, services: [EchoService()]) { server, client in
      try await checkHealth(client)
      return try #require(try await server.metricsPort())
    }
    #expect(throws: HTTPExchangeError.self) { try exchangeHTTP(port: port, "GET /metrics HTTP/1.1\r\n\r\n") }
  }

  @Test("a client sending its request a byte at a time neither keeps a scrape behind it nor holds up the stop")
  func slowClientsAreCutOff() async throws {
    let second = try await withRunningServer(settings: .loopbackWithMetrics, services: [EchoService()]) { server, client in
      try await checkHealth(client)
      let port = try #require(try await server.metricsPort())
      // Connected first, so the endpoint (one connection at a time, in order) takes it first.
      let first = try SlowClient(port: port)
      let scrape = try exchangeHTTP(port: port, "GET /metrics HTTP/1.1\r\n\r\n")
      #expect(scrape.status == 200)
      #expect(!first.sentAll, "the scrape waited until the slow client had sent everything")
      await first.finish()
      return try SlowClient(port: port)
    }
    // The server has stopped (its endpoint included) while this client was still sending.
    #expect(!second.sentAll)
    await second.finish()
  }

  @Test("fails the server's run when its port is taken")
  func failsOnTakenPort() async throws {
    try await withRunningServer(settings: .loopbackWithMetrics, services: [EchoService()]) { first, client in
      try await checkHealth(client)
      let taken = try #require(try await first.metricsPort())
      var settings = ServerSettings.loopback
      settings.metricsPort = taken
      let second = MaaSServer(settings: settings, services: [EchoService()], logger: quietLogger)
      let failure = try await withTimeout("the second server to fail") { () -> (any Error)? in
        do {
          try await second.run()
          return nil
        } catch {
          return error
        }
      }
      #expect(failure is MetricsEndpointError)
      #expect("\(failure.map { "\($0)" } ?? "")".contains("cannot listen on 127.0.0.1:\(taken)"))
    }
  }

  @Test("is not served, and nothing counted, when no metrics port is set")
  func offByDefault() async throws {
    try await withRunningServer(services: [EchoService()]) { server, client in
      try await checkHealth(client)
      #expect(server.metrics == nil)
      let port = try await server.metricsPort()
      #expect(port == nil)
    }
  }
}

@Suite("A metrics request")
struct MetricsRequestTests {
  @Test(
    "is answered by its request line",
    arguments: [
      ("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK"),
      ("GET /metrics?x=1 HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK"),
      ("HEAD /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK"),
      ("PUT /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"),
      ("GET /metric HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
      ("GET /metrics/x HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
      ("GET metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request"),
      ("GET /metrics\r\n\r\n", "HTTP/1.1 400 Bad Request"),
      ("GET /metrics SPDY/3\r\n\r\n", "HTTP/1.1 400 Bad Request"),
      ("\u{0}\u{1}\u{2}", "HTTP/1.1 400 Bad Request"),
    ])
  func answers(request: String, statusLine: String) {
    let response = MetricsRequest(head: Array(request.utf8)).response { Array("body\n".utf8) }
    let text = String(decoding: response, as: UTF8.self)
    #expect(text.hasPrefix(statusLine + "\r\n"))
    #expect(text.contains("Connection: close\r\n"))
  }

  @Test("carries the rendered metrics as its body, with their length, except for HEAD")
  func body() {
    let get = String(decoding: MetricsRequest(head: Array("GET /metrics HTTP/1.1\r\n\r\n".utf8)).response { Array("m 1\n".utf8) }, as: UTF8.self)
    #expect(get.hasSuffix("Content-Length: 4\r\nConnection: close\r\n\r\nm 1\n"))
    let head = String(decoding: MetricsRequest(head: Array("HEAD /metrics HTTP/1.1\r\n\r\n".utf8)).response { Array("m 1\n".utf8) }, as: UTF8.self)
    #expect(head.hasSuffix("Content-Length: 4\r\nConnection: close\r\n\r\n"))
  }
}

@Suite("A mirrored counter")
struct MirroredCounterTests {
  @Test("adds what the total grew by, and takes a total that went down as the new base")
  func follows() {
    let registry = PrometheusCollectorRegistry()
    let counter = MirroredCounter(registry.makeCounter(descriptor: .init(metricName: "things", unitName: "total", helpText: "")))
    for total in [3, 5, 5, 2, 4] { counter.follow(total) }
    // 3 + 2 + 0, then a restart at 2 (nothing), then + 2.
    #expect(registry.emitToString().contains("things_total 7\n"))
  }
}

/// A client that sends a request head without its end, one byte every half second for twenty
/// seconds (ten times what the endpoint allows a whole exchange); `sentAll` says whether the
/// endpoint let it (a cut-off connection fails the sends that follow).
private final class SlowClient: Sendable {
  private final class Flag: Sendable { let value = Atomic<Bool>(false) }

  private let sent: Flag
  private let task: Task<Void, Never>

  var sentAll: Bool { self.sent.value.load(ordering: .relaxed) }

  init(port: Int) throws {
    let socket = try connectToLoopback(port: port)
    let sent = Flag()
    self.sent = sent
    self.task = Task {
      defer { close(socket) }
      let head = Array("GET /metrics HTTP/1.1\r\nX-Slow: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 40)
      for byte in head.prefix(40) {
        guard !Task.isCancelled, send(socket, [byte], 1, Int32(MSG_NOSIGNAL)) == 1 else { return }
        try? await Task.sleep(for: .milliseconds(500))
      }
      if !Task.isCancelled { sent.value.store(true, ordering: .relaxed) }
    }
  }

  func finish() async {
    self.task.cancel()
    await self.task.value
  }
}
