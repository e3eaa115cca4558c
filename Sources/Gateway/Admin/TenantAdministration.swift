public import Foundation
public import Logging
public import MaaSContracts
import MaaSRuntime

/// The operator's work on tenants and keys, behind the Admin service and usable from code (seed
/// scripts, tests): it validates, keeps tenants and keys in the `TenantStore`, and registers
/// tenants and their limits with the quota service.
///
/// ```swift
/// let admin = TenantAdministration(store: store, quota: quotaClient, logger: logger)
/// let acme = try await admin.createTenant(name: "acme")
/// let (key, token) = try await admin.createApiKey(tenantID: acme.id, name: "ci")
/// // token!.text is the only copy of the secret: "authorization: Bearer \(token!.text)"
/// ```
///
/// Errors: `GatewayError` for what the gateway refuses itself (INVALID_ARGUMENT naming the
/// field, NOT_FOUND, ALREADY_EXISTS); `RPCError` as the quota service answered (passed through);
/// the store's own errors.
public struct TenantAdministration: Sendable {
  let store: any TenantStore
  let quota: any Maas_Quota_V1_Quota.ClientProtocol
  let upstream: UpstreamPolicy
  let keyCache: ApiKeyCache?
  let pageTokens: AdminPageTokens
  let clock: any GatewayClock
  let logger: Logger

  /// - Parameter keyCache: the cache of the `Authenticator` that checks this store's keys, so
  ///   that a key revoked here is refused from the next call on rather than within the cache's
  ///   TTL.
  /// - Parameter pageTokens: sealed under the secret every replica shares
  ///   (`MAAS_GATEWAY_PAGE_TOKEN_SECRET`); the default is the built-in development one.
  public init(
    store: any TenantStore, quota: any Maas_Quota_V1_Quota.ClientProtocol, upstream: UpstreamPolicy = UpstreamPolicy(),
    keyCache: ApiKeyCache? = nil, pageTokens: AdminPageTokens = AdminPageTokens(secret: GatewaySettings.defaultPageTokenSecret),
    clock: any GatewayClock = SystemGatewayClock(), logger: Logger
  ) {
    self.store = store
    self.quota = quota
    self.upstream = upstream
    self.keyCache = keyCache
    self.pageTokens = pageTokens
    self.clock = clock
    self.logger = logger
  }

  // MARK: - Tenants

  /// Creates a tenant and registers it with the quota service, with the default limits except
  /// `limits`. The quota registration comes first, so a tenant the gateway knows is always one
  /// quota knows; a registration whose tenant row then fails (name taken meanwhile) leaves an
  /// id nobody can authenticate as.
  ///
  /// With `idempotencyKey`, a retry of the same request returns the tenant created first; the
  /// same key with another request is INVALID_ARGUMENT "idempotency_key".
  public func createTenant(
    name: String, displayName: String = "", limits: [Maas_Quota_V1_Limit] = [], idempotencyKey: String = "",
    deadline: ContinuousClock.Instant? = nil
  ) async throws -> Tenant {
    try Validation.check(
      Validation.tenantName(name) + Validation.maxBytes(displayName, Validation.maxDisplayNameBytes, field: "display_name")
        + Validation.idempotencyKey(idempotencyKey))
    let stamp = idempotencyKey.isEmpty
      ? nil
      : IdempotencyStamp(
        key: idempotencyKey,
        fingerprint: try Self.fingerprint(name, displayName, limits))
    if let stamp, let replay = try await self.replayedTenant(stamp) { return replay }
    if try await self.store.tenant(named: name) != nil { throw GatewayError.tenantNameTaken(name) }

    let tenant = Tenant(id: UUID().uuidString.lowercased(), name: name, displayName: displayName, createTime: self.clock.now())
    _ = try await self.upstream.call("quota service", deadline: deadline, logger: self.logger) { timeout in
      try await self.quota.setLimits(
        .with {
          $0.tenantID = tenant.id
          $0.limits = limits
          $0.idempotencyKey = "maas-gateway:create-tenant"
        }, metadata: timeout.metadata)
    }
    switch try await self.store.insertTenant(tenant, idempotency: stamp) {
    case .inserted(let inserted):
      self.logger.info("tenant created", metadata: ["tenant_id": "\(inserted.id)", "name": "\(inserted.name)"])
      return inserted
    case .nameTaken:
      throw GatewayError.tenantNameTaken(name)
    case .idempotencyKeyTaken:
      // A concurrent retry won the race: answer what it created.
      guard let stamp, let replay = try await self.replayedTenant(stamp) else { throw GatewayError.tenantNameTaken(name) }
      return replay
    }
  }

