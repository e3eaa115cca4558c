public import PostgresMigrations

/// The `registry` schema, which the registry service owns (models, versions, artifacts and aliases): its migrations, oldest first,
/// compiled into `maas-registry` and applied by `maas-registry migrate`. Tables arrive with the
/// service itself; a shipped migration never changes, later ones are appended.
///
/// Tables (every one tenant-scoped, with row-level security on `maas.tenant_id`; every index
/// leads with `tenant_id`, so each query reads one tenant's range):
/// - `models`: name unique per tenant (byte order, `COLLATE "C"`), labels as jsonb, state, and
///   the quota reservation of its MODELS unit.
/// - `versions`: version string unique per model, the artifact, labels, and the reservation of
///   its storage (NULL for an empty artifact).
/// - `aliases`: alias name -> version, per model; a version an alias points at cannot be
///   deleted (foreign key).
/// - `idempotency`: each mutating call's first answer, by tenant, method and key, and the
///   transaction attempt that wrote it (migration 4).
/// - `pending_releases`: quota reservations of deleted rows not yet given back (an outbox the
///   maintenance loop drains when the quota service was unreachable at delete time).
/// - `catalog_versions` (migration 3): per tenant, a number that every committed change to its
///   models, versions or aliases moves (triggers, so no write path can forget it). A listing
///   read at one number is still the listing while the number stands (`ListingCache`).
public enum RegistrySchema {
  public static let name = "registry"

  /// - Parameter serviceRole: the role the service connects as (no BYPASSRLS).
  public static func plan(serviceRole: String) throws -> MigrationPlan {
    try MigrationPlan(schema: name, migrations: [
      try .serviceRoleGrants(1, schema: name, role: serviceRole),
      Migration(2, "create_registry_tables", tables + (try Migration.tenantIsolation(tenantTables)) + functions(serviceRole: serviceRole)),
      Migration(3, "catalog_versions", catalogVersions + (try Migration.tenantIsolation(["catalog_versions"]))),
      // Which transaction attempt wrote a record: after a COMMIT whose outcome was lost, the
      // record tells this call's commit from a retry's (NULL for records written before).
      Migration(4, "idempotency_attempt", ["ALTER TABLE idempotency ADD COLUMN attempt uuid"]),
    ])
  }

  static let tables = [
    """
    CREATE TABLE models (
      tenant_id text NOT NULL,
      id uuid NOT NULL,
      name text COLLATE "C" NOT NULL,
      description text NOT NULL,
      labels jsonb NOT NULL,
      state smallint NOT NULL CHECK (state IN (1, 2)),
      reservation_id text,
      create_time timestamptz NOT NULL,
      update_time timestamptz NOT NULL,
      PRIMARY KEY (tenant_id, id),
      CONSTRAINT models_name_key UNIQUE (tenant_id, name)
    )
    """,
    // ListModels' order and keyset: (name, id) > (last name, last id) is one range of this
    // index, so a page costs its own rows whatever page it is.
    "CREATE INDEX models_listing ON models (tenant_id, name, id)",
    """
    CREATE TABLE versions (
      tenant_id text NOT NULL,
      id uuid NOT NULL,
      model_id uuid NOT NULL,
      version text COLLATE "C" NOT NULL,
      artifact_uri text NOT NULL,
      artifact_format text NOT NULL,
      artifact_size_bytes bigint NOT NULL CHECK (artifact_size_bytes >= 0),
      artifact_sha256 text NOT NULL,
      labels jsonb NOT NULL,
      reservation_id text,
      create_time timestamptz NOT NULL,
      PRIMARY KEY (tenant_id, id),
      CONSTRAINT versions_version_key UNIQUE (tenant_id, model_id, version),
      FOREIGN KEY (tenant_id, model_id) REFERENCES models (tenant_id, id)
    )
    """,
    // ListModelVersions' order: newest first, then id.
    "CREATE INDEX versions_listing ON versions (tenant_id, model_id, create_time DESC, id DESC)",
    """
    CREATE TABLE aliases (
      tenant_id text NOT NULL,
      model_id uuid NOT NULL,
      name text COLLATE "C" NOT NULL,
      version_id uuid NOT NULL,
      update_time timestamptz NOT NULL,
      PRIMARY KEY (tenant_id, model_id, name),
      FOREIGN KEY (tenant_id, model_id) REFERENCES models (tenant_id, id),
      FOREIGN KEY (tenant_id, version_id) REFERENCES versions (tenant_id, id)
    )
    """,
    // DeleteModelVersion finds the aliases pointing at a version (and the foreign key checks it).
    "CREATE INDEX aliases_by_version ON aliases (tenant_id, version_id)",
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
    // Only the sweep reads by age, and rows arrive in time order.
    "CREATE INDEX idempotency_age ON idempotency USING brin (create_time)",
    """
    CREATE TABLE pending_releases (
      tenant_id text NOT NULL,
      reservation_id text NOT NULL,
      create_time timestamptz NOT NULL,
      PRIMARY KEY (tenant_id, reservation_id)
    )
    """,
  ]

