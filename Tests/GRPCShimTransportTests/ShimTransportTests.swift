import Foundation
import GRPCCore
import GRPCProtobuf
import GRPCShimTransport
import MaaSContracts
import MaaSTesting
import Testing

/// The shim transports, client and server, over real grpc C++ on loopback.
@Suite("Shim transport over loopback", .timeLimit(.minutes(2)))
struct ShimTransportTests {
  typealias Echo = Maas_Echo_V1_Echo

  @Test("a unary call echoes its text and payload")
  func unaryCallEchoes() async throws {
    try await withLoopbackServer(services: [EchoService()]) { client, _ in
      let reply = try await Echo.Client(wrapping: client).get(.with {
        $0.text = "hello"
        $0.payload = Data([0, 1, 2, 255])
      })
      #expect(reply.text == "hello")
      #expect(reply.payload == Data([0, 1, 2, 255]))
    }
  }

  @Test("a server-streaming call answers once per word, in order")
  func serverStreamingAnswersPerWord() async throws {
    try await withLoopbackServer(services: [EchoService()]) { client, _ in
      let words = try await Echo.Client(wrapping: client).expand(.with { $0.text = "a bb ccc dddd" }) {
        response in
        try await response.messages.reduce(into: [String]()) { $0.append($1.text) }
      }
      #expect(words == ["a", "bb", "ccc", "dddd"])
    }
  }

  @Test("a server-streaming call delivers more messages than the read window")
  func serverStreamingBeyondTheWindow() async throws {
    let text = (0..<200).map(String.init).joined(separator: " ")
    try await withLoopbackServer(services: [EchoService()]) { client, _ in
      let count = try await Echo.Client(wrapping: client).expand(.with { $0.text = text }) { response in
        try await response.messages.reduce(0) { count, _ in count + 1 }
      }
      #expect(count == 200)
    }
  }

  @Test("a client-streaming call joins every request")
  func clientStreamingJoinsRequests() async throws {
    try await withLoopbackServer(services: [EchoService()]) { client, _ in
      let reply = try await Echo.Client(wrapping: client).collect(
        request: StreamingClientRequest { writer in
          for index in 0..<100 { try await writer.write(.with { $0.text = "\(index)" }) }
        }
      )
      #expect(reply.text == (0..<100).map(String.init).joined(separator: " "))
    }
  }

  @Test("a bidirectional call alternates sends and replies")
  func bidirectionalCallAlternates() async throws {
    try await withLoopbackServer(services: [EchoService()]) { client, _ in
      // Each request is written only after the previous reply arrived, so a transport that
      // held messages back until the stream closed would deadlock here (and hit the time limit).
      let (turns, turn) = AsyncStream.makeStream(of: Int.self)
      turn.yield(0)
      let replies = try await Echo.Client(wrapping: client).update(
        request: StreamingClientRequest { writer in
          for await index in turns {
            if index == 5 { break }
            try await writer.write(.with { $0.text = "turn \(index)" })
          }
        }
      ) { response in
        var replies: [String] = []
        for try await reply in response.messages {
          replies.append(reply.text)
          turn.yield(replies.count)
        }
        return replies
      }
      #expect(replies == (0..<5).map { "turn \($0)" })
    }
  }

  @Test("metadata crosses both ways: request entries come back in headers and trailers")
  func metadataCrossesBothWays() async throws {
    try await withLoopbackServer(services: [EchoService()]) { client, _ in
      var metadata: Metadata = ["x-text": "value"]
      metadata.addBinary([0, 1, 2, 0xFF], forKey: "x-data-bin")
      let request = ClientRequest(message: Maas_Echo_V1_EchoRequest.with { $0.text = "m" }, metadata: metadata)
      let (headers, trailers) = try await Echo.Client(wrapping: client).get(request: request) { response in
        (response.metadata, response.trailingMetadata)
      }
      #expect(Array(headers[stringValues: "x-text"]) == ["value"])
      #expect(Array(headers[binaryValues: "x-data-bin"]) == [[0, 1, 2, 0xFF]])
      #expect(Array(trailers[stringValues: "x-text"]) == ["value"])
      #expect(Array(trailers[binaryValues: "x-data-bin"]) == [[0, 1, 2, 0xFF]])
    }
  }