  /// What a CreateTenant's idempotency key recognises its request by.
  private static func fingerprint(_ name: String, _ displayName: String, _ limits: [Maas_Quota_V1_Limit]) throws -> String {
    var canonical = Canonical()
    canonical.add(name)
    canonical.add(displayName)
    for limit in limits { canonical.add(try limit.serializedBytes() as [UInt8]) }
    return canonical.fingerprint
  }

  private func replayedTenant(_ stamp: IdempotencyStamp) async throws -> Tenant? {
    guard let (tenant, fingerprint) = try await self.store.tenant(createdWithKey: stamp.key) else { return nil }
    guard fingerprint == stamp.fingerprint else { throw GatewayError.invalid("idempotency_key", .reusedForDifferentRequest) }
    return tenant
  }

  /// The tenant with this id. NOT_FOUND "id" when there is none.
  public func tenant(id: String) async throws -> Tenant {
    try Validation.check(Validation.required(id, field: "id"))
    guard let tenant = try await self.store.tenant(id: id) else { throw GatewayError.tenantNotFound(field: "id", value: id) }
    return tenant
  }

  /// The tenant with this name. NOT_FOUND "name" when there is none.
  public func tenant(named name: String) async throws -> Tenant {
    try Validation.check(Validation.required(name, field: "name"))
    guard let tenant = try await self.store.tenant(named: name) else {
      throw GatewayError.tenantNotFound(field: "name", value: name)
    }
    return tenant
  }

  /// One page of tenants ordered by name, and the token of the next page (empty on the last).
  public func listTenants(pageSize: Int32, pageToken: String = "", namePrefix: String = "") async throws
    -> (tenants: [Tenant], nextPageToken: String)
  {
    try Validation.check(Validation.pageSize(pageSize))
    let listing = AdminPageTokens.tenants(namePrefix: namePrefix)
    let after = try pageTokens.tenantName(pageToken, in: listing)
    let rows = try await self.store.tenants(after: after, namePrefix: namePrefix, limit: Int(pageSize) + 1)
    let page = Array(rows.prefix(Int(pageSize)))
    let next = rows.count > page.count ? pageTokens.token(afterTenant: page.last!.name, in: listing) : ""
    return (page, next)
  }

  /// Sets some of a tenant's limits at the quota service and returns its limits and usage.
  /// NOT_FOUND "tenant_id" for a tenant the gateway does not know; quota's own refusals (a bad
  /// limit) pass through.
  public func setQuota(
    tenantID: String, limits: [Maas_Quota_V1_Limit], resetToDefault: [Maas_Quota_V1_Resource] = [],
    idempotencyKey: String = "", deadline: ContinuousClock.Instant? = nil
  ) async throws -> Maas_Quota_V1_GetQuotaResponse {
    try Validation.check(Validation.required(tenantID, field: "tenant_id") + Validation.idempotencyKey(idempotencyKey))
    guard try await self.store.tenant(id: tenantID) != nil else {
      throw GatewayError.tenantNotFound(field: "tenant_id", value: tenantID)
    }
    return try await self.upstream.call("quota service", deadline: deadline, logger: self.logger) { timeout in
      try await self.quota.setLimits(
        .with {
          $0.tenantID = tenantID
          $0.limits = limits
          $0.resetToDefault = resetToDefault
          $0.idempotencyKey = ForwardedKey.forMutation(idempotencyKey)
        }, metadata: timeout.metadata)
    }
  }

  // MARK: - API keys

  /// What a CreateApiKey's idempotency key recognises its request by.
  private static func fingerprint(_ name: String, _ expireTime: Date?) -> String {
    var canonical = Canonical()
    canonical.add(name)
    canonical.add(expireTime.map { String($0.timeIntervalSince1970) } ?? "")
    return canonical.fingerprint
  }

