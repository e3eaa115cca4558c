public import PostgresMigrations

/// The `gateway` schema, which the gateway service owns (tenants and API keys): its migrations, oldest first,
/// compiled into `maas-gateway` and applied by `maas-gateway migrate`. Tables arrive with the
/// service itself; a shipped migration never changes, later ones are appended.
///
/// Tables (row-level security on `maas.tenant_id` on both):
/// - `tenants`: id, unique name, display name; `create_key`/`create_fingerprint` remember the
///   CreateTenant idempotency key.
/// - `api_keys`: one row per key: the prefix (unique, not secret), the SHA-256 of the whole key
///   (never the key itself), name, expiry, revocation and last use; `create_key` /
///   `create_fingerprint` remember the CreateApiKey idempotency key per tenant.
///
/// The service role sees one tenant's rows at a time. The gateway has two needs that span
/// tenants, and each is a `SECURITY DEFINER` function that returns only what that need takes:
/// - `api_key_credential(prefix)`: checking an API key, before the tenant is known;
/// - `tenant_by_name`, `tenant_by_create_key`, `list_tenants`: the operator's Admin calls, which
///   look tenants up by name or list them all.
/// The service role may not delete rows: keys are revoked, never removed.
public enum GatewaySchema {
  public static let name = "gateway"

  /// - Parameter serviceRole: the role the service connects as (no BYPASSRLS).
  public static func plan(serviceRole: String) throws -> MigrationPlan {
    try MigrationPlan(schema: name, migrations: [
      try .serviceRoleGrants(1, schema: name, role: serviceRole),
      Migration(2, "create_tenants_and_api_keys", tables + (try Migration.tenantIsolation(tenantTables)) + functions(serviceRole: serviceRole) + [
        // Keys are revoked, not deleted, and tenants outlive their keys: the record of who could
        // call stays. The role name was vetted as a plain identifier by migration 1's helper.
        "REVOKE DELETE, TRUNCATE ON tenants, api_keys FROM \"\(serviceRole)\"",
      ]),
    ])
  }

  static let tables = [
    // Names are compared and ordered byte-wise (COLLATE "C"), as ListTenants pages them.
    """
    CREATE TABLE tenants (
      tenant_id text PRIMARY KEY,
      name text COLLATE "C" NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9-]{0,62}$'),
      display_name text NOT NULL DEFAULT '',
      create_time timestamptz NOT NULL,
      create_key text UNIQUE,
      create_fingerprint text
    )
    """,
    """
    CREATE TABLE api_keys (
      key_id uuid PRIMARY KEY,
      tenant_id text NOT NULL REFERENCES tenants,
      prefix text NOT NULL UNIQUE,
      secret_sha256 bytea NOT NULL CHECK (length(secret_sha256) = 32),
      name text NOT NULL DEFAULT '',
      create_time timestamptz NOT NULL,
      expire_time timestamptz,
      revoke_time timestamptz,
      last_used_time timestamptz,
      create_key text,
      create_fingerprint text,
      UNIQUE (tenant_id, create_key)
    )
    """,
    // ListApiKeys: a tenant's keys, newest first.
    "CREATE INDEX api_keys_listing ON api_keys (tenant_id, create_time DESC, key_id DESC)",
  ]

  /// Row-level security holds each of these to one tenant (see `Migration.tenantIsolation`); the
  /// owner (migrations, the functions below) sees all.
  static let tenantTables = ["tenants", "api_keys"]

  /// The cross-tenant reads, each run as the schema's owner and able to do nothing else.
  static func functions(serviceRole: String) -> [String] {
    let definitions: [(signature: String, body: String)] = [
      (
        "api_key_credential(key_prefix text)",
        """
        RETURNS TABLE (key_id uuid, tenant_id text, secret_sha256 bytea, expire_time timestamptz,
                       revoke_time timestamptz, last_used_time timestamptz)
          LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            SELECT k.key_id, k.tenant_id, k.secret_sha256, k.expire_time, k.revoke_time, k.last_used_time
            FROM gateway.api_keys k WHERE k.prefix = key_prefix
          $$
        """
      ),
      (
        "tenant_by_name(tenant_name text)",
        """
        RETURNS TABLE (tenant_id text, name text, display_name text, create_time timestamptz)
          LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            SELECT t.tenant_id, t.name, t.display_name, t.create_time FROM gateway.tenants t WHERE t.name = tenant_name
          $$
        """
      ),
      (
        "tenant_by_create_key(idempotency_key text)",
        """
        RETURNS TABLE (tenant_id text, name text, display_name text, create_time timestamptz, create_fingerprint text)
          LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            SELECT t.tenant_id, t.name, t.display_name, t.create_time, t.create_fingerprint
            FROM gateway.tenants t WHERE t.create_key = idempotency_key
          $$
        """
      ),
      (
        "list_tenants(after_name text, name_prefix text, max_rows integer)",
        """
        RETURNS TABLE (tenant_id text, name text, display_name text, create_time timestamptz)
          LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            SELECT t.tenant_id, t.name, t.display_name, t.create_time FROM gateway.tenants t
            WHERE (after_name IS NULL OR t.name > after_name) AND starts_with(t.name, name_prefix)
            ORDER BY t.name LIMIT least(max_rows, 1001)
          $$
        """
      ),
    ]
    return definitions.flatMap { signature, body in
      [
        "CREATE FUNCTION \(signature) \(body)",
        "REVOKE ALL ON FUNCTION \(signature) FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION \(signature) TO \"\(serviceRole)\"",
      ]
    }
  }
}
