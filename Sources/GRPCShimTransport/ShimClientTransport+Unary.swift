public import GRPCCore

extension ShimClientTransport {
  /// One unary call straight through grpc C++, for a service's own hops on its hot path: the
  /// request and the half-close leave in one grpc batch, and the answer is taken whole at
  /// on_done, as over `GRPCClient.unary` on this transport. What this skips is GRPCCore's client
  /// executor: a task group, a child task that writes the request, the response's sequences. No
  /// client interceptors and no retries run; the deadline travels as `CallTimeout` metadata.
  ///
  /// - Parameters:
  ///   - request: the request message, encoded.
  ///   - metadata: the request metadata (e.g. `CallTimeout(...).metadata`).
  ///   - descriptor: the method; called as unary whatever its descriptor's type says.
  /// - Returns: the response message, encoded.
  /// - Throws: `RPCError`: the server's status and trailers when not OK (CANCELLED when the
  ///   calling task is cancelled, DEADLINE_EXCEEDED past the deadline, UNAVAILABLE when the
  ///   server cannot be reached); UNIMPLEMENTED when an OK answer holds no message or several, as
  ///   GRPCCore's client says; UNAVAILABLE once the transport is shutting down.
  public func unaryCall(_ request: [UInt8], metadata: Metadata, descriptor: MethodDescriptor) async throws -> [UInt8] {
    let unary = MethodDescriptor(service: descriptor.service, method: descriptor.method, type: .unary)
    return try await self.withCall(descriptor: unary) { call in
      try call.start(metadata: metadata)
      try await call.write(request)
      await call.closeWrites()
      return try await Self.answer(of: call)
    }
  }

  /// The one message of an answer, or the error its status (or its shape) makes.
  private static func answer(of call: ClientCall) async throws -> [UInt8] {
    var messages: [[UInt8]] = []
    do {
      while let part = try await call.inbound.next() {
        switch part {
        case .metadata:
          continue
        case .message(let message):
          messages.append(message)
        case .status(let status, let trailers):
          guard status.code == .ok else { throw RPCError(status: status, metadata: trailers)! }
          guard messages.count == 1 else {
            throw RPCError(
              code: .unimplemented,
              message: messages.isEmpty
                ? "No messages received, exactly one was expected."
                : "Multiple messages received, but only one is expected.")
          }
          return messages[0]
        }
      }
    } catch is CancellationError {
      throw RPCError(code: .cancelled, message: "The RPC was cancelled.")
    }
    // The buffer ends without a status only for a reader that was cancelled (the call itself is
    // cancelled by `unaryCall`'s handler).
    throw RPCError(code: .cancelled, message: "The RPC was cancelled.")
  }
}
