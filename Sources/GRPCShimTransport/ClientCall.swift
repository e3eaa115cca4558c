internal import CGRPCShim
import GRPCCore
import Synchronization

/// One client RPC: the Swift end of a maas_grpc_client_call.
///
/// GRPCCore writes the request metadata first; the shim call is created then, because grpc C++
/// takes metadata and deadline at creation. From creation until on_done the shim may call back,
/// so the object is retained for exactly that span.
final class ClientCall: Sendable {
  let inbound: InboundBuffer<RPCResponsePart<[UInt8]>>
  let gate = WriteGate()

  private let channel: ChannelHandle
  private let path: String
  /// Whether the method sends exactly one request message: then the message is held back until
  /// the request side closes and both leave in one grpc batch.
  private let singleRequest: Bool
  /// Whether the method answers with exactly one message: then the response's parts are handed
  /// over together at on_done, so that the caller wakes once instead of once per part.
  private let singleResponse: Bool
  private let handle: ShimHandle
  private let state = Mutex(State())

  private struct State {
    var cancelled = false
    var created = false
    var heldMessage: [UInt8]?
  }

  /// grpc may run the initial-metadata and first-read reactions at the same time on two
  /// threads, yet GRPCCore needs the metadata first: a message that overtakes it waits here.
  /// A single response's metadata and message wait here too, for its status.
  private let arrivals = Mutex(Arrivals())

  private struct Arrivals {
    var metadata: Metadata?
    var metadataYielded = false
    var early: [[UInt8]] = []

    /// Hands over the initial metadata, then the messages that waited for it.
    mutating func yieldHeld(to inbound: InboundBuffer<RPCResponsePart<[UInt8]>>) {
      guard !self.metadataYielded, let metadata = self.metadata else { return }
      self.metadataYielded = true
      inbound.yield(.metadata(metadata))
      for message in self.early { inbound.yield(.message(message)) }
      self.early = []
    }
  }

  init(channel: ChannelHandle, descriptor: MethodDescriptor) {
    self.channel = channel
    self.path = "/" + descriptor.fullyQualifiedMethod
    self.singleRequest = descriptor.type.map { !$0.isRequestStreaming } ?? false
    self.singleResponse = descriptor.type.map { !$0.isResponseStreaming } ?? false
    let handle = ShimHandle(nil)
    self.handle = handle
    self.inbound = InboundBuffer { part in
      // A message taken by the caller makes room for the next one.
      if case .message = part {
        _ = handle.with { maas_grpc_client_call_request_reads($0, 1) }
      }
    }
  }

  // MARK: The caller's side

  /// Creates the shim call with the request metadata; the deadline travels in it as grpc-timeout.
  func start(metadata: Metadata) throws {
    var metadata = metadata
    var timeout: Int64 = -1
    if let header = metadata[stringValues: GRPCTimeout.key].first(where: { _ in true }) {
      timeout = GRPCTimeout.nanoseconds(parsing: header) ?? -1
      metadata.removeAllValues(forKey: GRPCTimeout.key)
    }
    let proceed: Bool = self.state.withLock { state in
      if state.cancelled || state.created { return false }
      state.created = true
      return true
    }
    guard proceed else { throw Self.cancelledError }

    let retained = Unmanaged.passRetained(self)
    let call = withShimMetadata(metadata) { list in
      self.path.utf8CString.withUnsafeBufferPointer { path in
        var callbacks = clientCallbacks
        return maas_grpc_client_call_create(
          self.channel.pointer, path.baseAddress, path.count - 1, list, timeout, &callbacks,
          retained.toOpaque()
        )
      }
    }
    self.handle.set(call!)
  }

  func write(_ message: [UInt8]) async throws {
    let send: Bool = self.state.withLock { state in
      if self.singleRequest && state.heldMessage == nil {
        state.heldMessage = message
        return false
      }
      return true
    }
    guard send else { return }
    try await self.send(message, last: false)
  }

  /// Half-closes the request side, sending a held message with it.
  func closeWrites() async {
    let held = self.state.withLock { state in
      defer { state.heldMessage = nil }
      return state.heldMessage
    }
    if let held {
      try? await self.send(held, last: true)
    } else {
      _ = self.handle.with { maas_grpc_client_call_close_writes($0) }
    }
  }

