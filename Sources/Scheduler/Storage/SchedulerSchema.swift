public import PostgresMigrations

/// The `scheduler` schema, which the scheduler service owns (GPU nodes, GPUs, allocations and deployments): its migrations, oldest first,
/// compiled into `maas-scheduler` and applied by `maas-scheduler migrate`. Tables arrive with the
/// service itself; a shipped migration never changes, later ones are appended.
///
/// Two kinds of rows:
/// - **Inventory, fleet-wide** (no `tenant_id`, no row-level security): `nodes`, `gpus` and
///   `placements`. GPUs belong to the platform, not to a tenant, and every placement must see all
///   of them. `gpus` carries each GPU's allocated memory, MIG slices and exclusive flag, kept in
///   step with `placements` in the same transactions; CHECK constraints make an over-allocated
///   GPU impossible to write, whatever a bug above them does. `placements` holds one row per
///   replica and GPU with the allocation's id only: nothing a tenant owns (model, workload,
///   tenant) is in it.
/// - **Tenant-owned**: `allocations` (with the request, the placements as granted, the quota
///   reservation), under row-level security on `maas.tenant_id` like every other service. The
///   operator's cross-tenant views (DrainNode, ListAllocations without a tenant) go through the
///   SECURITY DEFINER functions `node_allocations` (a node's ACTIVE ones, by its placements),
///   `active_allocations` (every ACTIVE one) and `fleet_allocations`, which can only read.
public enum SchedulerSchema {
  public static let name = "scheduler"

