public import GRPCCore

/// Unary calls with coders of the caller's choosing, on a client whose type the caller does not
/// need to know: a service's own hops (the gateway to the registry and quota, the registry and
/// the scheduler to quota) take either a `GRPCClient` or, on the hot path, a
/// `ShimClientTransport` called straight through (`unaryCall`), and answer alike.
public protocol UnaryChannel: Sendable {
  /// One unary call; its response message, or the status it failed with (`RPCError`).
  func unary<Request: Sendable, Response: Sendable>(
    _ request: Request, metadata: Metadata, descriptor: MethodDescriptor, serializer: some MessageSerializer<Request>,
    deserializer: some MessageDeserializer<Response>
  ) async throws -> Response
}

extension GRPCClient: UnaryChannel {
  public func unary<Request: Sendable, Response: Sendable>(
    _ request: Request, metadata: Metadata, descriptor: MethodDescriptor, serializer: some MessageSerializer<Request>,
    deserializer: some MessageDeserializer<Response>
  ) async throws -> Response {
    try await self.unary(
      request: ClientRequest(message: request, metadata: metadata), descriptor: descriptor, serializer: serializer,
      deserializer: deserializer, options: .defaults
    ) { try $0.message }
  }
}

extension ShimClientTransport: UnaryChannel {
  public func unary<Request: Sendable, Response: Sendable>(
    _ request: Request, metadata: Metadata, descriptor: MethodDescriptor, serializer: some MessageSerializer<Request>,
    deserializer: some MessageDeserializer<Response>
  ) async throws -> Response {
    let bytes: [UInt8] = try serializer.serialize(request)
    let answer = try await self.unaryCall(bytes, metadata: metadata, descriptor: descriptor)
    return try deserializer.deserialize(answer)
  }
}