  func cancel() {
    let created = self.state.withLock { state in
      state.cancelled = true
      return state.created
    }
    if created {
      _ = self.handle.with { maas_grpc_client_call_cancel($0) }
    } else {
      self.inbound.finish(throwing: CancellationError())
    }
  }

  /// Gives the handle back to the shim; cancels the call if it has not finished.
  func release() {
    if let handle = self.handle.take() { maas_grpc_client_call_release(handle) }
  }

  private func send(_ message: [UInt8], last: Bool) async throws {
    let result: Int32 = self.handle.with { handle in
      message.withUnsafeBufferPointer { bytes in
        Int32(maas_grpc_client_call_write(handle, bytes.baseAddress, bytes.count, last ? 1 : 0))
      }
    } ?? Int32(MAAS_GRPC_WRITE_CLOSED)
    switch result {
    case Int32(MAAS_GRPC_WRITE_OK): return
    case Int32(MAAS_GRPC_WRITE_BLOCKED): await self.gate.waitUntilWritable()
    default:
      // The call is over; its status, not this write, says why.
      throw RPCError(code: .unavailable, message: "The RPC has already finished; the message was not sent.")
    }
  }

  private static let cancelledError = RPCError(code: .cancelled, message: "The RPC was cancelled.")

  // MARK: Events from the shim (grpc threads; never block)

  // Yields happen under `arrivals` so that the order in which they are decided is the order in
  // which the consumer sees them; a yield only appends or resumes a continuation.

  func receivedInitialMetadata(_ metadata: Metadata) {
    self.arrivals.withLock { arrivals in
      arrivals.metadata = metadata
      if !self.singleResponse { arrivals.yieldHeld(to: self.inbound) }
    }
  }

  func receive(_ bytes: UnsafeBufferPointer<UInt8>) {
    let message = Array(bytes)
    self.arrivals.withLock { arrivals in
      if arrivals.metadataYielded {
        self.inbound.yield(.message(message))
      } else {
        arrivals.early.append(message)
      }
    }
  }

  func done(status: Status, trailers: Metadata) {
    self.arrivals.withLock { arrivals in
      if arrivals.metadata != nil || !arrivals.early.isEmpty {
        // Messages without initial metadata would break GRPCCore's parsing; grpc always sends
        // headers before messages, so an empty set stands in only for the impossible.
        if arrivals.metadata == nil { arrivals.metadata = [:] }
        arrivals.yieldHeld(to: self.inbound)
      }
      self.inbound.yield(.status(status, trailers))
    }
    self.inbound.finish()
    self.gate.close()
  }
}

/// The caller's writer: request parts in order, into the shim.
struct ClientCallWriter: PartByPartWriter {
  typealias Element = RPCRequestPart<[UInt8]>

  let call: ClientCall

  func write(_ element: Element) async throws {
    switch element {
    case .metadata(let metadata):
      try self.call.start(metadata: metadata)
    case .message(let bytes):
      try await self.call.write(bytes)
    }
  }

  func finish() async {
    await self.call.closeWrites()
  }

  func finish(throwing error: any Error) async {
    // The request could not be produced: the RPC is abandoned.
    self.call.cancel()
  }
}

private func clientCall(_ context: UnsafeMutableRawPointer?) -> ClientCall {
  Unmanaged<ClientCall>.fromOpaque(context!).takeUnretainedValue()
}

/// The C callbacks: each finds its Swift object and records the event; none blocks.
private let clientCallbacks = maas_grpc_client_callbacks(
  on_initial_metadata: { context, metadata in
    clientCall(context).receivedInitialMetadata(Metadata(shimMetadata: metadata))
  },
  on_message: { context, bytes, length in
    clientCall(context).receive(UnsafeBufferPointer(start: bytes, count: length))
  },
  on_writable: { context in
    clientCall(context).gate.signal()
  },
  on_done: { context, code, message, length, trailers in
    let unmanaged = Unmanaged<ClientCall>.fromOpaque(context!)
    let text = String(decoding: UnsafeRawBufferPointer(start: message, count: length), as: UTF8.self)
    let status = Status(code: Status.Code(rawValue: Int(code)) ?? .unknown, message: text)
    unmanaged.takeUnretainedValue().done(status: status, trailers: Metadata(shimMetadata: trailers))
    unmanaged.release()
  }
)