  /// - Parameter serviceRole: the role the service connects as (no BYPASSRLS).
  public static func plan(serviceRole: String) throws -> MigrationPlan {
    try MigrationPlan(schema: name, migrations: [
      try .serviceRoleGrants(1, schema: name, role: serviceRole),
      Migration(2, "create_inventory_and_allocations", tables + (try Migration.tenantIsolation(["allocations"])) + [
        // Every tenant's ACTIVE or RELEASED allocations, optionally only those on one node:
        // the operator's view. Runs as the owner, whom row-level security does not bind; reads only.
        """
        CREATE FUNCTION fleet_allocations(only_node text, only_state integer, after_time timestamptz, after_id uuid, max_rows integer)
          RETURNS SETOF scheduler.allocations
          LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            SELECT a.* FROM scheduler.allocations a
             WHERE a.state = only_state
               AND (only_node = '' OR a.placements @> jsonb_build_array(jsonb_build_object('node', only_node)))
               AND (a.create_time, a.id) > (after_time, after_id)
             ORDER BY a.create_time, a.id
             LIMIT max_rows
          $$
        """,
        "REVOKE ALL ON FUNCTION fleet_allocations(text, integer, timestamptz, uuid, integer) FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION fleet_allocations(text, integer, timestamptz, uuid, integer) TO \"\(serviceRole)\"",
      ]),
      Migration(3, "due_quota_releases", [
        // Released allocations whose quota hold is still held (the quota service was down at
        // Release): few, and the maintenance loop reads them often.
        "CREATE INDEX allocations_quota_pending ON allocations (release_time) WHERE state = 2 AND NOT quota_released",
        // Of every tenant, oldest first: the loop then releases each under its tenant.
        """
        CREATE FUNCTION due_quota_releases(released_before timestamptz, max_rows integer)
          RETURNS TABLE (tenant_id text, id uuid)
          LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            SELECT a.tenant_id, a.id FROM scheduler.allocations a
             WHERE a.state = 2 AND NOT a.quota_released AND a.release_time < released_before
             ORDER BY a.release_time
             LIMIT max_rows
          $$
        """,
        "REVOKE ALL ON FUNCTION due_quota_releases(timestamptz, integer) FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION due_quota_releases(timestamptz, integer) TO \"\(serviceRole)\"",
      ]),
      Migration(4, "quota_intents", [
        // A Schedule's quota key, written (and committed) before the transaction that takes the
        // quota and writes the allocation, so that a replica dying inside that transaction leaves
        // a trace: the allocation's id names both the intent and the quota key. See
        // SchedulerStore+QuotaIntents.swift.
        """
        CREATE TABLE quota_intents (
          allocation_id uuid PRIMARY KEY,
          tenant_id text NOT NULL,
          amount bigint NOT NULL CHECK (amount > 0),
          create_time timestamptz NOT NULL
        )
        """,
        "CREATE INDEX quota_intents_by_time ON quota_intents (create_time)",
      ] + (try Migration.tenantIsolation(["quota_intents"])) + [
        // Of every tenant: intents older than `before` whose allocation was written are done
        // with (most of them: every successful Schedule leaves one). Runs as the owner, whom
        // row-level security does not bind; deletes only those.
        """
        CREATE FUNCTION settle_quota_intents(before timestamptz) RETURNS integer
          LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            WITH settled AS (
              DELETE FROM scheduler.quota_intents i
               WHERE i.create_time < before
                 AND EXISTS (SELECT 1 FROM scheduler.allocations a WHERE a.id = i.allocation_id)
              RETURNING 1
            )
            SELECT count(*)::integer FROM settled
          $$
        """,
        "REVOKE ALL ON FUNCTION settle_quota_intents(timestamptz) FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION settle_quota_intents(timestamptz) TO \"\(serviceRole)\"",
        // The rest, oldest first: the loop looks at each under its tenant.
        """
        CREATE FUNCTION due_quota_intents(before timestamptz, max_rows integer)
          RETURNS TABLE (tenant_id text, allocation_id uuid, amount bigint)
          LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            SELECT i.tenant_id, i.allocation_id, i.amount FROM scheduler.quota_intents i
             WHERE i.create_time < before
             ORDER BY i.create_time
             LIMIT max_rows
          $$
        """,
        "REVOKE ALL ON FUNCTION due_quota_intents(timestamptz, integer) FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION due_quota_intents(timestamptz, integer) TO \"\(serviceRole)\"",
      ]),
      Migration(5, "mark_quota_released", [
        // Released allocations whose quota hold was given back, of every tenant, marked in one
        // statement (see `SchedulerStore.flushQuotaMarks`). Runs as the owner, whom row-level
        // security does not bind; sets only that flag, only on released allocations.
        """
        CREATE FUNCTION mark_quota_released(ids uuid[]) RETURNS integer
          LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            WITH marked AS (
              UPDATE scheduler.allocations a SET quota_released = true
               WHERE a.id = ANY (ids) AND a.state = 2 AND NOT a.quota_released
              RETURNING 1
            )
            SELECT count(*)::integer FROM marked
          $$
        """,
        "REVOKE ALL ON FUNCTION mark_quota_released(uuid[]) FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION mark_quota_released(uuid[]) TO \"\(serviceRole)\"",
      ]),
      Migration(6, "mig_positions", migPositions),
      Migration(7, "allocation_listings_by_state_and_node", [
        // A tenant's listing is of one state: walked by state, it no longer passes every
        // RELEASED allocation the tenant ever had to find its ACTIVE ones. The state moves only
        // with an update that writes every index anyway (a partial index depends on it), so
        // the key costs a placement nothing more.
        "CREATE INDEX allocations_by_state_and_time ON allocations (tenant_id, state, create_time, id)",
        "DROP INDEX allocations_by_time",
        // Every tenant's ACTIVE allocations on one node (DrainNode's list), found through the
        // node's placements rows (only ACTIVE allocations have them) instead of every
        // allocation's JSON. Owner's rights like fleet_allocations; reads only.
        """
        CREATE FUNCTION node_allocations(on_node text, after_time timestamptz, after_id uuid, max_rows integer)
          RETURNS SETOF scheduler.allocations
          LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            SELECT a.* FROM scheduler.allocations a
             WHERE a.id IN (SELECT p.allocation_id FROM scheduler.placements p WHERE p.node_name = on_node)
               AND a.state = 1 AND (a.create_time, a.id) > (after_time, after_id)
             ORDER BY a.create_time, a.id
             LIMIT max_rows
          $$
        """,
        "REVOKE ALL ON FUNCTION node_allocations(text, timestamptz, uuid, integer) FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION node_allocations(text, timestamptz, uuid, integer) TO \"\(serviceRole)\"",
      ]),
      Migration(8, "purge_released_allocations", [
        // RELEASED allocations past the retention, of every tenant, deleted at most `max_rows`
        // at a time (see `SchedulerStore.purgeReleasedAllocations`). Only those whose quota hold
        // was given back: the rest are the quota release retry's to finish. Owner's rights, as
        // mark_quota_released; deletes nothing ACTIVE. No index serves it: a scan every few
        // minutes costs less than an index entry on every Release.
        """
        CREATE FUNCTION purge_released_allocations(released_before timestamptz, max_rows integer) RETURNS integer
          LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            WITH doomed AS (
              SELECT a.id FROM scheduler.allocations a
               WHERE a.state = 2 AND a.quota_released AND a.release_time < released_before
               LIMIT max_rows FOR UPDATE SKIP LOCKED
            ), gone AS (
              DELETE FROM scheduler.allocations a USING doomed d WHERE a.id = d.id AND a.state = 2 RETURNING 1
            )
            SELECT count(*)::integer FROM gone
          $$
        """,
        "REVOKE ALL ON FUNCTION purge_released_allocations(timestamptz, integer) FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION purge_released_allocations(timestamptz, integer) TO \"\(serviceRole)\"",
      ]),
      // The operator's fleet-wide view of what runs (`active_allocations`, migration 10) reads
      // one page of the ACTIVE allocations in time order, not every allocation ever released
      // (`fleet_allocations`) nor every ACTIVE one (all that `allocations_active_workload`
      // offers, out of order). Partial: a placement adds one entry and its Release none (the
      // released row version is outside it); an index of every state cost a placement about
      // three times the WAL of this one (pgbench, batched-placement-writes.sql at B=1).
      // Built concurrently: the table holds a week of placements at the retention's default,
      // and Schedule and Release write to it all the while.
      .concurrentIndex(9, "fleet_active_allocations_by_time", index: "allocations_fleet_active", "ON allocations (create_time, id) WHERE state = 1"),
      // Every tenant's ACTIVE allocations (the operator's view of what runs) through that index:
      // the state a constant, which a partial index needs (fleet_allocations' parameter would not
      // prove the predicate). Owner's rights like node_allocations; reads only.
      Migration(10, "active_allocations", [
        """
        CREATE FUNCTION active_allocations(after_time timestamptz, after_id uuid, max_rows integer)
          RETURNS SETOF scheduler.allocations
          LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
            SELECT a.* FROM scheduler.allocations a
             WHERE a.state = 1 AND (a.create_time, a.id) > (after_time, after_id)
             ORDER BY a.create_time, a.id
             LIMIT max_rows
          $$
        """,
        "REVOKE ALL ON FUNCTION active_allocations(timestamptz, uuid, integer) FROM PUBLIC",
        "GRANT EXECUTE ON FUNCTION active_allocations(timestamptz, uuid, integer) TO \"\(serviceRole)\"",
      ]),
    ])
  }

