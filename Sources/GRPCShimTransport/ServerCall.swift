internal import CGRPCShim
import GRPCCore
import Synchronization

/// One accepted call: the Swift end of a maas_grpc_server_call.
///
/// The shim calls back into it from grpc threads until on_done; it is kept alive for exactly
/// that long by an unmanaged retain taken in `on_call` and dropped in `on_done`. The handle is
/// valid until `release`, which the call's task makes once its handler has returned.
final class ServerCall: Sendable {
  let descriptor: MethodDescriptor
  let remotePeer: String
  let inbound: InboundBuffer<RPCRequestPart<[UInt8]>>
  let gate = WriteGate()
  /// Whether the method's response is a single message: then it is held back and sent together
  /// with the status, in one grpc batch.
  let singleResponse: Bool

  private let handle: ShimHandle
  private let writer = Mutex(WriterState())
  private let task = Mutex(TaskState())

  private struct WriterState {
    var initialMetadata: Metadata?
    var heldMessage: [UInt8]?
    var finished = false
  }

  /// The handler's task: not started yet (and what starts it), running, and whether grpc has
  /// cancelled the call.
  private struct TaskState {
    var start: (@Sendable () -> Task<Void, Never>?)?
    var waitsForRequest = false
    var readWindow = 1
    var messages = 0
    var ended = false
    var handle: ServerContext.RPCCancellationHandle?
    var handler: Task<Void, Never>?
    var cancelled = false

    /// Whether the handler has something to do: at once for a call that streams requests; for
    /// one request message once it and the end of requests are in (or the call has ended, or a
    /// second message or a window's worth came, which the handler must see to refuse).
    var ready: Bool {
      !self.waitsForRequest || self.ended || self.messages >= min(2, self.readWindow)
    }
  }

  init(
    handle: OpaquePointer,
    descriptor: MethodDescriptor,
    remotePeer: String,
    metadata: Metadata,
    singleResponse: Bool
  ) {
    let shared = ShimHandle(handle)
    self.handle = shared
    self.descriptor = descriptor
    self.remotePeer = remotePeer
    self.singleResponse = singleResponse
    self.inbound = InboundBuffer { part in
      // A message taken by the handler makes room for the next one.
      if case .message = part {
        _ = shared.with { maas_grpc_server_call_request_reads($0, 1) }
      }
    }
    self.inbound.yield(.metadata(metadata))
  }

  // MARK: Events from the shim (grpc threads; never block)

  func receive(_ bytes: UnsafeBufferPointer<UInt8>) {
    self.inbound.yield(.message(Array(bytes)))
    self.startIfReady { $0.messages += 1 }
  }

  func readsClosed() {
    self.inbound.finish()
    self.startIfReady { $0.ended = true }
  }

  func cancelled() {
    let (handle, handler) = self.task.withLock { state in
      state.cancelled = true
      return (state.handle, state.handler)
    }
    handle?.cancel()
    handler?.cancel()
    self.inbound.finish(throwing: RPCError(code: .cancelled, message: "The RPC was cancelled."))
    self.gate.close()
    self.startIfReady { $0.ended = true }
  }

  func done() {
    self.inbound.finish(throwing: RPCError(code: .cancelled, message: "The RPC has ended."))
    self.gate.close()
    self.startIfReady { $0.ended = true }
  }

  /// Arranges for `start` to run once the handler has something to do (`TaskState.ready`).
  ///
  /// A unary handler started at on_call would wake once for its request message and again for
  /// the end of requests; started when both are in, it runs through without waiting. `start`
  /// returns the task, or nil when the call was answered without one.
  func startWhenReady(
    waitingForRequest: Bool,
    readWindow: Int,
    start: @escaping @Sendable () -> Task<Void, Never>?
  ) {
    self.startIfReady { state in
      state.start = start
      state.waitsForRequest = waitingForRequest
      state.readWindow = readWindow
    }
  }

  private func startIfReady(after event: (inout TaskState) -> Void) {
    let start: (@Sendable () -> Task<Void, Never>?)? = self.task.withLock { state in
      event(&state)
      guard state.ready, let start = state.start else { return nil }
      state.start = nil
      return start
    }
    guard let start, let handler = start() else { return }
    let cancelled = self.task.withLock { state in
      state.handler = handler
      return state.cancelled
    }
    if cancelled { handler.cancel() }
  }

  // MARK: The handler's side

  /// Runs the server's handler for this call, then gives the handle back to the shim. It runs on
  /// the task `startWhenReady` started.
  ///
  /// GRPCCore's cancellation handle only signals handlers that ask; a cancelled call (the client
  /// went away, its deadline passed, the server is stopping) also cancels the handler's task, so
  /// that whatever it awaits (a database query, a sleep) ends instead of running for nobody.
  func run(
    localPeer: String,
    handler: @escaping @Sendable (RPCStream<ServerTransportInbound, ServerTransportOutbound>, ServerContext)
      async -> Void
  ) async {
    await withServerContextRPCCancellationHandle { handle in
      let stream = RPCStream(
        descriptor: self.descriptor,
        inbound: RPCAsyncSequence(wrapping: InboundSequence(buffer: self.inbound)),
        outbound: RPCWriter.Closable(wrapping: ServerCallWriter(call: self))
      )
      let context = ServerContext(
        descriptor: self.descriptor,
        remotePeer: self.remotePeer,
        localPeer: localPeer,
        cancellation: handle
      )
      let alreadyCancelled = self.task.withLock { state in
        state.handle = handle
        return state.cancelled
      }
      if alreadyCancelled { handle.cancel() }
      await handler(stream, context)
    }
    self.release()
  }

