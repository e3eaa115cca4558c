public import GRPCCore
public import Logging
public import MaaSContracts
import Foundation
public import GRPCShimTransport
import SwiftProtobuf

/// `maas.gateway.v1.Gateway`: the public API. Each handler builds the internal request with
/// `tenant_id` taken from the authenticated call (`GatewayCall`), never from the public request
/// (public requests have no such field, and tenant fields inside nested resources are cleared),
/// and forwards it with the caller's remaining deadline. Answers and errors of the services
/// behind pass through unchanged.
///
/// Authentication and the API-call budget are `TenantAuthInterceptor`'s: serve this through
/// `GatewayService.publicService(...)`, which installs it. Without it every call is
/// UNAUTHENTICATED.
public struct GatewayRPCService: Maas_Gateway_V1_Gateway.SimpleServiceProtocol {
  let registry: any Maas_Registry_V1_ModelRegistry.ClientProtocol
  /// The same connection as `registry`, for calls whose answers pass through undecoded.
  let registryChannel: any UnaryChannel
  let quota: any Maas_Quota_V1_Quota.ClientProtocol
  let upstream: UpstreamPolicy
  let clock: any GatewayClock
  let logger: Logger

  /// The deployment calls, which arrive with the scheduler's deployment controller: they
  /// authenticate, then answer UNIMPLEMENTED without spending the API-call budget.
  public static let unimplementedMethods: Set<String> = [
    "DeployModel", "GetDeployment", "ListDeployments", "UpdateDeployment", "PromoteDeployment", "RollbackDeployment",
    "ScaleDeployment", "DeleteDeployment", "WatchDeployment",
  ]

  /// The calls that only read the registry: each is forwarded while its API call is being
  /// charged (see `TenantAuthInterceptor`), since forwarding one changes nothing.
  public static let registryReadMethods: Set<String> = [
    "ListModels", "GetModel", "ListModelVersions", "GetModelVersion", "GetModelAlias",
  ]

  /// - Parameters:
  ///   - registry: the client of the model registry.
  ///   - registryChannel: where the list calls go, answers passed through undecoded: in the
  ///     service, `registry`'s transport called straight through (`ShimClientTransport.unaryCall`),
  ///     skipping GRPCCore's client executor.
  public init(
    registry: GRPCClient<some ClientTransport>, registryChannel: any UnaryChannel,
    quota: any Maas_Quota_V1_Quota.ClientProtocol,
    upstream: UpstreamPolicy = UpstreamPolicy(), clock: any GatewayClock = SystemGatewayClock(), logger: Logger
  ) {
    self.registry = Maas_Registry_V1_ModelRegistry.Client(wrapping: registry)
    self.registryChannel = registryChannel
    self.quota = quota
    self.upstream = upstream
    self.clock = clock
    self.logger = logger
  }

  /// Forwards to the registry as the call's tenant, within the call's deadline.
  func toRegistry<Response: Sendable>(
    _ body: (_ tenantID: String, _ registry: any Maas_Registry_V1_ModelRegistry.ClientProtocol, CallTimeout) async throws -> Response
  ) async throws -> Response {
    let (tenant, call) = try GatewayCall.requireTenant()
    return try await self.upstream.call("registry service", deadline: call.deadline, logger: self.logger) { timeout in
      try await body(tenant.tenantID, self.registry, timeout)
    }
  }

  /// As `toRegistry`, on the raw channel.
  func toRegistryChannel<Response: Sendable>(
    _ body: (_ tenantID: String, _ channel: any UnaryChannel, CallTimeout) async throws -> Response
  ) async throws -> Response {
    let (tenant, call) = try GatewayCall.requireTenant()
    return try await self.upstream.call("registry service", deadline: call.deadline, logger: self.logger) { timeout in
      try await body(tenant.tenantID, self.registryChannel, timeout)
    }
  }

  // MARK: - Models

  /// Served as `GatewayRoutes` registers it, the registry's answer passes through undecoded
  /// (`forwardListModels`); this decodes it for callers in code.
  public func listModels(request: Maas_Gateway_V1_ListModelsRequest, context: ServerContext) async throws
    -> Maas_Gateway_V1_ListModelsResponse
  {
    try await self.forwardListModels(request).decoded()
  }

  public func getModel(request: Maas_Gateway_V1_GetModelRequest, context: ServerContext) async throws -> Maas_Registry_V1_Model {
    try await toRegistry { tenantID, registry, timeout in
      try await registry.getModel(
        .with {
          $0.tenantID = tenantID
          if request.hasModel { $0.model = request.model }
        }, metadata: timeout.metadata)
    }
  }