  /// Where each MIG instance sits on its GPU (`MIGLayout`): `placements.mig_start`, and the
  /// positions held on each GPU as a bit mask, `gpus.allocated_mig_mask`. Instances placed before
  /// (counted by slices only) get positions here by the same rule as `MIGLayout.start`, largest
  /// first, written into the stored claims too; one that finds no free position (a layout that
  /// slice counting admitted and no GPU could hold) keeps position 0, with a WARNING naming it.
  static let migPositions = [
    "ALTER TABLE placements ADD COLUMN mig_start integer NOT NULL DEFAULT 0 CHECK (mig_start >= 0)",
    "ALTER TABLE gpus ADD COLUMN allocated_mig_mask bigint NOT NULL DEFAULT 0",
    """
    DO $$
    DECLARE
      g record;
      p record;
      occupied bigint;
      width integer;
      block bigint;
      start integer;
      waste integer;
      best integer;
      best_waste integer;
    BEGIN
      FOR g IN SELECT uuid, mig_slices FROM gpus WHERE allocated_mig_slices > 0 ORDER BY uuid LOOP
        occupied := 0;
        FOR p IN SELECT allocation_id, replica, mig_slices FROM placements
                  WHERE gpu_uuid = g.uuid AND mig_slices > 0 ORDER BY mig_slices DESC, allocation_id, replica LOOP
          width := 1;
          WHILE width < p.mig_slices LOOP width := width * 2; END LOOP;
          block := CASE WHEN width >= 64 THEN -1 ELSE (1::bigint << width) - 1 END;
          best := NULL;
          start := 0;
          WHILE start + p.mig_slices <= g.mig_slices LOOP
            IF occupied & (block << start) = 0 THEN
              waste := least(start + width, g.mig_slices) - start - p.mig_slices;
              IF best IS NULL OR waste < best_waste OR (waste = best_waste AND start > best) THEN
                best := start;
                best_waste := waste;
              END IF;
            END IF;
            start := start + width;
          END LOOP;
          IF best IS NULL THEN
            RAISE WARNING 'MIG instance of % slices (allocation %, replica %) has no free position on GPU %; it keeps position 0',
              p.mig_slices, p.allocation_id, p.replica, g.uuid;
            best := 0;
          END IF;
          occupied := occupied | (block << best);
          UPDATE placements SET mig_start = best
           WHERE allocation_id = p.allocation_id AND replica = p.replica AND gpu_uuid = g.uuid;
          UPDATE allocations SET placements = jsonb_set(placements, ARRAY[p.replica::text, 'claims', '0', 'migStart'], to_jsonb(best))
           WHERE id = p.allocation_id;
        END LOOP;
        UPDATE gpus SET allocated_mig_mask = occupied WHERE uuid = g.uuid;
      END LOOP;
    END
    $$
    """,
    """
    ALTER TABLE gpus ADD CONSTRAINT gpus_mig_mask_with_slices
      CHECK ((allocated_mig_slices = 0) = (allocated_mig_mask = 0) AND (NOT exclusive OR allocated_mig_mask = 0))
    """,
  ]