  @Test("a call past its deadline fails with DEADLINE_EXCEEDED")
  func expiredDeadline() async throws {
    try await withLoopbackServer(services: [EchoService()]) { client, _ in
      var options = CallOptions.defaults
      options.timeout = .milliseconds(100)
      let request = ClientRequest(message: Maas_Echo_V1_EchoRequest(), metadata: ["x-delay-ms": "5000"])
      let error = await #expect(throws: RPCError.self) {
        try await Echo.Client(wrapping: client).get(request: request, options: options) { try $0.message }
      }
      #expect(error?.code == .deadlineExceeded)
    }
  }

  @Test("a deadline sent as CallTimeout ends the call with DEADLINE_EXCEEDED and cancels the server's handler")
  func callTimeoutDeadline() async throws {
    // No CallOptions.timeout: GRPCCore sets no timer of its own, so only grpc C++ can end it.
    let service = EchoService()
    try await withLoopbackServer(services: [service]) { client, _ in
      var metadata = CallTimeout(.seconds(2)).metadata
      metadata.addString("1", forKey: "x-wait-for-cancel")
      let started = ContinuousClock.now
      let error = await #expect(throws: RPCError.self) {
        try await Echo.Client(wrapping: client).get(
          request: ClientRequest(message: Maas_Echo_V1_EchoRequest(), metadata: metadata)
        ) { try $0.message }
      }
      #expect(error?.code == .deadlineExceeded)
      #expect(started.duration(to: .now) >= .seconds(2))
      #expect(service.waiting.recorded == 1)
      #expect(await service.cancellations.wait(for: 1) == 1)
    }
  }

  @Test("the server sees the client's deadline")
  func serverSeesDeadline() async throws {
    // A deadline that the client does not enforce itself must still end the server's handler:
    // grpc C++ carries it, and the server transport hands it to GRPCCore as grpc-timeout.
    let service = EchoService()
    try await withLoopbackServer(services: [service]) { client, _ in
      // Long enough for the call to reach its handler on a loaded machine: what is tested is that
      // the handler, once waiting, is cancelled when the deadline passes.
      var options = CallOptions.defaults
      options.timeout = .seconds(3)
      let request = ClientRequest(message: Maas_Echo_V1_EchoRequest(), metadata: ["x-wait-for-cancel": "1"])
      await #expect(throws: RPCError.self) {
        try await Echo.Client(wrapping: client).get(request: request, options: options) { try $0.message }
      }
      #expect(service.waiting.recorded == 1)
      #expect(await service.cancellations.wait(for: 1) == 1)
    }
  }

  @Test("a client that cancels its call cancels the server's handler")
  func clientCancelReachesServer() async throws {
    let service = EchoService()
    try await withLoopbackServer(services: [service]) { client, _ in
      let call = Task {
        let request = ClientRequest(message: Maas_Echo_V1_EchoRequest(), metadata: ["x-wait-for-cancel": "1"])
        return try await Echo.Client(wrapping: client).get(request: request) { try $0.message }
      }
      #expect(await service.waiting.wait(for: 1) == 1)
      call.cancel()
      #expect(await service.cancellations.wait(for: 1) == 1)
      await #expect(throws: (any Error).self) { try await call.value }
    }
  }

  @Test("an unknown method fails with UNIMPLEMENTED")
  func unknownMethod() async throws {
    try await withLoopbackServer(services: [EchoService()]) { client, _ in
      let error = await #expect(throws: RPCError.self) {
        try await client.unary(
          request: ClientRequest(message: Maas_Echo_V1_EchoRequest()),
          descriptor: MethodDescriptor(fullyQualifiedService: "maas.echo.v1.Echo", method: "Nope"),
          serializer: ProtobufSerializer<Maas_Echo_V1_EchoRequest>(),
          deserializer: ProtobufDeserializer<Maas_Echo_V1_EchoResponse>(),
          options: .defaults
        ) { try $0.message }
      }
      #expect(error?.code == .unimplemented)
    }
  }

  @Test("a message over the server's limit fails with RESOURCE_EXHAUSTED")
  func messageOverLimit() async throws {
    var server = ShimTransportConfiguration.defaults
    server.maxReceiveMessageBytes = 1024
    try await withLoopbackServer(services: [EchoService()], server: server) { client, _ in
      let echo = Echo.Client(wrapping: client)
      let error = await #expect(throws: RPCError.self) {
        try await echo.get(.with { $0.payload = Data(count: 4096) })
      }
      #expect(error?.code == .resourceExhausted)
      // A message under the limit on the same connection still goes through.
      let reply = try await echo.get(.with { $0.payload = Data(count: 512) })
      #expect(reply.payload.count == 512)
    }
  }

  @Test("bytes that are not the request's protobuf fail the call, and the server keeps serving")
  func malformedBytes() async throws {
    try await withLoopbackServer(services: [EchoService()]) { client, _ in
      let error = await #expect(throws: RPCError.self) {
        try await client.unary(
          request: ClientRequest(message: [UInt8]([0xFF, 0xFF, 0xFF, 0xFF])),
          descriptor: Echo.Method.Get.descriptor,
          serializer: RawBytesSerializer(),
          deserializer: ProtobufDeserializer<Maas_Echo_V1_EchoResponse>(),
          options: .defaults
        ) { try $0.message }
      }
      #expect(error?.code == .internalError || error?.code == .invalidArgument)
      let reply = try await Echo.Client(wrapping: client).get(.with { $0.text = "still here" })
      #expect(reply.text == "still here")
    }
  }

  @Test("a call to a server that is not there fails with UNAVAILABLE")
  func unreachableServer() async throws {
    // Port 1 on loopback: nothing listens there, and grpc fails fast rather than waiting.
    // Not withGRPCClient: the call can fail before the client's runConnections has started, and
    // the shutdown that follows the body then makes runConnections throw `clientIsStopped`, which
    // withGRPCClient rethrows (seen once in a full run). Whether the client got to run is not
    // what this test is about.
    let client = GRPCClient(transport: ShimClientTransport(target: "127.0.0.1:1"))
    let running = Task { try await client.runConnections() }
    let error = await #expect(throws: RPCError.self) {
      try await Echo.Client(wrapping: client).get(Maas_Echo_V1_EchoRequest())
    }
    #expect(error?.code == .unavailable)
    client.beginGracefulShutdown()
    _ = await running.result
  }

  @Test("a graceful shutdown lets an in-flight call finish and refuses new ones")
  func gracefulShutdownDrains() async throws {
    let service = EchoService()
    try await withLoopbackServer(services: [service]) { client, loopback in
      let echo = Echo.Client(wrapping: client)
      let inFlight = Task {
        let request = ClientRequest(
          message: Maas_Echo_V1_EchoRequest.with { $0.text = "drained" },
          metadata: ["x-delay-ms": "300"]
        )
        return try await echo.get(request: request) { try $0.message.text }
      }
      #expect(await service.waiting.wait(for: 1) == 1)
      loopback.server.beginGracefulShutdown()
      let drained = try await inFlight.value
      #expect(drained == "drained")
      await #expect(throws: RPCError.self) {
        try await echo.get(.with { $0.text = "too late" })
      }
    }
  }

  @Test("many concurrent calls over one channel all complete")
  func concurrentCalls() async throws {
    try await withLoopbackServer(services: [EchoService()]) { client, _ in
      let echo = Echo.Client(wrapping: client)
      let texts = try await withThrowingTaskGroup(of: String.self) { group in
        for index in 0..<500 {
          group.addTask { try await echo.get(.with { $0.text = "\(index)" }).text }
        }
        return try await group.reduce(into: Set<String>()) { $0.insert($1) }
      }
      #expect(texts == Set((0..<500).map(String.init)))
    }
  }
}