  public func createModel(request: Maas_Gateway_V1_CreateModelRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_Model
  {
    try await toRegistry { tenantID, registry, timeout in
      try await registry.createModel(
        .with {
          $0.tenantID = tenantID
          $0.name = request.name
          $0.description_p = request.description_p
          $0.labels = request.labels
          $0.idempotencyKey = ForwardedKey.forMutation(request.idempotencyKey)
        }, metadata: timeout.metadata)
    }
  }

  public func updateModel(request: Maas_Gateway_V1_UpdateModelRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_Model
  {
    try await toRegistry { tenantID, registry, timeout in
      try await registry.updateModel(
        .with {
          $0.tenantID = tenantID
          if request.hasModel { $0.model = request.model }
          if request.hasUpdate {
            // Output-only fields of the resource, the owning tenant among them, are not the
            // caller's to set.
            var update = request.update
            update.tenantID = ""
            $0.update = update
          }
          if request.hasUpdateMask { $0.updateMask = request.updateMask }
          $0.idempotencyKey = ForwardedKey.forMutation(request.idempotencyKey)
        }, metadata: timeout.metadata)
    }
  }

  public func deleteModel(request: Maas_Gateway_V1_DeleteModelRequest, context: ServerContext) async throws
    -> Maas_Gateway_V1_DeleteModelResponse
  {
    _ = try await toRegistry { tenantID, registry, timeout in
      try await registry.deleteModel(
        .with {
          $0.tenantID = tenantID
          if request.hasModel { $0.model = request.model }
          $0.force = request.force
          $0.idempotencyKey = ForwardedKey.forMutation(request.idempotencyKey)
        }, metadata: timeout.metadata)
    }
    return Maas_Gateway_V1_DeleteModelResponse()
  }

  // MARK: - Versions

  public func createModelVersion(request: Maas_Gateway_V1_CreateModelVersionRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_ModelVersion
  {
    try await toRegistry { tenantID, registry, timeout in
      try await registry.createModelVersion(
        .with {
          $0.tenantID = tenantID
          if request.hasModel { $0.model = request.model }
          $0.version = request.version
          if request.hasArtifact { $0.artifact = request.artifact }
          $0.labels = request.labels
          $0.idempotencyKey = ForwardedKey.forMutation(request.idempotencyKey)
        }, metadata: timeout.metadata)
    }
  }

  public func getModelVersion(request: Maas_Gateway_V1_GetModelVersionRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_ModelVersion
  {
    try await toRegistry { tenantID, registry, timeout in
      try await registry.getModelVersion(
        .with {
          $0.tenantID = tenantID
          if request.hasModel { $0.model = request.model }
          if request.hasVersion { $0.version = request.version }
        }, metadata: timeout.metadata)
    }
  }

  /// Passed through undecoded when served as `GatewayRoutes` registers it, as `listModels`.
  public func listModelVersions(request: Maas_Gateway_V1_ListModelVersionsRequest, context: ServerContext) async throws
    -> Maas_Gateway_V1_ListModelVersionsResponse
  {
    try await self.forwardListModelVersions(request).decoded()
  }

  public func deleteModelVersion(request: Maas_Gateway_V1_DeleteModelVersionRequest, context: ServerContext) async throws
    -> Maas_Gateway_V1_DeleteModelVersionResponse
  {
    _ = try await toRegistry { tenantID, registry, timeout in
      try await registry.deleteModelVersion(
        .with {
          $0.tenantID = tenantID
          if request.hasModel { $0.model = request.model }
          if request.hasVersion { $0.version = request.version }
          $0.idempotencyKey = ForwardedKey.forMutation(request.idempotencyKey)
        }, metadata: timeout.metadata)
    }
    return Maas_Gateway_V1_DeleteModelVersionResponse()
  }

  // MARK: - Aliases

  public func setModelAlias(request: Maas_Gateway_V1_SetModelAliasRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_Alias
  {
    try await toRegistry { tenantID, registry, timeout in
      try await registry.setModelAlias(
        .with {
          $0.tenantID = tenantID
          if request.hasModel { $0.model = request.model }
          $0.alias = request.alias
          $0.version = request.version
          $0.idempotencyKey = ForwardedKey.forMutation(request.idempotencyKey)
        }, metadata: timeout.metadata)
    }
  }

  public func getModelAlias(request: Maas_Gateway_V1_GetModelAliasRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_Alias
  {
    try await toRegistry { tenantID, registry, timeout in
      try await registry.getModelAlias(
        .with {
          $0.tenantID = tenantID
          if request.hasModel { $0.model = request.model }
          $0.alias = request.alias
        }, metadata: timeout.metadata)
    }
  }

  public func deleteModelAlias(request: Maas_Gateway_V1_DeleteModelAliasRequest, context: ServerContext) async throws
    -> Maas_Gateway_V1_DeleteModelAliasResponse
  {
    _ = try await toRegistry { tenantID, registry, timeout in
      try await registry.deleteModelAlias(
        .with {
          $0.tenantID = tenantID
          if request.hasModel { $0.model = request.model }
          $0.alias = request.alias
          $0.idempotencyKey = ForwardedKey.forMutation(request.idempotencyKey)
        }, metadata: timeout.metadata)
    }
    return Maas_Gateway_V1_DeleteModelAliasResponse()
  }

  // MARK: - Quota and usage

  public func getQuota(request: Maas_Gateway_V1_GetQuotaRequest, context: ServerContext) async throws
    -> Maas_Gateway_V1_GetQuotaResponse
  {
    let (tenant, call) = try GatewayCall.requireTenant()
    let answer = try await self.upstream.call("quota service", deadline: call.deadline, logger: self.logger) { timeout in
      try await self.quota.getQuota(.with { $0.tenantID = tenant.tenantID }, metadata: timeout.metadata)
    }
    return .with { $0.resources = answer.resources }
  }

  public func getUsage(request: Maas_Gateway_V1_GetUsageRequest, context: ServerContext) async throws
    -> Maas_Quota_V1_UsageReport
  {
    let (tenant, call) = try GatewayCall.requireTenant()
    let now = self.clock.now()
    let start = request.hasPeriodStart ? request.periodStart : Google_Protobuf_Timestamp(date: UsagePeriod.monthStart(containing: now))
    let end = request.hasPeriodEnd ? request.periodEnd : Google_Protobuf_Timestamp(date: now)
    return try await self.upstream.call("quota service", deadline: call.deadline, logger: self.logger) { timeout in
      try await self.quota.getUsageReport(
        .with {
          $0.tenantID = tenant.tenantID
          $0.periodStart = start
          $0.periodEnd = end
        }, metadata: timeout.metadata)
    }
  }

  // MARK: - Deployments (not yet served)

  public func deployModel(request: Maas_Gateway_V1_DeployModelRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_Deployment
  {
    throw try Self.unimplemented(context)
  }

  public func getDeployment(request: Maas_Gateway_V1_GetDeploymentRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_Deployment
  {
    throw try Self.unimplemented(context)
  }

  public func listDeployments(request: Maas_Gateway_V1_ListDeploymentsRequest, context: ServerContext) async throws
    -> Maas_Gateway_V1_ListDeploymentsResponse
  {
    throw try Self.unimplemented(context)
  }

  public func updateDeployment(request: Maas_Gateway_V1_UpdateDeploymentRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_Deployment
  {
    throw try Self.unimplemented(context)
  }

  public func promoteDeployment(request: Maas_Gateway_V1_PromoteDeploymentRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_Deployment
  {
    throw try Self.unimplemented(context)
  }

  public func rollbackDeployment(request: Maas_Gateway_V1_RollbackDeploymentRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_Deployment
  {
    throw try Self.unimplemented(context)
  }

  public func scaleDeployment(request: Maas_Gateway_V1_ScaleDeploymentRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_Deployment
  {
    throw try Self.unimplemented(context)
  }

  public func deleteDeployment(request: Maas_Gateway_V1_DeleteDeploymentRequest, context: ServerContext) async throws
    -> Maas_Gateway_V1_DeleteDeploymentResponse
  {
    throw try Self.unimplemented(context)
  }

  public func watchDeployment(
    request: Maas_Gateway_V1_WatchDeploymentRequest, response: RPCWriter<Maas_Scheduler_V1_DeploymentEvent>,
    context: ServerContext
  ) async throws {
    throw try Self.unimplemented(context)
  }

  /// UNIMPLEMENTED, for an authenticated caller (an anonymous one is UNAUTHENTICATED first).
  private static func unimplemented(_ context: ServerContext) throws -> RPCError {
    _ = try GatewayCall.requireTenant()
    return RPCError(
      code: .unimplemented,
      message: "\(context.descriptor.method) is not available yet: deployments arrive with the scheduler's deployment controller")
  }
}

/// Default usage periods.
enum UsagePeriod {
  /// 00:00 UTC on the first day of the month containing `date`.
  static func monthStart(containing date: Date) -> Date {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    return calendar.date(from: calendar.dateComponents([.year, .month], from: date))!
  }
}