  func setInitialMetadata(_ metadata: Metadata) {
    self.writer.withLock { $0.initialMetadata = metadata }
  }

  func write(_ message: [UInt8]) async throws {
    enum Next {
      case held
      case send(Metadata?)
      case closed
    }
    let next: Next = self.writer.withLock { state in
      if state.finished { return .closed }
      if self.singleResponse && state.heldMessage == nil {
        state.heldMessage = message
        return .held
      }
      defer { state.initialMetadata = nil }
      return .send(state.initialMetadata)
    }
    let initialMetadata: Metadata?
    switch next {
    case .held: return
    case .closed: throw Self.closedError
    case .send(let metadata): initialMetadata = metadata
    }
    let result: Int32 = self.withHandle { handle in
      message.withUnsafeBufferPointer { bytes in
        Self.withOptionalMetadata(initialMetadata) { metadata in
          Int32(maas_grpc_server_call_write(handle, metadata, bytes.baseAddress, bytes.count))
        }
      }
    } ?? Int32(MAAS_GRPC_WRITE_CLOSED)
    switch result {
    case Int32(MAAS_GRPC_WRITE_OK): return
    case Int32(MAAS_GRPC_WRITE_BLOCKED): await self.gate.waitUntilWritable()
    default: throw Self.closedError
    }
  }

  /// Sends the status (after any held message). Only the first status counts.
  func finish(status: Status, trailers: Metadata) {
    let taken: (Metadata?, [UInt8]?)? = self.writer.withLock { state in
      if state.finished { return nil }
      state.finished = true
      defer {
        state.initialMetadata = nil
        state.heldMessage = nil
      }
      return (state.initialMetadata, state.heldMessage)
    }
    guard let (initialMetadata, heldMessage) = taken else { return }
    let message = Array(status.message.utf8)
    _ = self.withHandle { handle in
      Self.withOptionalMetadata(initialMetadata) { initial in
        withShimMetadata(trailers) { trailers in
          message.withUnsafeBufferPointer { text in
            text.withMemoryRebound(to: CChar.self) { text in
              Self.withOptionalBytes(heldMessage) { last, lastCount in
                maas_grpc_server_call_finish(
                  handle, initial, last, lastCount, Int32(status.code.rawValue),
                  text.baseAddress, text.count, trailers
                )
              }
            }
          }
        }
      }
    }
  }

  /// Answers a call that no handler will see, and gives the handle back.
  func reject(_ status: Status) {
    self.finish(status: status, trailers: [:])
    self.release()
  }

  private func release() {
    if let handle = self.handle.take() { maas_grpc_server_call_release(handle) }
  }

  private func withHandle<R: Sendable>(_ body: (OpaquePointer) -> R) -> R? {
    self.handle.with(body)
  }

  private static let closedError = RPCError(
    code: .cancelled,
    message: "The stream is closed: the RPC was cancelled or has already finished."
  )

  private static func withOptionalMetadata<R>(
    _ metadata: Metadata?,
    _ body: (UnsafePointer<maas_grpc_metadata>?) -> R
  ) -> R {
    guard let metadata else { return body(nil) }
    return withShimMetadata(metadata) { body($0) }
  }

  private static func withOptionalBytes<R>(
    _ bytes: [UInt8]?,
    _ body: (UnsafePointer<UInt8>?, Int) -> R
  ) -> R {
    guard let bytes else { return body(nil, 0) }
    // An empty message still needs a non-NULL pointer to count as a message.
    if bytes.isEmpty {
      var zero: UInt8 = 0
      return body(&zero, 0)
    }
    return bytes.withUnsafeBufferPointer { body($0.baseAddress, $0.count) }
  }
}

typealias ServerTransportInbound = RPCAsyncSequence<RPCRequestPart<[UInt8]>, any Error>
typealias ServerTransportOutbound = RPCWriter<RPCResponsePart<[UInt8]>>.Closable

/// The handler's writer: response parts in order, into the shim.
struct ServerCallWriter: PartByPartWriter {
  typealias Element = RPCResponsePart<[UInt8]>

  let call: ServerCall

  func write(_ element: Element) async throws {
    switch element {
    case .metadata(let metadata):
      self.call.setInitialMetadata(metadata)
    case .message(let bytes):
      try await self.call.write(bytes)
    case .status(let status, let trailers):
      self.call.finish(status: status, trailers: trailers)
    }
  }

  func finish() async {
    // GRPCCore writes the status before finishing; this only matters if it did not.
    self.call.finish(
      status: Status(code: .unknown, message: "The server closed the stream without a status."),
      trailers: [:]
    )
  }

  func finish(throwing error: any Error) async {
    let status: Status
    let trailers: Metadata
    if let error = error as? RPCError {
      status = Status(code: Status.Code(error.code), message: error.message)
      trailers = error.metadata
    } else if error is CancellationError {
      status = Status(code: .cancelled, message: "The RPC was cancelled.")
      trailers = [:]
    } else {
      status = Status(code: .unknown, message: "The server failed to handle the RPC.")
      trailers = [:]
    }
    self.call.finish(status: status, trailers: trailers)
  }
}
