public import GRPCCore
import GRPCShimTransport

/// What the interceptors establish about a call before its handler runs: who is calling and
/// when the caller stops waiting. Handlers read it from `GatewayCall.current`; it is never taken
/// from the request message.
public struct GatewayCall: Sendable {
  /// Who the credential proved the caller to be.
  public enum Principal: Sendable, Hashable {
    case tenant(AuthenticatedTenant)
    /// The platform operator, with the admin credential.
    case `operator`
  }

  public var principal: Principal
  /// When the caller's deadline (`grpc-timeout`) passes; nil when it sent none.
  public var deadline: ContinuousClock.Instant?

  public init(principal: Principal, deadline: ContinuousClock.Instant?) {
    self.principal = principal
    self.deadline = deadline
  }

  /// The call in progress, set by `TenantAuthInterceptor` or `AdminAuthInterceptor` around the
  /// handler (and around a streaming handler's producer).
  @TaskLocal public static var current: GatewayCall?

  /// The authenticated tenant of the call in progress.
  ///
  /// - Throws: UNAUTHENTICATED when there is none: a handler served without its interceptor
  ///   fails closed rather than serving an anonymous caller.
  public static func requireTenant() throws -> (tenant: AuthenticatedTenant, call: GatewayCall) {
    guard let call = self.current, case .tenant(let tenant) = call.principal else {
      throw RPCError(code: .unauthenticated, message: AuthenticationError.missingCredential.description)
    }
    return (tenant, call)
  }

  /// The call in progress, which must be the operator's.
  ///
  /// - Throws: UNAUTHENTICATED when there is none (the handler was served without its
  ///   interceptor).
  public static func requireOperator() throws -> GatewayCall {
    guard let call = self.current, case .operator = call.principal else {
      throw RPCError(code: .unauthenticated, message: "the Admin service needs the admin credential")
    }
    return call
  }

  /// The deadline a call's metadata carries (`grpc-timeout`, which GRPCCore servers see in the
  /// request metadata), measured from now.
  public static func deadline(from metadata: Metadata, now: ContinuousClock.Instant = .now) -> ContinuousClock.Instant? {
    CallTimeout.duration(in: metadata).map { now.advanced(by: $0) }
  }
}