  /// Issues a key. The token is returned only here, only the first time: a retry with the same
  /// idempotency key returns the key's record and nil.
  ///
  /// - Parameter expireTime: nil never expires; a time not in the future is INVALID_ARGUMENT
  ///   "expire_time".
  public func createApiKey(tenantID: String, name: String = "", expireTime: Date? = nil, idempotencyKey: String = "")
    async throws -> (key: ApiKeyRecord, token: ApiKeyToken?)
  {
    let now = self.clock.now()
    var violations = Validation.required(tenantID, field: "tenant_id")
    violations += Validation.maxBytes(name, Validation.maxKeyNameBytes, field: "name")
    if let expireTime {
      if !TimestampRange.contains(expireTime) {
        violations.append(FieldViolation("expire_time", .outsideTimestampRange))
      } else if expireTime <= now {
        violations.append(FieldViolation("expire_time", .inPast))
      }
    }
    violations += Validation.idempotencyKey(idempotencyKey)
    try Validation.check(violations)

    let stamp = idempotencyKey.isEmpty
      ? nil
      : IdempotencyStamp(
        key: idempotencyKey,
        fingerprint: Self.fingerprint(name, expireTime))
    if let stamp, let replay = try await self.replayedKey(tenantID: tenantID, stamp) { return (replay, nil) }

    // A prefix has 40 random bits; a collision is rare, and answered with another key.
    for _ in 0..<5 {
      let token = ApiKeyToken.generate()
      let record = ApiKeyRecord(
        id: UUID(), tenantID: tenantID, displayPrefix: token.displayPrefix, name: name, createTime: now, expireTime: expireTime)
      switch try await self.store.insertApiKey(NewApiKey(record: record, prefix: token.prefix, digest: token.digest, idempotency: stamp)) {
      case .inserted(let inserted):
        self.keyCache?.forgetAbsent(prefix: token.prefix)
        self.logger.info("API key created", metadata: ["tenant_id": "\(tenantID)", "key_id": "\(inserted.id.uuidString.lowercased())"])
        return (inserted, token)
      case .tenantNotFound:
        throw GatewayError.tenantNotFound(field: "tenant_id", value: tenantID)
      case .prefixTaken:
        continue
      case .idempotencyKeyTaken:
        guard let stamp, let replay = try await self.replayedKey(tenantID: tenantID, stamp) else { continue }
        return (replay, nil)
      }
    }
    throw GatewayStoreInconsistency(message: "could not find a free API key prefix in 5 attempts")
  }

  private func replayedKey(tenantID: String, _ stamp: IdempotencyStamp) async throws -> ApiKeyRecord? {
    guard let (record, fingerprint) = try await self.store.apiKey(tenantID: tenantID, createdWithKey: stamp.key) else {
      return nil
    }
    guard fingerprint == stamp.fingerprint else { throw GatewayError.invalid("idempotency_key", .reusedForDifferentRequest) }
    return record
  }

  /// One page of a tenant's keys, newest first, and the token of the next page. NOT_FOUND
  /// "tenant_id" for an unknown tenant.
  public func listApiKeys(tenantID: String, pageSize: Int32, pageToken: String = "", includeRevoked: Bool = false)
    async throws -> (keys: [ApiKeyRecord], nextPageToken: String)
  {
    try Validation.check(Validation.required(tenantID, field: "tenant_id") + Validation.pageSize(pageSize))
    let listing = AdminPageTokens.apiKeys(tenantID: tenantID, includeRevoked: includeRevoked)
    let after = try pageTokens.keyID(pageToken, in: listing)
    guard try await self.store.tenant(id: tenantID) != nil else {
      throw GatewayError.tenantNotFound(field: "tenant_id", value: tenantID)
    }
    let rows = try await self.store.apiKeys(tenantID: tenantID, after: after, includeRevoked: includeRevoked, limit: Int(pageSize) + 1)
    let page = Array(rows.prefix(Int(pageSize)))
    let next = rows.count > page.count ? pageTokens.token(afterKey: page.last!.id, in: listing) : ""
    return (page, next)
  }

  /// Revokes a key at once (for replicas whose key cache this is not: within its TTL);
  /// revoking a revoked key returns it unchanged. NOT_FOUND "key_id" for a key the tenant does
  /// not have (another tenant's included).
  public func revokeApiKey(tenantID: String, keyID: String) async throws -> ApiKeyRecord {
    try Validation.check(Validation.required(tenantID, field: "tenant_id") + Validation.required(keyID, field: "key_id"))
    // Ids are UUIDs: anything else names no key.
    guard let id = UUID(uuidString: keyID),
      let record = try await self.store.revokeApiKey(tenantID: tenantID, keyID: id, at: self.clock.now())
    else { throw GatewayError.apiKeyNotFound(keyID) }
    // After the revocation committed: a record read before it, even by a lookup still in
    // flight, is not used again.
    self.keyCache?.invalidate(keyID: record.id)
    self.logger.info("API key revoked", metadata: ["tenant_id": "\(tenantID)", "key_id": "\(record.id.uuidString.lowercased())"])
    return record
  }
}

/// Something that should not happen did (answered INTERNAL, logged with its message).
struct GatewayStoreInconsistency: Error, CustomStringConvertible {
  var message: String
  var description: String { self.message }
}
