public import GRPCCore
public import GRPCShimTransport
public import SwiftProtobuf

extension UnaryChannel {
  /// One unary call of protobuf messages, coded with the runtime's own coders: how the services
  /// call each other's methods on their hot paths (the gateway's Consume, the quota gate of the
  /// registry and the scheduler) without a generated client.
  ///
  /// - Throws: `RPCError`: the callee's status, or INVALID_ARGUMENT for an answer that is not a
  ///   `Response`.
  public func unary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
    _ request: Request, metadata: Metadata, descriptor: MethodDescriptor, answering: Response.Type
  ) async throws -> Response {
    try await self.unary(
      request, metadata: metadata, descriptor: descriptor, serializer: ProtobufMessageSerializer<Request>(),
      deserializer: ProtobufMessageDeserializer<Response>())
  }
}