/// Sends its bytes as they are: how a test puts garbage on the wire.
struct RawBytesSerializer: MessageSerializer {
  func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes {
    Bytes(message)
  }
}

@Suite("Shim client transport's service config")
struct ShimClientServiceConfigTests {
  func transport(_ configs: [MethodConfig]) -> ShimClientTransport {
    var serviceConfig = ServiceConfig()
    serviceConfig.methodConfig = configs
    return ShimClientTransport(target: "127.0.0.1:1", serviceConfig: serviceConfig)
  }

  func config(service: String, method: String, timeout: Duration) -> MethodConfig {
    var config = MethodConfig(names: [MethodConfig.Name(service: service, method: method)])
    config.timeout = timeout
    return config
  }

  @Test("a method's own entry wins over its service's, which wins over the default")
  func mostSpecificEntryWins() {
    let transport = self.transport([
      self.config(service: "", method: "", timeout: .seconds(1)),
      self.config(service: "maas.echo.v1.Echo", method: "", timeout: .seconds(2)),
      self.config(service: "maas.echo.v1.Echo", method: "Get", timeout: .seconds(3)),
    ])
    let echo = "maas.echo.v1.Echo"
    #expect(transport.config(forMethod: MethodDescriptor(fullyQualifiedService: echo, method: "Get"))?.timeout == .seconds(3))
    #expect(transport.config(forMethod: MethodDescriptor(fullyQualifiedService: echo, method: "Expand"))?.timeout == .seconds(2))
    #expect(transport.config(forMethod: MethodDescriptor(fullyQualifiedService: "other.Service", method: "X"))?.timeout == .seconds(1))
  }

  @Test("a method no entry covers has no config")
  func uncoveredMethod() {
    let transport = self.transport([self.config(service: "maas.echo.v1.Echo", method: "Get", timeout: .seconds(3))])
    #expect(transport.config(forMethod: MethodDescriptor(fullyQualifiedService: "maas.echo.v1.Echo", method: "Expand")) == nil)
  }

  @Test("a target that resolves to several servers spreads calls over all of them, not only the first")
  func callsSpreadOverEveryAddress() async throws {
    let first = CancellationLog()
    let second = CancellationLog()
    try await withLoopbackServer(services: [EchoService(waiting: first)]) { _, one in
      try await withLoopbackServer(services: [EchoService(waiting: second)]) { _, two in
        // grpc's ipv4 resolver takes a list, as DNS answers a headless Service's pods.
        let target = "ipv4:127.0.0.1:\(one.port),127.0.0.1:\(two.port)"
        try await withGRPCClient(transport: ShimClientTransport(target: target)) { client in
          let echo = Maas_Echo_V1_Echo.Client(wrapping: client)
          for _ in 0..<40 {
            // x-delay-ms makes each server count the call in its `waiting` log.
            _ = try await echo.get(.with { $0.text = "which" }, metadata: ["x-delay-ms": "0"])
          }
        }
      }
    }
    #expect(first.recorded + second.recorded == 40)
    #expect(first.recorded >= 10 && second.recorded >= 10, "first \(first.recorded), second \(second.recorded)")
  }
}
