public import GRPCCore
public import Logging
public import MaaSContracts
public import GRPCShimTransport
import Postgres

/// Guards the public `Gateway` service. For every call, in this order:
/// 1. authenticates the `authorization` metadata (UNAUTHENTICATED without a valid credential,
///    before anything else is looked at; UNAVAILABLE when credentials cannot be checked);
/// 2. spends one API_CALLS_PER_DAY unit of the credential's tenant through quota's Consume
///    (RESOURCE_EXHAUSTED, with quota's message naming the limit and the reset, when the day's
///    budget is spent; the call then does nothing else) — except for `unmeteredMethods`. Concurrent
///    calls of a tenant without idempotency keys share Consumes (`ApiCallCharger`), each still
///    admitted or refused on its own;
/// 3. runs the handler with `GatewayCall.current` set to the tenant and the caller's deadline.
///
/// A call that only reads (`overlappedMethods`) runs its handler while step 2 is at the quota
/// service rather than after it: the charge is a durable write, and waiting for it before a
/// read doubled a lone ListModels' latency. Its answer is still given only once the call is
/// admitted; a refused call answers quota's status and its handler's answer is dropped (or the
/// handler cancelled). Writes are never forwarded before they are admitted. Under load the charge
/// of a read may wait for its answer to be ready, to share its Consume with more calls
/// (`ApiCallCharger`). A tenant whose last
/// charge was refused is charged first again, so a tenant past its budget does not make the
/// registry read for calls that will be refused.
public struct TenantAuthInterceptor: ServerInterceptor {
  let authenticator: Authenticator
  let charger: ApiCallCharger
  /// Method names (e.g. "DeployModel") that are authenticated but not charged: those that
  /// answer UNIMPLEMENTED without doing anything.
  let unmeteredMethods: Set<String>
  /// Method names whose handlers only read, run while their call is being charged.
  let overlappedMethods: Set<String>
  let logger: Logger

  /// - Parameter quota: where API calls are charged (Consume); see `ApiCallCharger`.
  public init(
    authenticator: Authenticator, quota: any UnaryChannel,
    upstream: UpstreamPolicy, unmeteredMethods: Set<String> = GatewayRPCService.unimplementedMethods,
    overlappedMethods: Set<String> = GatewayRPCService.registryReadMethods, logger: Logger
  ) {
    self.init(
      authenticator: authenticator,
      charger: ApiCallCharger(quota: quota, upstream: upstream, logger: logger),
      unmeteredMethods: unmeteredMethods, overlappedMethods: overlappedMethods, logger: logger)
  }

  init(
    authenticator: Authenticator, charger: ApiCallCharger, unmeteredMethods: Set<String>, overlappedMethods: Set<String>,
    logger: Logger
  ) {
    self.authenticator = authenticator
    self.charger = charger
    self.unmeteredMethods = unmeteredMethods
    self.overlappedMethods = overlappedMethods
    self.logger = logger
  }

  public func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    let deadline = GatewayCall.deadline(from: request.metadata)
    let tenant = try await authenticateOrRefuse(self.authenticator, request.metadata, recordUse: true, logger: self.logger)

    // The idempotency key lives in the message, so the (single) request message is read here
    // and handed on to the handler unchanged.
    let (first, request) = try await request.peekingFirstMessage()
    let call = GatewayCall(principal: .tenant(tenant), deadline: deadline)
    // A request without a message fails in its handler before anything is forwarded: nothing
    // to charge for.
    guard first != nil, !self.unmeteredMethods.contains(context.descriptor.method) else {
      return try await Self.handle(request, context, call, next)
    }
    let requestKey = (first as? any IdempotentGatewayRequest)?.idempotencyKey ?? ""
    let charge = { [charger] (urgency: ChargeUrgency?) in
      try await charger.charge(
        tenant: tenant.tenantID,
        idempotencyKey: requestKey.isEmpty
          ? nil : ForwardedKey.forConsume(method: context.descriptor.fullyQualifiedMethod, requestKey: requestKey),
        deadline: deadline, urgency: urgency)
    }
    guard self.overlappedMethods.contains(context.descriptor.method), !self.charger.lastChargeRefused(tenant: tenant.tenantID)
    else {
      try await charge(nil)
      return try await Self.handle(request, context, call, next)
    }
    // If the charge throws, leaving the scope cancels the handler and drops what it answers.
    let answerReady = ChargeUrgency()
    async let answer = Self.handle(request, context, call, next, signalling: answerReady)
    try await charge(answerReady)
    return try await answer
  }

  /// `handle`, then tells the charger that the answer waits for its charge.
  private static func handle<Input: Sendable, Output: Sendable>(
    _ request: StreamingServerRequest<Input>, _ context: ServerContext, _ call: GatewayCall,
    _ next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>,
    signalling answerReady: ChargeUrgency
  ) async throws -> StreamingServerResponse<Output> {
    defer { answerReady.signal() }
    return try await Self.handle(request, context, call, next)
  }

  private static func handle<Input: Sendable, Output: Sendable>(
    _ request: StreamingServerRequest<Input>, _ context: ServerContext, _ call: GatewayCall,
    _ next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    let response = try await GatewayCall.$current.withValue(call) {
      try await next(request, context)
    }
    return response.producing(within: call)
  }
}

/// The tenant the metadata's credential proves, or the status that refuses the call.
func authenticateOrRefuse(
  _ authenticator: Authenticator, _ metadata: Metadata, recordUse: Bool, logger: Logger
) async throws(RPCError) -> AuthenticatedTenant {
  do {
    return try await authenticator.authenticate(metadata, recordUse: recordUse)
  } catch let error as AuthenticationError {
    throw RPCError(code: .unauthenticated, message: error.description)
  } catch let error as PostgresError where error.kind == .cancelled {
    throw RPCError(code: .cancelled, message: "the call was cancelled")
  } catch is CancellationError {
    throw RPCError(code: .cancelled, message: "the call was cancelled")
  } catch {
    // A credential that cannot be checked is not accepted; the client may retry.
    logger.error("cannot check credentials", metadata: ["error": "\(error)"])
    throw RPCError(code: .unavailable, message: "credentials cannot be checked right now; retry later")
  }
}

/// Requests that carry an optional `idempotency_key`.
protocol IdempotentGatewayRequest {
  var idempotencyKey: String { get }
}

extension Maas_Gateway_V1_CreateModelRequest: IdempotentGatewayRequest {}
extension Maas_Gateway_V1_UpdateModelRequest: IdempotentGatewayRequest {}
extension Maas_Gateway_V1_DeleteModelRequest: IdempotentGatewayRequest {}
extension Maas_Gateway_V1_CreateModelVersionRequest: IdempotentGatewayRequest {}
extension Maas_Gateway_V1_DeleteModelVersionRequest: IdempotentGatewayRequest {}
extension Maas_Gateway_V1_SetModelAliasRequest: IdempotentGatewayRequest {}
extension Maas_Gateway_V1_DeleteModelAliasRequest: IdempotentGatewayRequest {}
extension Maas_Gateway_V1_DeployModelRequest: IdempotentGatewayRequest {}
extension Maas_Gateway_V1_UpdateDeploymentRequest: IdempotentGatewayRequest {}
extension Maas_Gateway_V1_PromoteDeploymentRequest: IdempotentGatewayRequest {}
extension Maas_Gateway_V1_RollbackDeploymentRequest: IdempotentGatewayRequest {}
extension Maas_Gateway_V1_ScaleDeploymentRequest: IdempotentGatewayRequest {}
extension Maas_Gateway_V1_DeleteDeploymentRequest: IdempotentGatewayRequest {}
