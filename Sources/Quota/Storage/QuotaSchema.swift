public import PostgresMigrations

/// The `quota` schema, which the quota service owns: its migrations, oldest first, compiled into
/// `maas-quota` and applied by `maas-quota migrate` (and at start-up). A shipped migration never
/// changes; later ones are appended.
///
/// Tables (every one tenant-scoped, with row-level security on `maas.tenant_id`):
/// - `tenants`: tenants the service knows (SetLimits registers them).
/// - `limits`: a tenant's own limits; a missing row means the default, `value` NULL unlimited.
/// - `counters`: one row per tenant, resource and window: `used` and `reserved`. Stock
///   resources have one row whose window starts at the Unix epoch; flow resources one per window.
/// - `reservations`: Reserve's holds and their states.
/// - `ledger`: append-only usage entries (Consume, RecordUsage, and the committed changes of
///   stock resources). The service role may insert and read, never update or delete.
/// - `idempotency`: each mutating call's first answer, by tenant, method and key.
public enum QuotaSchema {
  public static let name = "quota"

  /// - Parameter serviceRole: the role the service connects as (no BYPASSRLS).
  public static func plan(serviceRole: String) throws -> MigrationPlan {
    try MigrationPlan(schema: name, migrations: [
      try .serviceRoleGrants(1, schema: name, role: serviceRole),
      Migration(2, "create_quota_tables", tables + (try Migration.tenantIsolation(tenantTables)) + [
        // Append-only, enforced by the database: a bug cannot rewrite what was billed. The role
        // name was vetted as a plain identifier by migration 1's helper.
        "REVOKE UPDATE, DELETE, TRUNCATE ON ledger FROM \"\(serviceRole)\"",
        // Idempotency answers are kept at least 24 hours; this sweeps older ones for every
        // tenant. It runs as the schema's owner (which row-level security does not bind), and
        // can do nothing else.
        """
        CREATE FUNCTION sweep_idempotency(older_than interval) RETURNS bigint
          LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            WITH swept AS (
              DELETE FROM quota.idempotency WHERE create_time < now() - greatest(older_than, interval '24 hours')
              RETURNING 1
            )
            SELECT count(*) FROM swept
          $$
        """,
        "REVOKE ALL ON FUNCTION sweep_idempotency(interval) FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION sweep_idempotency(interval) TO \"\(serviceRole)\"",
      ]),
    ])
  }

  /// Row-level security holds each of these to one tenant (see `Migration.tenantIsolation`).
  static let tenantTables = ["tenants", "limits", "counters", "reservations", "ledger", "idempotency"]

  static let tables = [
    """
    CREATE TABLE tenants (
      tenant_id text PRIMARY KEY,
      create_time timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE limits (
      tenant_id text NOT NULL REFERENCES tenants,
      resource integer NOT NULL,
      value bigint CHECK (value >= 0),
      update_time timestamptz NOT NULL,
      PRIMARY KEY (tenant_id, resource)
    )
    """,
    """
    CREATE TABLE counters (
      tenant_id text NOT NULL REFERENCES tenants,
      resource integer NOT NULL,
      window_start timestamptz NOT NULL,
      used bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
      reserved bigint NOT NULL DEFAULT 0 CHECK (reserved >= 0),
      PRIMARY KEY (tenant_id, resource, window_start)
    )
    """,
    """
    CREATE TABLE reservations (
      id uuid PRIMARY KEY,
      tenant_id text NOT NULL REFERENCES tenants,
      resource integer NOT NULL,
      amount bigint NOT NULL CHECK (amount > 0),
      state integer NOT NULL,
      create_time timestamptz NOT NULL,
      expire_time timestamptz,
      update_time timestamptz NOT NULL
    )
    """,
    // Reserve expires a tenant's lapsed holds of one resource before admitting; this finds them.
    "CREATE INDEX reservations_held ON reservations (tenant_id, resource, expire_time) WHERE state = 1",
    """
    CREATE TABLE ledger (
      entry_id bigserial PRIMARY KEY,
      tenant_id text NOT NULL REFERENCES tenants,
      resource integer NOT NULL,
      quantity bigint NOT NULL,
      usage_time timestamptz NOT NULL,
      window_start timestamptz NOT NULL,
      source text NOT NULL CHECK (source IN ('consume', 'record_usage', 'commit', 'release')),
      idempotency_key text,
      reservation_id uuid,
      labels jsonb NOT NULL DEFAULT '{}',
      record_time timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX ledger_usage ON ledger (tenant_id, resource, usage_time)",
    """
    CREATE TABLE idempotency (
      tenant_id text NOT NULL,
      method text NOT NULL,
      key text NOT NULL,
      fingerprint text NOT NULL,
      answer text NOT NULL,
      create_time timestamptz NOT NULL,
      PRIMARY KEY (tenant_id, method, key)
    )
    """,
    // Only the hourly sweep reads by age, and rows arrive in time order: a BRIN index costs
    // next to nothing on the hot insert path, where a B-tree would cost an entry per call.
    "CREATE INDEX idempotency_age ON idempotency USING brin (create_time)",
  ]

}
