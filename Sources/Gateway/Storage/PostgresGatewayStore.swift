public import Foundation
public import Postgres

/// Tenants and API keys in the `gateway` schema (see `GatewaySchema`), connected as the service
/// role: every tenant-scoped statement runs in a transaction whose `maas.tenant_id` is that
/// tenant, so row-level security holds it to that tenant's rows even if a filter were missing;
/// the few cross-tenant reads go through the schema's `SECURITY DEFINER` functions.
public final class PostgresGatewayStore: CredentialDirectory, TenantStore {
  let pool: PostgresPool

  public init(pool: PostgresPool) {
    self.pool = pool
  }

  // MARK: - CredentialDirectory

  public func apiKeyCredential(prefix: String) async throws -> StoredApiKeyCredential? {
    let rows = try await pool.query(
      "SELECT key_id, tenant_id, secret_sha256, expire_time, revoke_time, last_used_time FROM gateway.api_key_credential($1)",
      [prefix])
    guard let row = rows.first else { return nil }
    guard let digest = ApiKeyDigest(bytes: Array(try row.decode(Data.self, column: "secret_sha256"))) else {
      throw PostgresError(kind: .decoding, message: "api_keys.secret_sha256 is not 32 bytes")
    }
    return StoredApiKeyCredential(
      keyID: try row.decode(UUID.self, column: "key_id"), tenantID: try row.decode(String.self, column: "tenant_id"),
      digest: digest, expireTime: try row.decode(Date?.self, column: "expire_time"),
      revokeTime: try row.decode(Date?.self, column: "revoke_time"),
      lastUsedTime: try row.decode(Date?.self, column: "last_used_time"))
  }

  public func tenantExists(id: String) async throws -> Bool {
    try await pool.transaction(tenant: id, readOnly: true) { tx in
      try await !tx.query("SELECT 1 FROM gateway.tenants WHERE tenant_id = $1", [id]).isEmpty
    }
  }

  public func recordApiKeyUse(keyID: UUID, tenantID: String, at time: Date) async throws {
    try await pool.transaction(tenant: tenantID) { tx in
      _ = try await tx.execute(
        """
        UPDATE gateway.api_keys SET last_used_time = $3
        WHERE key_id = $1 AND tenant_id = $2 AND (last_used_time IS NULL OR last_used_time <= $3 - interval '1 minute')
        """, [keyID, tenantID, time])
    }
  }

  // MARK: - Tenants

  public func insertTenant(_ tenant: Tenant, idempotency: IdempotencyStamp?) async throws -> TenantInsertOutcome {
    do {
      return try await pool.transaction(tenant: tenant.id) { tx in
        let rows = try await tx.query(
          """
          INSERT INTO gateway.tenants (tenant_id, name, display_name, create_time, create_key, create_fingerprint)
          VALUES ($1, $2, $3, $4, $5, $6) RETURNING \(Self.tenantColumns)
          """,
          [tenant.id, tenant.name, tenant.displayName, tenant.createTime, idempotency?.key, idempotency?.fingerprint])
        return .inserted(try Self.tenant(rows[0]))
      }
    } catch let error as PostgresError where error.isUniqueViolation {
      switch error.constraint {
      case "tenants_name_key": return .nameTaken
      case "tenants_create_key_key": return .idempotencyKeyTaken
      default: throw error
      }
    }
  }

  public func tenant(createdWithKey key: String) async throws -> (tenant: Tenant, fingerprint: String)? {
    let rows = try await pool.query(
      "SELECT \(Self.tenantColumns), create_fingerprint FROM gateway.tenant_by_create_key($1)", [key])
    guard let row = rows.first else { return nil }
    return (try Self.tenant(row), try row.decode(String?.self, column: "create_fingerprint") ?? "")
  }

  public func tenant(id: String) async throws -> Tenant? {
    try await pool.transaction(tenant: id, readOnly: true) { tx in
      try await tx.query("SELECT \(Self.tenantColumns) FROM gateway.tenants WHERE tenant_id = $1", [id])
        .first.map(Self.tenant)
    }
  }

  public func tenant(named name: String) async throws -> Tenant? {
    try await pool.query("SELECT \(Self.tenantColumns) FROM gateway.tenant_by_name($1)", [name]).first.map(Self.tenant)
  }

  public func tenants(after: String?, namePrefix: String, limit: Int) async throws -> [Tenant] {
    try await pool.query(
      "SELECT \(Self.tenantColumns) FROM gateway.list_tenants($1, $2, $3)", [after, namePrefix, Int32(clamping: limit)]
    ).map(Self.tenant)
  }

