import MaaSTesting
import Postgres
import PostgresMigrations
import Testing

/// The tenancy pattern every service's tenant-owned tables follow: a `tenant_id` column, an index
/// that leads with it, and a policy on `current_setting('maas.tenant_id')` enforced for the role
/// the services connect as (`maas_app`, which has no BYPASSRLS).
func tenantTables() throws -> [Migration] {
  [
    Migration(1, "create_notes", [
      """
      CREATE TABLE notes (
        tenant_id text NOT NULL,
        id bigint NOT NULL,
        body text NOT NULL,
        PRIMARY KEY (tenant_id, id)
      )
      """,
    ] + (try Migration.tenantIsolation(["notes"])) + [
      "GRANT USAGE ON SCHEMA tenancy TO maas_app",
      "GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO maas_app",
    ]),
  ]
}

@Suite("Row-level security holds tenants apart even in unscoped queries", .serialized, .timeLimit(.minutes(2)))
struct RowLevelSecurityTests {
  func withTenantTables(
    _ name: String,
    _ body: (PostgresPool) async throws -> Void
  ) async throws {
    try await withFreshDatabase(name) { database, owner in
      let plan = try MigrationPlan(schema: "tenancy", migrations: try tenantTables())
      try await Migrator(pool: owner, logger: quietLogger).apply(plan)
      let app = try PostgresPool(
        configuration: PostgresConfiguration(url: database.appURL, minConnections: 0, maxConnections: 4),
        logger: quietLogger
      )
      do {
        for (tenant, id, body) in [("tenant-a", 1, "a1"), ("tenant-a", 2, "a2"), ("tenant-b", 3, "b1")] {
          try await app.transaction(tenant: tenant) { tx in
            _ = try await tx.execute("INSERT INTO tenancy.notes (tenant_id, id, body) VALUES ($1, $2, $3)", [tenant, id, body])
          }
        }
        try await body(app)
        await app.close()
      } catch {
        await app.close()
        throw error
      }
    }
  }

  @Test("a query that forgets its tenant filter still returns only the current tenant's rows")
  func unscopedQuerySeesOneTenant() async throws {
    try await withTenantTables("rls_unscoped") { app in
      let bodies = try await app.transaction(tenant: "tenant-a") { tx in
        try await tx.query("SELECT body FROM tenancy.notes ORDER BY id", []).map { try $0.decode(String.self, at: 0) }
      }
      #expect(bodies == ["a1", "a2"])
    }
  }

  @Test("a table name that is not a plain identifier is refused before it reaches SQL")
  func tenantIsolationRefusesBadNames() {
    #expect(throws: MigrationError.self) { try Migration.tenantIsolation(["notes; DROP TABLE notes"]) }
  }

  @Test("with no tenant set, the service role sees no rows at all")
  func noTenantSeesNothing() async throws {
    try await withTenantTables("rls_no_tenant") { app in
      let count = try await app.query("SELECT count(*) FROM tenancy.notes", [])
      #expect(try count.first?.decode(Int64.self, at: 0) == 0)
    }
  }

  @Test("one tenant can neither write rows for another nor change or delete its rows")
  func crossTenantWritesFail() async throws {
    try await withTenantTables("rls_writes") { app in
      await #expect(throws: PostgresError.self) {
        try await app.transaction(tenant: "tenant-a") { tx in
          _ = try await tx.execute("INSERT INTO tenancy.notes (tenant_id, id, body) VALUES ($1, $2, $3)", ["tenant-b", 9, "forged"])
        }
      }
      let touched = try await app.transaction(tenant: "tenant-a") { tx in
        let updated = try await tx.execute("UPDATE tenancy.notes SET body = 'hijacked' WHERE id = $1", [3])
        let deleted = try await tx.execute("DELETE FROM tenancy.notes WHERE id = $1", [3])
        return updated + deleted
      }
      #expect(touched == 0)
      let bBodies = try await app.transaction(tenant: "tenant-b") { tx in
        try await tx.query("SELECT body FROM tenancy.notes", []).map { try $0.decode(String.self, at: 0) }
      }
      #expect(bBodies == ["b1"])
    }
  }

  @Test("the tenant setting ends with its transaction")
  func tenantDoesNotLeakAcrossTransactions() async throws {
    try await withTenantTables("rls_scope") { app in
      // One connection, so the second statement would see a leaked session setting.
      let counts = try await app.withConnection { connection -> [Int64] in
        var counts: [Int64] = []
        _ = try await connection.execute("BEGIN", [])
        _ = try await connection.query("SELECT set_config('maas.tenant_id', $1, true)", ["tenant-a"])
        counts.append(try await connection.query("SELECT count(*) FROM tenancy.notes", [])[0].decode(Int64.self, at: 0))
        _ = try await connection.execute("COMMIT", [])
        counts.append(try await connection.query("SELECT count(*) FROM tenancy.notes", [])[0].decode(Int64.self, at: 0))
        return counts
      }
      #expect(counts == [2, 0])
    }
  }

  @Test("the service role cannot bypass row-level security")
  func serviceRoleHasNoBypass() async throws {
    try await withTenantTables("rls_role") { app in
      let rows = try await app.query("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user", [])
      #expect(try rows.first?.decode(Bool.self, at: 0) == false)
      #expect(try rows.first?.decode(Bool.self, at: 1) == false)
    }
  }
}
