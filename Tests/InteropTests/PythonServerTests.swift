import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import Testing

/// Python grpcio answering: a Swift client on the shim transport calls Tests/Interop/
/// echo_server.py, which follows the same metadata-steered rules as the Swift EchoService.
/// Each test starts its own Python server, so that one failure cannot leak into the next.
@Suite("A Swift client over the shim calls a Python grpcio server", .serialized)
struct PythonServerTests {
  /// Sent on every call that checks metadata: a text entry and a binary one.
  static let steering: Metadata = {
    var metadata = Metadata()
    metadata.addString("v", forKey: "x-test")
    metadata.addBinary([0x00, 0x01, 0xFE, 0xFF], forKey: "x-data-bin")
    return metadata
  }()

  /// Every call has a deadline, so that a peer that never answers fails a test, not the run.
  static let bounded: CallOptions = {
    var options = CallOptions.defaults
    options.timeout = .seconds(10)
    return options
  }()

  static let payload = [UInt8](0...255)

  @Test("A unary call echoes text and payload, and x- metadata comes back in headers and trailers")
  func unary() async throws {
    try await withPythonEchoClient { echo, _ in
      let request = Maas_Echo_V1_EchoRequest.with {
        $0.text = "héllo, wörld ✓"
        $0.payload = Data(Self.payload)
      }
      try await echo.get(request, metadata: Self.steering, options: Self.bounded) { response in
        let message = try response.message
        #expect(message.text == "héllo, wörld ✓")
        #expect(Array(message.payload) == Self.payload)
        expectEchoed(response.metadata, in: "initial metadata")
        expectEchoed(response.trailingMetadata, in: "trailers")
      }
    }
  }

  @Test("A server-streaming call gets one reply per word, with metadata both ways")
  func serverStreaming() async throws {
    try await withPythonEchoClient { echo, _ in
      let request = Maas_Echo_V1_EchoRequest.with {
        $0.text = "alpha beta  gamma"
        $0.payload = Data([7])
      }
      let (replies, trailers) = try await echo.expand(request, metadata: Self.steering, options: Self.bounded) {
        response in
        expectEchoed(response.metadata, in: "initial metadata")
        return try await collectBody(response)
      }
      #expect(replies.map(\.text) == ["alpha", "beta", "", "gamma"])
      #expect(replies.allSatisfy { $0.payload == Data([7]) })
      expectEchoed(trailers, in: "trailers")

      let none = try await echo.expand(.with { $0.text = "" }, options: Self.bounded) { response in
        try await response.messages.reduce(0) { count, _ in count + 1 }
      }
      #expect(none == 0, "an empty text gives no replies")
    }
  }

  @Test("A client-streaming call gets the texts joined and the payloads concatenated")
  func clientStreaming() async throws {
    try await withPythonEchoClient { echo, _ in
      try await echo.collect(metadata: Self.steering, options: Self.bounded) { writer in
        try await writer.write(.with { $0.text = "one"; $0.payload = Data([1]) })
        try await writer.write(.with { $0.text = "two" })
        try await writer.write(.with { $0.text = "three"; $0.payload = Data([2, 3]) })
      } onResponse: { response in
        let message = try response.message
        #expect(message.text == "one two three")
        #expect(message.payload == Data([1, 2, 3]))
        expectEchoed(response.metadata, in: "initial metadata")
        expectEchoed(response.trailingMetadata, in: "trailers")
      }

      let empty = try await echo.collect(options: Self.bounded) { _ in }
      #expect(empty.text.isEmpty && empty.payload.isEmpty, "no requests give an empty reply")
    }
  }

  @Test("A bidirectional call gets each reply before it sends the next request")
  func bidirectionalStreaming() async throws {
    try await withPythonEchoClient { echo, _ in
      // The response handler acknowledges each reply; the producer sends the next request only
      // then, so the call can only finish if the peer answers while the request stream is open.
      let (acknowledged, acknowledge) = AsyncStream.makeStream(of: Void.self)
      let sent = (0..<5).map { index in
        Maas_Echo_V1_EchoRequest.with {
          $0.text = "message \(index)"
          $0.payload = Data(repeating: UInt8(index), count: index)
        }
      }
      let (replies, trailers) = try await echo.update(metadata: Self.steering, options: Self.bounded) { writer in
        var acknowledgements = acknowledged.makeAsyncIterator()
        for request in sent {
          try await writer.write(request)
          guard await acknowledgements.next() != nil else { return }
        }
      } onResponse: { response in
        defer { acknowledge.finish() }
        expectEchoed(response.metadata, in: "initial metadata")
        var replies: [Maas_Echo_V1_EchoResponse] = []
        var trailers = Metadata()
        for try await part in response.bodyParts {
          switch part {
          case .message(let message):
            replies.append(message)
            acknowledge.yield()
          case .trailingMetadata(let metadata):
            trailers = metadata
          }
        }
        return (replies, trailers)
      }
      #expect(replies.map(\.text) == sent.map(\.text))
      #expect(replies.map(\.payload) == sent.map(\.payload))
      expectEchoed(trailers, in: "trailers")
    }
  }

