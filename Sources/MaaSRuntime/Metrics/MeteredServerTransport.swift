import GRPCCore
import Synchronization

/// A server transport that counts and times every call its base transport carries, whatever
/// the router then does with it: calls refused by an interceptor (an unauthenticated one at the
/// gateway) and calls to methods nobody serves are counted too, with the status they got.
///
/// Metering at the transport rather than with a `ServerInterceptor`: GRPCCore's router keeps one
/// interceptor pipeline per method and a service that registers its own (the gateway's
/// `GuardedService`) would replace a server-wide one, or be replaced by it.
struct MeteredServerTransport<Base: ServerTransport>: ServerTransport {
  typealias Bytes = Base.Bytes

  let base: Base
  /// nil: calls pass straight through, uncounted.
  let metrics: ServerMetrics?

  func configure(context: GRPCServerContext) {
    self.base.configure(context: context)
  }

  func listen(
    streamHandler: @escaping @Sendable (RPCStream<Inbound, Outbound>, ServerContext) async -> Void
  ) async throws {
    guard let metrics = self.metrics else { return try await self.base.listen(streamHandler: streamHandler) }
    try await self.base.listen { stream, context in
      let outbound = StatusWatchingWriter(base: stream.outbound, meter: metrics.start(stream.descriptor))
      await streamHandler(
        RPCStream(descriptor: stream.descriptor, inbound: stream.inbound, outbound: RPCWriter.Closable(wrapping: outbound)),
        context)
      // A call whose handler ended without sending a status (its stream broke, or it was cancelled).
      outbound.finishMeter(code: nil)
    }
  }

  func beginGracefulShutdown() {
    self.base.beginGracefulShutdown()
  }
}

/// Passes a call's response parts on, and records the call's end with the status it sends, before
/// passing that status on: so a caller that has its answer never finds the call still counted in
/// flight, and the duration ends where the contract's does.
private final class StatusWatchingWriter<Bytes: GRPCContiguousBytes & Sendable>: ClosableRPCWriterProtocol, Sendable {
  let base: RPCWriter<RPCResponsePart<Bytes>>.Closable
  /// Taken by the first end recorded: the status, or the handler's return without one.
  private let meter: Mutex<CallMeter?>

  init(base: RPCWriter<RPCResponsePart<Bytes>>.Closable, meter: CallMeter) {
    self.base = base
    self.meter = Mutex(meter)
  }

  /// Records the call's end, once.
  func finishMeter(code: Status.Code?) {
    self.meter.withLock { meter in
      defer { meter = nil }
      return meter
    }?.finish(code: code)
  }

  func write(_ element: RPCResponsePart<Bytes>) async throws {
    if case .status(let status, _) = element { self.finishMeter(code: status.code) }
    try await self.base.write(element)
  }

  func write(contentsOf elements: some Sequence<RPCResponsePart<Bytes>>) async throws {
    for element in elements {
      if case .status(let status, _) = element { self.finishMeter(code: status.code) }
    }
    try await self.base.write(contentsOf: elements)
  }

  func finish() async {
    await self.base.finish()
  }

  func finish(throwing error: any Error) async {
    await self.base.finish(throwing: error)
  }
}
