public import Foundation

/// What authenticating a call needs from storage. The Postgres implementation is
/// `PostgresGatewayStore`; tests of the logic may supply their own.
///
/// Every method may throw the storage's own errors (`PostgresError`), which the edge answers as
/// UNAVAILABLE or INTERNAL: a credential that cannot be checked is never accepted.
public protocol CredentialDirectory: Sendable {
  /// The stored credential of the API key whose prefix (without `maas_`) is `prefix`, or nil
  /// when no key has it. Called before the tenant is known.
  func apiKeyCredential(prefix: String) async throws -> StoredApiKeyCredential?

  /// Whether the gateway knows a tenant with this id (what a JWT's `tenant_id` must name).
  func tenantExists(id: String) async throws -> Bool

  /// Records a successful authentication with the key at `time`, unless one was recorded less
  /// than a minute before (so a busy key costs one write a minute, not one per call).
  func recordApiKeyUse(keyID: UUID, tenantID: String, at time: Date) async throws
}

/// What inserting a tenant came to.
public enum TenantInsertOutcome: Sendable, Hashable {
  case inserted(Tenant)
  /// Another tenant has the name.
  case nameTaken
  /// Another CreateTenant used the idempotency key first (look it up and replay).
  case idempotencyKeyTaken
}

/// What inserting an API key came to.
public enum ApiKeyInsertOutcome: Sendable, Hashable {
  case inserted(ApiKeyRecord)
  /// The tenant does not exist.
  case tenantNotFound
  /// Another key has the prefix (40 random bits: rare; generate another key).
  case prefixTaken
  /// Another CreateApiKey of the tenant used the idempotency key first (look it up and replay).
  case idempotencyKeyTaken
}

/// The operator's view of tenants and keys, for the Admin service. Tenant lookups by name and
/// listings span tenants; everything about keys runs scoped to the one tenant named.
///
/// Every method may throw the storage's own errors (`PostgresError`).
public protocol TenantStore: Sendable {
  /// Inserts a tenant, remembering the idempotency key and request fingerprint if given.
  func insertTenant(_ tenant: Tenant, idempotency: IdempotencyStamp?) async throws -> TenantInsertOutcome

  /// The tenant created with this CreateTenant idempotency key, with its request's fingerprint.
  func tenant(createdWithKey key: String) async throws -> (tenant: Tenant, fingerprint: String)?

  /// The tenant with this id, or nil.
  func tenant(id: String) async throws -> Tenant?

  /// The tenant with this name, or nil.
  func tenant(named name: String) async throws -> Tenant?

  /// Up to `limit` tenants ordered by name (byte order) whose name starts with `namePrefix`,
  /// after the one named `after` (from the start when nil).
  func tenants(after: String?, namePrefix: String, limit: Int) async throws -> [Tenant]

  /// Inserts a key (its digest, never its secret).
  func insertApiKey(_ key: NewApiKey) async throws -> ApiKeyInsertOutcome

  /// The tenant's key created with this CreateApiKey idempotency key, with its request's
  /// fingerprint.
  func apiKey(tenantID: String, createdWithKey key: String) async throws -> (record: ApiKeyRecord, fingerprint: String)?

  /// Up to `limit` of the tenant's keys, newest first (create time, then id, descending),
  /// after the key `after` (from the newest when nil); revoked keys only when asked for.
  func apiKeys(tenantID: String, after: UUID?, includeRevoked: Bool, limit: Int) async throws -> [ApiKeyRecord]

  /// Marks the key revoked at `time` unless it already is, and returns it; nil when the tenant
  /// has no such key.
  func revokeApiKey(tenantID: String, keyID: UUID, at time: Date) async throws -> ApiKeyRecord?
}
