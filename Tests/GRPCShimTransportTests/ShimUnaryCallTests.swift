import Foundation
import GRPCCore
import GRPCProtobuf
import GRPCShimTransport
import MaaSContracts
import MaaSTesting
import SwiftProtobuf
import Testing

/// `ShimClientTransport.unaryCall`: a unary call straight through the transport, answering as
/// `GRPCClient.unary` over the same transport does.
@Suite("Unary calls straight through the shim client transport", .timeLimit(.minutes(2)))
struct ShimUnaryCallTests {
  typealias Echo = Maas_Echo_V1_Echo

  /// Runs `body` with a client transport of its own to an echo server. `unaryCall` needs no
  /// `GRPCClient` running the transport; one whose body ends before its `runConnections` has
  /// started fails with "client is stopped", which a fast failing call can make happen.
  func withEcho(
    _ service: EchoService = EchoService(), _ body: (ShimClientTransport, LoopbackServer) async throws -> Void
  ) async throws {
    try await withLoopbackServer(services: [service]) { _, loopback in
      try await body(ShimClientTransport(target: "127.0.0.1:\(loopback.port)"), loopback)
    }
  }

  func get(_ transport: ShimClientTransport, _ request: Maas_Echo_V1_EchoRequest, metadata: Metadata = [:]) async throws
    -> Maas_Echo_V1_EchoResponse
  {
    let answer = try await transport.unaryCall(
      try request.serializedBytes(), metadata: metadata, descriptor: Echo.Method.Get.descriptor)
    return try Maas_Echo_V1_EchoResponse(serializedBytes: answer)
  }

  @Test("answers with the server's one message")
  func answers() async throws {
    try await withEcho { transport, _ in
      let reply = try await get(transport, .with {
        $0.text = "hello"
        $0.payload = Data([0, 1, 2, 255])
      })
      #expect(reply.text == "hello")
      #expect(reply.payload == Data([0, 1, 2, 255]))
    }
  }

  @Test("a status other than OK is thrown as an RPCError with its code, message and trailers")
  func failureStatus() async throws {
    try await withEcho { transport, _ in
      let metadata: Metadata = ["x-fail-code": "9", "x-fail-message": "not now", "x-tag": "seen"]
      let error = await #expect(throws: RPCError.self) { try await get(transport, .with { $0.text = "x" }, metadata: metadata) }
      #expect(error?.code == .failedPrecondition)
      #expect(error?.message == "not now")
      #expect(error.map { Array($0.metadata[stringValues: "x-tag"]) } == ["seen"])
    }
  }

  @Test("a deadline sent as CallTimeout ends the call with DEADLINE_EXCEEDED and cancels the server's handler")
  func deadline() async throws {
    let service = EchoService()
    try await withEcho(service) { transport, _ in
      var metadata = CallTimeout(.milliseconds(500)).metadata
      metadata.addString("1", forKey: "x-wait-for-cancel")
      let error = await #expect(throws: RPCError.self) { try await get(transport, .init(), metadata: metadata) }
      #expect(error?.code == .deadlineExceeded)
      #expect(await service.cancellations.wait(for: 1) == 1)
    }
  }

  @Test("a caller that is cancelled gets CANCELLED, and the server's handler is cancelled")
  func cancelled() async throws {
    let service = EchoService()
    try await withEcho(service) { transport, _ in
      let call = Task { try await get(transport, .init(), metadata: ["x-wait-for-cancel": "1"]) }
      #expect(await service.waiting.wait(for: 1) == 1)
      call.cancel()
      let error = await #expect(throws: RPCError.self) { try await call.value }
      #expect(error?.code == .cancelled)
      #expect(await service.cancellations.wait(for: 1) == 1)
    }
  }

  @Test("an answer of several messages is UNIMPLEMENTED, as GRPCClient says it")
  func severalMessages() async throws {
    try await withEcho { transport, _ in
      let request = try Maas_Echo_V1_EchoRequest.with { $0.text = "two words" }.serializedBytes() as [UInt8]
      let error = await #expect(throws: RPCError.self) {
        try await transport.unaryCall(request, metadata: [:], descriptor: Echo.Method.Expand.descriptor)
      }
      #expect(error?.code == .unimplemented)
      #expect(error?.message.contains("Multiple messages") == true)
    }
  }

  @Test("an OK answer without a message is UNIMPLEMENTED")
  func noMessage() async throws {
    try await withEcho { transport, _ in
      // Expand answers one message per word: none for an empty text.
      let error = await #expect(throws: RPCError.self) {
        try await transport.unaryCall([], metadata: [:], descriptor: Echo.Method.Expand.descriptor)
      }
      #expect(error?.code == .unimplemented)
      #expect(error?.message.contains("No messages") == true)
    }
  }

  @Test("a server that is not there is UNAVAILABLE")
  func unreachable() async throws {
    let transport = ShimClientTransport(target: "127.0.0.1:1")
    let error = await #expect(throws: RPCError.self) { try await get(transport, .init()) }
    #expect(error?.code == .unavailable)
  }

  @Test("a graceful shutdown of the client waits for a call under way, then refuses new ones")
  func shutdown() async throws {
    let service = EchoService()
    try await withEcho(service) { transport, _ in
      let inFlight = Task { try await get(transport, .with { $0.text = "drained" }, metadata: ["x-delay-ms": "300"]) }
      #expect(await service.waiting.wait(for: 1) == 1)
      transport.beginGracefulShutdown()
      let drained = try await inFlight.value
      #expect(drained.text == "drained")
      let error = await #expect(throws: RPCError.self) { try await get(transport, .init()) }
      #expect(error?.code == .unavailable)
      #expect(error?.message == "The client transport is closed.")
    }
  }
}
