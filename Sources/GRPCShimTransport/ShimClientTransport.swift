internal import CGRPCShim
public import GRPCCore
import Synchronization

/// A GRPCCore client transport over grpc C++, through CGRPCShim.
///
/// ```swift
/// let transport = ShimClientTransport(target: "127.0.0.1:50051")
/// try await withGRPCClient(transport: transport) { client in
///   let echo = Maas_Echo_V1_Echo.Client(wrapping: client)
///   ...
/// }
/// ```
///
/// One grpc channel: grpc C++ connects, reconnects with backoff, multiplexes calls over HTTP/2 and
/// fails calls fast with UNAVAILABLE while the server cannot be reached.
public final class ShimClientTransport: ClientTransport, Sendable {
  public typealias Bytes = [UInt8]

  public let target: String
  public let retryThrottle: RetryThrottle?

  private let channel: ChannelHandle
  private let serviceConfig: ServiceConfig
  private let state = Mutex(State())

  private struct State {
    var closing = false
    var nextID = 0
    var open: [Int: ClientCall] = [:]
    var connectFinished: CheckedContinuation<Void, Never>?
    var connectEnded = false
  }

  /// - Parameters:
  ///   - target: What grpc C++ resolves: "host:port", "dns:///host:port", "unix:/path".
  ///   - serviceConfig: Per-method configuration (timeouts, retries) applied by GRPCCore.
  public init(
    target: String,
    serviceConfig: ServiceConfig = ServiceConfig(),
    configuration: ShimTransportConfiguration = .defaults
  ) {
    self.target = target
    self.serviceConfig = serviceConfig
    self.retryThrottle = serviceConfig.retryThrottling.map { RetryThrottle(policy: $0) }
    var options = configuration.shimOptions
    self.channel = ChannelHandle(maas_grpc_channel_create(target, &options))
  }

  public func connect() async throws {
    // grpc C++ connects on its own; this starts it early and then keeps the transport open
    // until a graceful shutdown has drained every call or the task is cancelled.
    _ = maas_grpc_channel_state(self.channel.pointer, 1)
    await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        let finishNow = self.state.withLock { state in
          if state.connectEnded || (state.closing && state.open.isEmpty) {
            state.connectEnded = true
            return true
          }
          state.connectFinished = continuation
          return false
        }
        if finishNow { continuation.resume() }
      }
    } onCancel: {
      let (calls, continuation) = self.state.withLock { state in
        state.closing = true
        state.connectEnded = true
        defer { state.connectFinished = nil }
        return (Array(state.open.values), state.connectFinished)
      }
      for call in calls { call.cancel() }
      continuation?.resume()
    }
  }

  public func beginGracefulShutdown() {
    let continuation = self.state.withLock { state in
      state.closing = true
      guard state.open.isEmpty else { return nil as CheckedContinuation<Void, Never>? }
      state.connectEnded = true
      defer { state.connectFinished = nil }
      return state.connectFinished
    }
    continuation?.resume()
  }

  public func withStream<T: Sendable>(
    descriptor: MethodDescriptor,
    options: CallOptions,
    _ closure: (_ stream: RPCStream<Inbound, Outbound>, _ context: ClientContext) async throws -> T
  ) async throws -> T {
    try await self.withCall(descriptor: descriptor) { call in
      let stream = RPCStream(
        descriptor: descriptor,
        inbound: RPCAsyncSequence(wrapping: InboundSequence(buffer: call.inbound)),
        outbound: RPCWriter.Closable(wrapping: ClientCallWriter(call: call))
      )
      return try await closure(stream, ClientContext(descriptor: descriptor, remotePeer: self.target, localPeer: ""))
    }
  }

  /// Runs `body` with a new call of `descriptor`, counted among the open ones (a graceful
  /// shutdown waits for it) until `body` returns; a cancelled caller cancels the RPC, which the
  /// server sees as a cancellation. Throws UNAVAILABLE once the transport is shutting down.
  func withCall<T: Sendable>(
    descriptor: MethodDescriptor, _ body: (ClientCall) async throws -> T
  ) async throws -> T {
    let call = ClientCall(channel: self.channel, descriptor: descriptor)
    let id: Int? = self.state.withLock { state in
      guard !state.closing else { return nil }
      defer { state.nextID += 1 }
      state.open[state.nextID] = call
      return state.nextID
    }
    guard let id else {
      // UNAVAILABLE, as grpc-swift-nio-transport's closed channel answers: nothing was sent, so
      // nothing was decided. (FAILED_PRECONDITION, as this said before, is what a service answers
      // about its own state; the quota client took it for "the reservation is gone".)
      throw RPCError(code: .unavailable, message: "The client transport is closed.")
    }
    defer {
      call.release()
      self.streamClosed(id: id)
    }
    return try await withTaskCancellationHandler {
      try await body(call)
    } onCancel: {
      call.cancel()
    }
  }

  public func config(forMethod descriptor: MethodDescriptor) -> MethodConfig? {
    // gRPC's service-config lookup: the method's own entry, else its service's, else the default
    // (an entry with an empty service name).
    let service = descriptor.service.fullyQualifiedService
    let candidates: [(String, String)] = [(service, descriptor.method), (service, ""), ("", "")]
    for (wantedService, wantedMethod) in candidates {
      let match = self.serviceConfig.methodConfig.first { config in
        config.names.contains { $0.service == wantedService && $0.method == wantedMethod }
      }
      if let match { return match }
    }
    return nil
  }

  private func streamClosed(id: Int) {
    let continuation = self.state.withLock { state in
      state.open.removeValue(forKey: id)
      guard state.closing, state.open.isEmpty, !state.connectEnded else {
        return nil as CheckedContinuation<Void, Never>?
      }
      state.connectEnded = true
      defer { state.connectFinished = nil }
      return state.connectFinished
    }
    continuation?.resume()
  }
}

/// Owns a grpc channel; calls still open keep grpc's side of it alive after this is freed.
final class ChannelHandle: Sendable {
  nonisolated(unsafe) let pointer: OpaquePointer

  init(_ pointer: OpaquePointer?) {
    // maas_grpc_channel_create does not fail: an unreachable target fails its calls instead.
    self.pointer = pointer!
  }

  deinit {
    maas_grpc_channel_destroy(self.pointer)
  }
}