  @Test("An error status crosses with its code, message and trailers")
  func errorStatus() async throws {
    try await withPythonEchoClient { echo, _ in
      var metadata = Self.steering
      metadata.addString("5", forKey: "x-fail-code")
      metadata.addString("no such echo: 42", forKey: "x-fail-message")
      let error = await #expect(throws: RPCError.self) {
        try await echo.get(.with { $0.text = "fail" }, metadata: metadata, options: Self.bounded)
      }
      #expect(error?.code == .notFound)
      #expect(error?.message == "no such echo: 42")
      if let error { expectEchoed(error.metadata, in: "the error's trailers") }

      // And on a stream, where the status comes after the (absent) replies.
      var streaming = Metadata()
      streaming.addString("9", forKey: "x-fail-code")
      streaming.addString("not now", forKey: "x-fail-message")
      let streamError = await #expect(throws: RPCError.self) {
        try await echo.expand(.with { $0.text = "a b" }, metadata: streaming, options: Self.bounded) { response in
          try await collectBody(response)
        }
      }
      #expect(streamError?.code == .failedPrecondition)
      #expect(streamError?.message == "not now")
    }
  }

  @Test("A deadline that expires gives DEADLINE_EXCEEDED")
  func deadline() async throws {
    try await withPythonEchoClient { echo, _ in
      var options = CallOptions.defaults
      options.timeout = .milliseconds(200)
      let error = await #expect(throws: RPCError.self) {
        try await echo.get(.with { $0.text = "slow" }, metadata: ["x-delay-ms": "2000"], options: options)
      }
      #expect(error?.code == .deadlineExceeded)
    }
  }

  @Test("An unknown method gives UNIMPLEMENTED")
  func unknownMethod() async throws {
    try await withPythonEchoClient { _, client in
      let nope = MethodDescriptor(fullyQualifiedService: "maas.echo.v1.Echo", method: "Nope")
      let error = await #expect(throws: RPCError.self) {
        try await client.unary(
          request: ClientRequest(message: [UInt8]()),
          descriptor: nope,
          serializer: RawBytes(),
          deserializer: RawBytes(),
          options: Self.bounded
        ) { response in try response.message }
      }
      #expect(error?.code == .unimplemented)
    }
  }

  @Test("The health service answers SERVING")
  func health() async throws {
    try await withPythonEchoClient { _, client in
      let health = Grpc_Health_V1_Health.Client(wrapping: client)
      let response = try await health.check(.with { $0.service = "" }, options: Self.bounded)
      #expect(response.status == .serving)
    }
  }
}

/// Runs `body` with a client over the shim connected to a fresh Python echo server.
private func withPythonEchoClient(
  sourceLocation: SourceLocation = #_sourceLocation,
  _ body: (Maas_Echo_V1_Echo.Client<ShimClientTransport>, GRPCClient<ShimClientTransport>) async throws -> Void
) async throws {
  try await withPythonEchoServer(sourceLocation: sourceLocation) { port in
    try await withGRPCClient(transport: ShimClientTransport(target: "127.0.0.1:\(port)")) { client in
      try await body(Maas_Echo_V1_Echo.Client(wrapping: client), client)
    }
  }
}

/// The replies of a streaming response and its trailers.
private func collectBody(
  _ response: StreamingClientResponse<Maas_Echo_V1_EchoResponse>
) async throws -> ([Maas_Echo_V1_EchoResponse], Metadata) {
  var replies: [Maas_Echo_V1_EchoResponse] = []
  var trailers = Metadata()
  for try await part in response.bodyParts {
    switch part {
    case .message(let message): replies.append(message)
    case .trailingMetadata(let metadata): trailers = metadata
    }
  }
  return (replies, trailers)
}

/// Both entries of `PythonServerTests.steering` came back once, unchanged.
private func expectEchoed(
  _ metadata: Metadata,
  in place: String,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(
    Array(metadata[stringValues: "x-test"]) == ["v"],
    "x-test in \(place): \(metadata)",
    sourceLocation: sourceLocation
  )
  #expect(
    Array(metadata[binaryValues: "x-data-bin"]) == [[0x00, 0x01, 0xFE, 0xFF]],
    "x-data-bin in \(place): \(metadata)",
    sourceLocation: sourceLocation
  )
}

/// Bytes in, bytes out: a method the client has no stub for.
private struct RawBytes: MessageSerializer, MessageDeserializer {
  func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes {
    Bytes(message)
  }

  func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
    serializedMessageBytes.withUnsafeBytes { Array($0) }
  }
}