  // MARK: - API keys

  public func insertApiKey(_ key: NewApiKey) async throws -> ApiKeyInsertOutcome {
    let record = key.record
    do {
      return try await pool.transaction(tenant: record.tenantID) { tx in
        guard try await !tx.query("SELECT 1 FROM gateway.tenants WHERE tenant_id = $1", [record.tenantID]).isEmpty else {
          return .tenantNotFound
        }
        let rows = try await tx.query(
          """
          INSERT INTO gateway.api_keys
            (key_id, tenant_id, prefix, secret_sha256, name, create_time, expire_time, create_key, create_fingerprint)
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING \(Self.keyColumns)
          """,
          [
            record.id, record.tenantID, key.prefix, Data(key.digest.bytes), record.name, record.createTime,
            record.expireTime, key.idempotency?.key, key.idempotency?.fingerprint,
          ])
        return .inserted(try Self.apiKey(rows[0]))
      }
    } catch let error as PostgresError where error.isUniqueViolation {
      switch error.constraint {
      case "api_keys_prefix_key": return .prefixTaken
      case "api_keys_tenant_id_create_key_key": return .idempotencyKeyTaken
      default: throw error
      }
    } catch let error as PostgresError where error.isForeignKeyViolation {
      return .tenantNotFound
    }
  }

  public func apiKey(tenantID: String, createdWithKey key: String) async throws -> (record: ApiKeyRecord, fingerprint: String)? {
    try await pool.transaction(tenant: tenantID, readOnly: true) { tx in
      let rows = try await tx.query(
        "SELECT \(Self.keyColumns), create_fingerprint FROM gateway.api_keys WHERE tenant_id = $1 AND create_key = $2",
        [tenantID, key])
      guard let row = rows.first else { return nil }
      return (try Self.apiKey(row), try row.decode(String?.self, column: "create_fingerprint") ?? "")
    }
  }

  public func apiKeys(tenantID: String, after: UUID?, includeRevoked: Bool, limit: Int) async throws -> [ApiKeyRecord] {
    try await pool.transaction(tenant: tenantID, readOnly: true) { tx in
      // The cursor is the last key of the previous page; its (create_time, key_id) is read back
      // here rather than carried in the token, so the token holds nothing but an id.
      try await tx.query(
        """
        SELECT \(Self.keyColumns) FROM gateway.api_keys
        WHERE tenant_id = $1 AND ($2::boolean OR revoke_time IS NULL)
          AND ($3::uuid IS NULL OR (create_time, key_id) <
            (SELECT c.create_time, c.key_id FROM gateway.api_keys c WHERE c.tenant_id = $1 AND c.key_id = $3))
        ORDER BY create_time DESC, key_id DESC LIMIT $4
        """, [tenantID, includeRevoked, after, limit]
      ).map(Self.apiKey)
    }
  }

  public func revokeApiKey(tenantID: String, keyID: UUID, at time: Date) async throws -> ApiKeyRecord? {
    try await pool.transaction(tenant: tenantID) { tx in
      try await tx.query(
        """
        UPDATE gateway.api_keys SET revoke_time = coalesce(revoke_time, $3)
        WHERE tenant_id = $1 AND key_id = $2 RETURNING \(Self.keyColumns)
        """, [tenantID, keyID, time]
      ).first.map(Self.apiKey)
    }
  }

  // MARK: - Rows

  static let tenantColumns = "tenant_id, name, display_name, create_time"
  static let keyColumns = "key_id, tenant_id, prefix, name, create_time, expire_time, revoke_time, last_used_time"

  static func tenant(_ row: PostgresRow) throws -> Tenant {
    Tenant(
      id: try row.decode(String.self, column: "tenant_id"), name: try row.decode(String.self, column: "name"),
      displayName: try row.decode(String.self, column: "display_name"),
      createTime: try row.decode(Date.self, column: "create_time"))
  }

  static func apiKey(_ row: PostgresRow) throws -> ApiKeyRecord {
    ApiKeyRecord(
      id: try row.decode(UUID.self, column: "key_id"), tenantID: try row.decode(String.self, column: "tenant_id"),
      displayPrefix: ApiKeyToken.scheme + (try row.decode(String.self, column: "prefix")),
      name: try row.decode(String.self, column: "name"), createTime: try row.decode(Date.self, column: "create_time"),
      expireTime: try row.decode(Date?.self, column: "expire_time"),
      revokeTime: try row.decode(Date?.self, column: "revoke_time"),
      lastUsedTime: try row.decode(Date?.self, column: "last_used_time"))
  }
}