  /// The catalogue's change counter, moved by a trigger on each table a listing reads.
  ///
  /// The triggers are deferred constraint triggers: they run at COMMIT, so a transaction holds
  /// the tenant's counter row only while it commits, not across the quota calls a create makes
  /// in the middle (concurrent writes of one tenant would otherwise queue behind each other's
  /// quota round trips). They run as the caller, under its tenant's row-level security.
  static let catalogVersions = [
    """
    CREATE TABLE catalog_versions (
      tenant_id text PRIMARY KEY,
      version bigint NOT NULL
    )
    """,
    """
    CREATE FUNCTION bump_catalog_version() RETURNS trigger
      LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
        BEGIN
          INSERT INTO registry.catalog_versions AS c (tenant_id, version)
          VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.tenant_id ELSE NEW.tenant_id END, 1)
          ON CONFLICT (tenant_id) DO UPDATE SET version = c.version + 1;
          RETURN NULL;
        END
      $$
    """,
  ] + ["models", "versions", "aliases"].map { table in
    """
    CREATE CONSTRAINT TRIGGER \(table)_catalog_version AFTER INSERT OR UPDATE OR DELETE ON \(table)
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bump_catalog_version()
    """
  }

  /// Row-level security holds each of these to one tenant (see `Migration.tenantIsolation`); the
  /// owner (migrations, the functions below) sees all.
  static let tenantTables = ["models", "versions", "aliases", "idempotency", "pending_releases"]

  /// The only cross-tenant access the service has: two functions that run as the schema's
  /// owner and can do nothing else. The role name was vetted as a plain identifier by
  /// migration 1's helper.
  static func functions(serviceRole: String) -> [String] {
    [
      // Idempotency answers are kept at least 24 hours (registry.proto); this sweeps older ones.
      """
      CREATE FUNCTION sweep_idempotency(older_than interval) RETURNS bigint
        LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          WITH swept AS (
            DELETE FROM registry.idempotency WHERE create_time < now() - greatest(older_than, interval '24 hours')
            RETURNING 1
          )
          SELECT count(*) FROM swept
        $$
      """,
      "REVOKE ALL ON FUNCTION sweep_idempotency(interval) FROM PUBLIC",
      "GRANT EXECUTE ON FUNCTION sweep_idempotency(interval) TO \"\(serviceRole)\"",
      // Reservations of deleted rows whose release has been pending for a while, of every
      // tenant: the maintenance loop releases them tenant by tenant.
      """
      CREATE FUNCTION due_releases(created_before timestamptz, max_rows integer)
        RETURNS TABLE (tenant_id text, reservation_id text)
        LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
          SELECT p.tenant_id, p.reservation_id FROM registry.pending_releases p
          WHERE p.create_time < created_before
          ORDER BY p.create_time
          LIMIT max_rows
        $$
      """,
      "REVOKE ALL ON FUNCTION due_releases(timestamptz, integer) FROM PUBLIC",
      "GRANT EXECUTE ON FUNCTION due_releases(timestamptz, integer) TO \"\(serviceRole)\"",
    ]
  }
}
