public import GRPCCore
public import Logging
public import MaaSContracts
import Foundation
import SwiftProtobuf

/// `maas.gateway.v1.Admin`: the operator's API. Translates messages to `TenantAdministration`
/// calls and its answers and errors back; the admin credential is `AdminAuthInterceptor`'s, which
/// `GatewayService.adminService(...)` installs. Without it every call is UNAUTHENTICATED.
public struct AdminRPCService: Maas_Gateway_V1_Admin.SimpleServiceProtocol {
  let administration: TenantAdministration
  let logger: Logger

  public init(administration: TenantAdministration, logger: Logger) {
    self.administration = administration
    self.logger = logger
  }

  public func createTenant(request: Maas_Gateway_V1_CreateTenantRequest, context: ServerContext) async throws
    -> Maas_Gateway_V1_Tenant
  {
    try await answer(context) { call in
      Maas_Gateway_V1_Tenant(
        try await administration.createTenant(
          name: request.name, displayName: request.displayName, limits: request.limits,
          idempotencyKey: request.idempotencyKey, deadline: call.deadline))
    }
  }

  public func getTenant(request: Maas_Gateway_V1_GetTenantRequest, context: ServerContext) async throws
    -> Maas_Gateway_V1_Tenant
  {
    try await answer(context) { _ in
      switch request.ref {
      case .id(let id): Maas_Gateway_V1_Tenant(try await administration.tenant(id: id))
      case .name(let name): Maas_Gateway_V1_Tenant(try await administration.tenant(named: name))
      case nil: throw GatewayError.invalid("ref", .oneOfRequired)
      }
    }
  }

  public func listTenants(request: Maas_Gateway_V1_ListTenantsRequest, context: ServerContext) async throws
    -> Maas_Gateway_V1_ListTenantsResponse
  {
    try await answer(context) { _ in
      let page = try await administration.listTenants(
        pageSize: request.pageSize, pageToken: request.pageToken, namePrefix: request.namePrefix)
      return .with {
        $0.tenants = page.tenants.map(Maas_Gateway_V1_Tenant.init)
        $0.nextPageToken = page.nextPageToken
      }
    }
  }

  public func setTenantQuota(request: Maas_Gateway_V1_SetTenantQuotaRequest, context: ServerContext) async throws
    -> Maas_Gateway_V1_SetTenantQuotaResponse
  {
    try await answer(context) { call in
      let quota = try await administration.setQuota(
        tenantID: request.tenantID, limits: request.limits, resetToDefault: request.resetToDefault,
        idempotencyKey: request.idempotencyKey, deadline: call.deadline)
      return .with {
        $0.tenantID = request.tenantID
        $0.resources = quota.resources
      }
    }
  }

  public func createApiKey(request: Maas_Gateway_V1_CreateApiKeyRequest, context: ServerContext) async throws
    -> Maas_Gateway_V1_CreateApiKeyResponse
  {
    try await answer(context) { _ in
      let (key, token) = try await administration.createApiKey(
        tenantID: request.tenantID, name: request.name, expireTime: request.hasExpireTime ? request.expireTime.instant : nil,
        idempotencyKey: request.idempotencyKey)
      return .with {
        $0.key = Maas_Gateway_V1_ApiKey(key)
        $0.secret = token?.text ?? ""
      }
    }
  }

  public func listApiKeys(request: Maas_Gateway_V1_ListApiKeysRequest, context: ServerContext) async throws
    -> Maas_Gateway_V1_ListApiKeysResponse
  {
    try await answer(context) { _ in
      let page = try await administration.listApiKeys(
        tenantID: request.tenantID, pageSize: request.pageSize, pageToken: request.pageToken,
        includeRevoked: request.includeRevoked)
      return .with {
        $0.keys = page.keys.map(Maas_Gateway_V1_ApiKey.init)
        $0.nextPageToken = page.nextPageToken
      }
    }
  }

  public func revokeApiKey(request: Maas_Gateway_V1_RevokeApiKeyRequest, context: ServerContext) async throws
    -> Maas_Gateway_V1_ApiKey
  {
    try await answer(context) { _ in
      Maas_Gateway_V1_ApiKey(try await administration.revokeApiKey(tenantID: request.tenantID, keyID: request.keyID))
    }
  }

  /// Runs a handler body for the operator and turns what it throws into the contract's status.
  private func answer<Response>(_ context: ServerContext, _ body: (GatewayCall) async throws -> Response) async throws
    -> Response
  {
    let call = try GatewayCall.requireOperator()
    do {
      return try await body(call)
    } catch {
      throw GatewayStatus.rpcError(for: error, method: context.descriptor.method, logger: self.logger)
    }
  }
}

extension Maas_Gateway_V1_Tenant {
  init(_ tenant: Tenant) {
    self = .with {
      $0.id = tenant.id
      $0.name = tenant.name
      $0.displayName = tenant.displayName
      $0.createTime = Google_Protobuf_Timestamp(date: tenant.createTime)
    }
  }
}

extension Maas_Gateway_V1_ApiKey {
  init(_ key: ApiKeyRecord) {
    self = .with {
      $0.id = key.id.uuidString.lowercased()
      $0.tenantID = key.tenantID
      $0.prefix = key.displayPrefix
      $0.name = key.name
      $0.createTime = Google_Protobuf_Timestamp(date: key.createTime)
      if let expire = key.expireTime { $0.expireTime = Google_Protobuf_Timestamp(clamping: expire) }
      if let revoke = key.revokeTime { $0.revokeTime = Google_Protobuf_Timestamp(date: revoke) }
      if let used = key.lastUsedTime { $0.lastUsedTime = Google_Protobuf_Timestamp(date: used) }
    }
  }
}
