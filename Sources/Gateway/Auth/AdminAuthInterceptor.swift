public import GRPCCore
public import Logging

/// Guards the `Admin` service: the admin credential (`MAAS_GATEWAY_ADMIN_TOKEN`, compared in
/// constant time) passes; a valid tenant credential is PERMISSION_DENIED; anything else,
/// including any credential when no admin token is configured, is UNAUTHENTICATED.
public struct AdminAuthInterceptor: ServerInterceptor {
  let adminToken: String?
  let authenticator: Authenticator
  let logger: Logger

  /// - Parameter adminToken: nil refuses every call (the Admin service is then closed).
  public init(adminToken: String?, authenticator: Authenticator, logger: Logger) {
    self.adminToken = adminToken
    self.authenticator = authenticator
    self.logger = logger
  }

  public func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    let deadline = GatewayCall.deadline(from: request.metadata)
    let values = request.metadata[stringValues: "authorization"].map { $0 }
    guard !values.isEmpty else {
      throw RPCError(code: .unauthenticated, message: "missing credential: the Admin service needs \"authorization: Bearer <admin token>\"")
    }
    guard values.count == 1, let bearer = BearerCredential.bearerText(values[0]) else {
      throw RPCError(code: .unauthenticated, message: "malformed credential: authorization must be \"Bearer <admin token>\"")
    }
    if let adminToken, ConstantTime.equalSecrets(bearer, adminToken) {
      let call = GatewayCall(principal: .operator, deadline: deadline)
      let response = try await GatewayCall.$current.withValue(call) { try await next(request, context) }
      return response.producing(within: call)
    }
    // Not the admin token: a tenant's own valid credential is told it lacks the right, anything
    // else that it is not authenticated.
    if case .success(let credential) = BearerCredential.parse(bearer: bearer),
      (try? await self.authenticator.authenticate(credential, recordUse: false)) != nil
    {
      throw RPCError(code: .permissionDenied, message: "the Admin service needs the admin credential, not a tenant's")
    }
    throw RPCError(code: .unauthenticated, message: "invalid admin credential")
  }
}