  static let tables = [
    """
    CREATE TABLE nodes (
      name text PRIMARY KEY,
      labels jsonb NOT NULL DEFAULT '{}',
      cordoned boolean NOT NULL DEFAULT false,
      draining boolean NOT NULL DEFAULT false,
      cordon_reason text NOT NULL DEFAULT '',
      last_heartbeat_time timestamptz NOT NULL,
      create_time timestamptz NOT NULL,
      update_time timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE gpus (
      uuid text PRIMARY KEY,
      node_name text NOT NULL REFERENCES nodes ON DELETE CASCADE,
      position integer NOT NULL,
      model text NOT NULL,
      memory_bytes bigint NOT NULL CHECK (memory_bytes > 0),
      mig_slices integer NOT NULL DEFAULT 0 CHECK (mig_slices >= 0),
      mig_profiles jsonb NOT NULL DEFAULT '[]',
      allocated_memory_bytes bigint NOT NULL DEFAULT 0,
      allocated_mig_slices integer NOT NULL DEFAULT 0,
      exclusive boolean NOT NULL DEFAULT false,
      CHECK (allocated_memory_bytes BETWEEN 0 AND memory_bytes),
      CHECK (allocated_mig_slices BETWEEN 0 AND mig_slices),
      CHECK (NOT exclusive OR (allocated_memory_bytes = 0 AND allocated_mig_slices = 0))
    )
    """,
    "CREATE INDEX gpus_by_node ON gpus (node_name, position)",
    """
    CREATE TABLE allocations (
      id uuid PRIMARY KEY,
      tenant_id text NOT NULL,
      workload_id text NOT NULL,
      request jsonb NOT NULL,
      priority integer NOT NULL,
      placements jsonb NOT NULL,
      state integer NOT NULL CHECK (state IN (1, 2)),
      quota_reservation_id text NOT NULL,
      quota_released boolean NOT NULL DEFAULT false,
      create_time timestamptz NOT NULL,
      release_time timestamptz
    )
    """,
    // Schedule is idempotent by workload: one ACTIVE allocation per tenant and workload_id, even
    // when two scheduler replicas race with the same request.
    "CREATE UNIQUE INDEX allocations_active_workload ON allocations (tenant_id, workload_id) WHERE state = 1",
    "CREATE INDEX allocations_by_time ON allocations (tenant_id, create_time, id)",
    """
    CREATE TABLE placements (
      allocation_id uuid NOT NULL REFERENCES allocations ON DELETE CASCADE,
      replica integer NOT NULL,
      gpu_uuid text NOT NULL REFERENCES gpus,
      node_name text NOT NULL,
      memory_bytes bigint NOT NULL,
      mig_slices integer NOT NULL,
      exclusive boolean NOT NULL,
      PRIMARY KEY (allocation_id, replica, gpu_uuid)
    )
    """,
    "CREATE INDEX placements_by_gpu ON placements (gpu_uuid)",
    "CREATE INDEX placements_by_node ON placements (node_name)",
    // A second guard under the counters on `gpus`: one exclusive holder per GPU.
    "CREATE UNIQUE INDEX placements_one_exclusive ON placements (gpu_uuid) WHERE exclusive",
  ]
}
