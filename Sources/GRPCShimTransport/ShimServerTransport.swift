internal import CGRPCShim
public import GRPCCore
import Synchronization

/// A GRPCCore server transport over grpc C++, through CGRPCShim.
///
/// ```swift
/// let transport = ShimServerTransport(host: "0.0.0.0", port: 50051)
/// let server = GRPCServer(transport: transport, services: [EchoService()])
/// try await server.serve()
/// ```
///
/// grpc C++ owns the sockets, HTTP/2 and its threads; every accepted call becomes an `RPCStream`
/// handled on a task of its own, started straight from grpc's thread (no hop through a queue
/// of calls), and for a method with one request message only once that message has arrived.
/// `beginGracefulShutdown` stops accepting calls and lets in-flight ones finish within the
/// configured grace period; cancelling the task running `listen` cancels them.
public final class ShimServerTransport: ServerTransport, Sendable {
  public typealias Bytes = [UInt8]

  public let host: String
  public let requestedPort: Int
  public let configuration: ShimTransportConfiguration

  private let state = Mutex(State.idle)
  private let bound = Promise<Int>()
  private let methodTypes = Mutex<[String: MethodDescriptor.RPCType]>([:])

  private enum State {
    case idle
    case listening(ShimPointer, ServerContextBox)
    case shutdownRequested
    case stopped
  }

  /// - Parameters:
  ///   - host: The address to bind ("0.0.0.0", "127.0.0.1", "[::]").
  ///   - port: The port; 0 picks a free one, reported by `listeningPort()`.
  public init(host: String, port: Int, configuration: ShimTransportConfiguration = .defaults) {
    self.host = host
    self.requestedPort = port
    self.configuration = configuration
  }

  /// The port the server is bound to, once `listen` has bound it. Throws if binding failed.
  public func listeningPort() async throws -> Int {
    try await self.bound.value
  }

  public func configure(context: GRPCServerContext) {
    // The methods' kinds let a unary response leave with its status in one grpc batch.
    self.methodTypes.withLock { types in
      for method in context.methods {
        if let type = method.type { types["/" + method.fullyQualifiedMethod] = type }
      }
    }
  }

  public func listen(
    streamHandler: @escaping @Sendable (
      _ stream: RPCStream<Inbound, Outbound>,
      _ context: ServerContext
    ) async -> Void
  ) async throws {
    let stopped = Promise<Void>()
    let address = self.host.contains(":") && !self.host.hasPrefix("[")
      ? "[\(self.host)]:\(self.requestedPort)" : "\(self.host):\(self.requestedPort)"
    // The local peer names the bound port, known only once grpc has bound it; calls cannot
    // arrive before then.
    let localPeer = Mutex("")
    let box = ServerContextBox(
      stopped: stopped,
      methodTypes: self.methodTypes.withLock { $0 },
      readWindow: self.configuration.readWindow,
      handler: { call in await call.run(localPeer: localPeer.withLock { $0 }, handler: streamHandler) }
    )

    var options = self.configuration.shimOptions
    var callbacks = serverCallbacks
    var error = [CChar](repeating: 0, count: 256)
    let unmanagedBox = Unmanaged.passRetained(box)
    let server = error.withUnsafeMutableBufferPointer { errorBuffer in
      maas_grpc_server_start(
        address, &options, &callbacks, unmanagedBox.toOpaque(), errorBuffer.baseAddress,
        errorBuffer.count
      )
    }
    guard let server else {
      unmanagedBox.release()
      let message = String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
      let failure = RPCError(code: .unavailable, message: message)
      self.bound.fail(failure)
      throw failure
    }
    let port = Int(maas_grpc_server_port(server))
    localPeer.withLock { $0 = self.host.contains(":") ? "ipv6:[\(self.host)]:\(port)" : "ipv4:\(self.host):\(port)" }

    let pointer = ShimPointer(raw: server)
    let shutdownEarly = self.state.withLock { state in
      defer { state = .listening(pointer, box) }
      if case .shutdownRequested = state { return true }
      return false
    }
    self.bound.succeed(port)
    if shutdownEarly { self.beginGracefulShutdown() }

    await withTaskCancellationHandler {
      await stopped.valueIgnoringCancellation()
    } onCancel: {
      // Cancelling listen cancels every call at once (and ends a graceful shutdown's wait).
      maas_grpc_server_shutdown(pointer.raw, 0)
    }
    // on_stopped comes once grpc has completed every call; a handler's task may still be giving
    // its handle back, and the server is freed only after the last one has.
    await box.handlers.drained()
    self.state.withLock { $0 = .stopped }
    maas_grpc_server_destroy(server)
    unmanagedBox.release()
  }

  public func beginGracefulShutdown() {
    let server: ShimPointer? = self.state.withLock { state in
      switch state {
      case .idle:
        state = .shutdownRequested
        return nil
      case .listening(let server, _):
        return server
      case .shutdownRequested, .stopped:
        return nil
      }
    }
    guard let server else { return }
    let grace = self.configuration.shutdownGracePeriod.map { $0.milliseconds } ?? -1
    maas_grpc_server_shutdown(server.raw, grace)
  }
}

/// What the shim's server callbacks reach through their `server_context` pointer.
final class ServerContextBox: Sendable {
  let stopped: Promise<Void>
  let methodTypes: [String: MethodDescriptor.RPCType]
  let readWindow: Int
  let handlers = HandlerCount()
  private let handler: @Sendable (ServerCall) async -> Void

