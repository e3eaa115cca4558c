import Foundation
import MaaSTesting
import Testing

@Suite("PostgresFixture")
struct PostgresFixtureTests {
  @Test("suites asking at once share one cluster, and its app URL connects as maas_app to maas")
  func sharedClusterIsStartedOnce() async throws {
    let clusters = try await withThrowingTaskGroup(of: PostgresTestCluster.self) { group in
      for _ in 0..<8 { group.addTask { try await PostgresFixture.shared() } }
      var clusters: [PostgresTestCluster] = []
      for try await cluster in group { clusters.append(cluster) }
      return clusters
    }
    #expect(Set(clusters.map(\.directory)).count == 1)
    #expect(Set(clusters.map(\.port)).count == 1)
    let cluster = try #require(clusters.first)
    #expect(cluster.appURL == "postgresql://maas_app@127.0.0.1:\(cluster.port)/maas")
    #expect(try await psql(cluster.appURL, "SELECT current_user, current_database()") == "maas_app|maas")
  }

  @Test("neither maas_app nor maas_owner is a superuser or bypasses row-level security")
  func rolesAreUnprivileged() async throws {
    let cluster = try await PostgresFixture.shared()
    let roles = try await psql(cluster.adminURL, """
      SELECT string_agg(rolname || ':' || rolsuper || ':' || rolbypassrls, ',' ORDER BY rolname)
        FROM pg_roles WHERE rolname IN ('maas_app', 'maas_owner')
      """)
    #expect(roles == "maas_app:false:false,maas_owner:false:false")
  }

  @Test("a query without a tenant filter returns no row of another tenant to maas_app")
  func rowLevelSecurityApplies() async throws {
    let database = try await PostgresFixture.shared().createDatabase(named: "fixture_rls")
    _ = try await psql(database.ownerURL, """
      CREATE TABLE things (tenant_id text NOT NULL, name text NOT NULL);
      ALTER TABLE things ENABLE ROW LEVEL SECURITY;
      CREATE POLICY tenant ON things USING (tenant_id = current_setting('maas.tenant_id', true));
      GRANT SELECT ON things TO maas_app;
      INSERT INTO things VALUES ('a', 'a1'), ('a', 'a2'), ('b', 'b1');
      """)
    let seenByA = try await psql(database.appURL, """
      BEGIN; SET LOCAL maas.tenant_id = 'a';
      SELECT string_agg(name, ',' ORDER BY name) FROM things; COMMIT;
      """)
    #expect(seenByA == "a1,a2")
    #expect(try await psql(database.appURL, "SELECT count(*) FROM things") == "0")
  }

  @Test("createDatabase gives an empty database owned by maas_owner, emptied again when recreated")
  func createDatabaseStartsEmpty() async throws {
    let cluster = try await PostgresFixture.shared()
    let first = try await cluster.createDatabase(named: "fixture_create")
    #expect(first.appURL == "postgresql://maas_app@127.0.0.1:\(cluster.port)/fixture_create")
    #expect(try await psql(first.ownerURL, """
      SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()
      """) == "maas_owner")
    _ = try await psql(first.ownerURL, "CREATE TABLE leftover (x int)")
    let second = try await cluster.createDatabase(named: "fixture_create")
    #expect(try await psql(second.ownerURL, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == "0")
  }

  @Test(
    "database names that are not plain lowercase identifiers are refused",
    arguments: ["", "Upper", "semi;colon", "quote\"d", "maas", "postgres", "template1",
                String(repeating: "a", count: 64)])
  func badDatabaseNames(name: String) async throws {
    let cluster = try await PostgresFixture.shared()
    await #expect(throws: PostgresFixtureError.self) { try await cluster.createDatabase(named: name) }
  }

  @Test("a private cluster keeps acknowledged writes across fast and immediate restarts and stop/start")
  func privateClusterKeepsWrites() async throws {
    let cluster = try await PostgresFixture.privateCluster(named: "fixture-restarts")
    let shared = try await PostgresFixture.shared()
    #expect(cluster.port != shared.port)
    #expect(cluster.directory != shared.directory)
    _ = try await psql(cluster.ownerURL, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (1), (2)")
    try await cluster.restart(mode: .fast)
    _ = try await psql(cluster.ownerURL, "INSERT INTO kept VALUES (3)")
    try await cluster.restart(mode: .immediate)
    #expect(try await psql(cluster.ownerURL, "SELECT sum(x) FROM kept") == "6")
    try await cluster.stop()
    await #expect(throws: PSQLFailed.self) { try await psql(cluster.ownerURL, "SELECT 1") }
    #expect(try refusal(ofBindingTo: cluster.port, reusingAddress: false) == EADDRINUSE, "the stopped cluster's port stays its own")
    try await cluster.start()
    #expect(try await psql(cluster.ownerURL, "SELECT sum(x) FROM kept") == "6")
    // The shared cluster was untouched throughout.
    #expect(try await psql(shared.appURL, "SELECT 1") == "1")
    try await cluster.destroy()
    #expect(!FileManager.default.fileExists(atPath: cluster.directory))
  }

  @Test("private cluster names other than lowercase letters, digits and '-' are refused",
        arguments: ["", "Restart", "../escape", "a b"])
  func badClusterNames(name: String) async throws {
    await #expect(throws: PostgresFixtureError.self) { try await PostgresFixture.privateCluster(named: name) }
  }
}
