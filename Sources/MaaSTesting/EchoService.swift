public import GRPCCore
public import MaaSContracts
import Synchronization

/// The echo service that transport tests, interoperability tests and benchmarks call. Its
/// messages behave as proto/maas/echo/v1/echo.proto says; request metadata steers the rest, so
/// that a peer in any language can drive the same cases (Tests/Interop/echo_server.py follows
/// the same rules):
///
/// - every request entry whose key starts with `x-` comes back in the initial metadata and again
///   in the trailers;
/// - `x-delay-ms: N` waits N milliseconds before answering (deadline tests);
/// - `x-wait-for-cancel: 1` answers nothing and waits until the RPC is cancelled, then records it
///   in `cancellations` (cancellation tests);
/// - `x-fail-code: N` with `x-fail-message: TEXT` fails the RPC with that status after reading
///   the requests.
public struct EchoService: Maas_Echo_V1_Echo.ServiceProtocol {
  /// Counts the RPCs whose handler saw their cancellation.
  public let cancellations: CancellationLog
  /// Counts the RPCs whose handler has begun an `x-delay-ms` wait or an `x-wait-for-cancel`
  /// wait: a test waits on it to know that its call has reached the handler.
  public let waiting: CancellationLog

  public init(cancellations: CancellationLog = CancellationLog(), waiting: CancellationLog = CancellationLog()) {
    self.cancellations = cancellations
    self.waiting = waiting
  }

  public func get(
    request: ServerRequest<Maas_Echo_V1_EchoRequest>,
    context: ServerContext
  ) async throws -> ServerResponse<Maas_Echo_V1_EchoResponse> {
    let echoed = try await self.steer(request.metadata, context: context)
    return ServerResponse(
      message: .with {
        $0.text = request.message.text
        $0.payload = request.message.payload
      },
      metadata: echoed,
      trailingMetadata: echoed
    )
  }

  public func expand(
    request: ServerRequest<Maas_Echo_V1_EchoRequest>,
    context: ServerContext
  ) async throws -> StreamingServerResponse<Maas_Echo_V1_EchoResponse> {
    let echoed = try await self.steer(request.metadata, context: context)
    let words = request.message.text.isEmpty ? [] : request.message.text.split(separator: " ", omittingEmptySubsequences: false)
    return StreamingServerResponse(metadata: echoed) { writer in
      for word in words {
        try await writer.write(.with {
          $0.text = String(word)
          $0.payload = request.message.payload
        })
      }
      return echoed
    }
  }

  public func collect(
    request: StreamingServerRequest<Maas_Echo_V1_EchoRequest>,
    context: ServerContext
  ) async throws -> ServerResponse<Maas_Echo_V1_EchoResponse> {
    var texts: [String] = []
    var payload: [UInt8] = []
    for try await message in request.messages {
      texts.append(message.text)
      payload.append(contentsOf: message.payload)
    }
    let echoed = try await self.steer(request.metadata, context: context)
    return ServerResponse(
      message: .with {
        $0.text = texts.joined(separator: " ")
        $0.payload = .init(payload)
      },
      metadata: echoed,
      trailingMetadata: echoed
    )
  }

  public func update(
    request: StreamingServerRequest<Maas_Echo_V1_EchoRequest>,
    context: ServerContext
  ) async throws -> StreamingServerResponse<Maas_Echo_V1_EchoResponse> {
    let echoed = try await self.steer(request.metadata, context: context)
    return StreamingServerResponse(metadata: echoed) { writer in
      for try await message in request.messages {
        try await writer.write(message.echoed)
      }
      return echoed
    }
  }

  /// Applies the steering metadata and returns the entries to echo.
  private func steer(_ metadata: Metadata, context: ServerContext) async throws -> Metadata {
    var echoed = Metadata()
    for (key, value) in metadata where key.hasPrefix("x-") {
      switch value {
      case .string(let text): echoed.addString(text, forKey: key)
      case .binary(let bytes): echoed.addBinary(bytes, forKey: key)
      }
    }
    if let delay = metadata.firstString("x-delay-ms").flatMap(Int.init) {
      self.waiting.record()
      try await Task.sleep(for: .milliseconds(delay))
    }
    if metadata.firstString("x-wait-for-cancel") == "1" {
      self.waiting.record()
      // Sleeps until the RPC is cancelled; the cancellation ends the sleep by throwing.
      await withRPCCancellationHandler {
        try? await Task.sleep(for: .seconds(60))
      } onCancelRPC: {
        self.cancellations.record()
      }
      throw RPCError(code: .cancelled, message: "cancelled")
    }
    if let code = metadata.firstString("x-fail-code").flatMap(Int.init),
      let statusCode = Status.Code(rawValue: code), let errorCode = RPCError.Code(statusCode)
    {
      throw RPCError(code: errorCode, message: metadata.firstString("x-fail-message") ?? "", metadata: echoed)
    }
    return echoed
  }
}

extension Maas_Echo_V1_EchoRequest {
  fileprivate var echoed: Maas_Echo_V1_EchoResponse {
    .with {
      $0.text = self.text
      $0.payload = self.payload
    }
  }
}

extension Metadata {
  fileprivate func firstString(_ key: String) -> String? {
    self[stringValues: key].first { _ in true }
  }
}

/// A count that handlers bump from any task and tests wait on.
public final class CancellationLog: Sendable {
  // Named for its first use; it counts any event a test waits for.
  private let count = Mutex(0)

  public init() {}

  public var recorded: Int { self.count.withLock { $0 } }

  func record() { self.count.withLock { $0 += 1 } }

  /// Waits (polling, bounded) until at least `expected` cancellations are recorded; returns the
  /// count seen. The bound keeps a broken transport from hanging the test run.
  public func wait(for expected: Int, within limit: Duration = .seconds(10)) async -> Int {
    let deadline = ContinuousClock.now + limit
    while self.recorded < expected && ContinuousClock.now < deadline {
      try? await Task.sleep(for: .milliseconds(5))
    }
    return self.recorded
  }
}