  init(
    stopped: Promise<Void>,
    methodTypes: [String: MethodDescriptor.RPCType],
    readWindow: Int,
    handler: @escaping @Sendable (ServerCall) async -> Void
  ) {
    self.stopped = stopped
    self.methodTypes = methodTypes
    self.readWindow = readWindow
    self.handler = handler
  }

  /// A new call from the shim: builds its Swift end, which starts its handler's task when the
  /// handler has something to do (see `ServerCall.startWhenReady`).
  func accept(_ handle: OpaquePointer) -> UnsafeMutableRawPointer {
    var length = 0
    let methodBytes = maas_grpc_server_call_method(handle, &length)
    let path = String(
      decoding: UnsafeRawBufferPointer(start: methodBytes, count: length), as: UTF8.self
    )
    let peerBytes = maas_grpc_server_call_peer(handle, &length)
    let peer = String(decoding: UnsafeRawBufferPointer(start: peerBytes, count: length), as: UTF8.self)

    let count = maas_grpc_server_call_metadata(handle, nil, 0)
    var metadata = withUnsafeTemporaryAllocation(
      of: maas_grpc_metadata_entry.self, capacity: max(count, 1)
    ) { buffer in
      let filled = maas_grpc_server_call_metadata(handle, buffer.baseAddress, count)
      return Metadata(shimEntries: UnsafeBufferPointer(rebasing: buffer[..<min(filled, count)]))
    }
    // GRPCCore enforces the deadline from the grpc-timeout header; grpc C++ has consumed it.
    let timeout = maas_grpc_server_call_timeout_ns(handle)
    if timeout >= 0 {
      metadata.replaceOrAddString(GRPCTimeout.header(nanoseconds: timeout), forKey: GRPCTimeout.key)
    }

    let type = self.methodTypes[path]
    let call = ServerCall(
      handle: handle,
      descriptor: MethodDescriptor(path: path, type: type),
      remotePeer: peer,
      metadata: metadata,
      singleResponse: type.map { !$0.isResponseStreaming } ?? false
    )
    let retained = Unmanaged.passRetained(call).toOpaque()
    let waitsForRequest = type.map { !$0.isRequestStreaming } ?? false
    call.startWhenReady(
      waitingForRequest: waitsForRequest, readWindow: self.readWindow
    ) { [handlers, handler] in
      guard handlers.enter() else {
        // Stopped: the call never reaches a handler, so it is answered here.
        call.reject(Status(code: .unavailable, message: "The server is shutting down."))
        return nil
      }
      return Task {
        await handler(call)
        handlers.leave()
      }
    }
    return retained
  }
}

/// The handlers' tasks still running, so that `listen` returns only after the last has ended.
final class HandlerCount: Sendable {
  private struct State {
    var running = 0
    var draining = false
    var waiter: CheckedContinuation<Void, Never>?
  }

  private let state = Mutex(State())

  /// Counts a handler in; false once draining has begun.
  func enter() -> Bool {
    self.state.withLock { state in
      guard !state.draining else { return false }
      state.running += 1
      return true
    }
  }

  func leave() {
    let waiter = self.state.withLock { state in
      state.running -= 1
      guard state.running == 0 else { return nil as CheckedContinuation<Void, Never>? }
      defer { state.waiter = nil }
      return state.waiter
    }
    waiter?.resume()
  }

  /// Stops counting new handlers in and returns once every counted one has left.
  func drained() async {
    await withCheckedContinuation { continuation in
      let now = self.state.withLock { state in
        state.draining = true
        if state.running == 0 { return true }
        state.waiter = continuation
        return false
      }
      if now { continuation.resume() }
    }
  }
}

extension MethodDescriptor {
  /// A descriptor from an HTTP/2 path, "/package.Service/Method".
  init(path: String, type: RPCType?) {
    let trimmed = path.hasPrefix("/") ? path.dropFirst() : Substring(path)
    if let slash = trimmed.lastIndex(of: "/") {
      self.init(
        service: ServiceDescriptor(fullyQualifiedService: String(trimmed[..<slash])),
        method: String(trimmed[trimmed.index(after: slash)...]),
        type: type
      )
    } else {
      self.init(service: ServiceDescriptor(fullyQualifiedService: ""), method: String(trimmed), type: type)
    }
  }
}

private func serverCall(_ context: UnsafeMutableRawPointer?) -> ServerCall {
  Unmanaged<ServerCall>.fromOpaque(context!).takeUnretainedValue()
}

/// The C callbacks: each finds its Swift object and records the event; none blocks.
private let serverCallbacks = maas_grpc_server_callbacks(
  on_call: { context, handle in
    Unmanaged<ServerContextBox>.fromOpaque(context!).takeUnretainedValue().accept(handle!)
  },
  on_message: { context, bytes, length in
    serverCall(context).receive(UnsafeBufferPointer(start: bytes, count: length))
  },
  on_read_closed: { context in
    serverCall(context).readsClosed()
  },
  on_cancel: { context in
    serverCall(context).cancelled()
  },
  on_writable: { context in
    serverCall(context).gate.signal()
  },
  on_done: { context in
    let unmanaged = Unmanaged<ServerCall>.fromOpaque(context!)
    unmanaged.takeUnretainedValue().done()
    unmanaged.release()
  },
  on_stopped: { context in
    Unmanaged<ServerContextBox>.fromOpaque(context!).takeUnretainedValue().stopped.succeed(())
  }
)
