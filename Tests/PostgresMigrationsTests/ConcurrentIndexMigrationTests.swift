import Postgres
import PostgresMigrations
import Testing

/// `Migration.concurrentIndex`: an index built while the table stays writable, and a schema left
/// as it was (or finished) whatever happened to the build.
@Suite("Concurrent index migrations against a real Postgres", .serialized, .timeLimit(.minutes(2)))
struct ConcurrentIndexMigrationTests {
  let byName = Migration.concurrentIndex(3, "widgets_by_name", index: "widgets_by_name", "ON widgets (name)")
  let uniqueNames = Migration.concurrentIndex(3, "unique_widget_names", index: "widgets_unique_name", unique: true, "ON widgets (name)")

  /// Whether `shop.<index>` is valid; nil when there is no such index.
  func validity(_ index: String, _ pool: PostgresPool) async throws -> Bool? {
    let rows = try await pool.query(
      """
      SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
       WHERE c.relnamespace = 'shop'::regnamespace AND c.relname = $1
      """, [index])
    return try rows.first.map { try $0.decode(Bool.self, at: 0) }
  }

  /// A database at migration 2 whose widgets 1 and 2 share a name, so that `uniqueNames` cannot
  /// build until widget 2 is deleted.
  func withTwins(_ name: String, _ body: (Migrator, PostgresPool) async throws -> Void) async throws {
    try await withFreshDatabase(name) { _, pool in
      let migrator = Migrator(pool: pool, logger: quietLogger)
      try await migrator.apply(try plan("shop", widgets))
      _ = try await pool.execute("INSERT INTO shop.widgets (id, name) VALUES (1, 'twin'), (2, 'twin')", [])
      try await body(migrator, pool)
    }
  }

  @Test("an index migration builds its index while the table takes new writes, then records it once")
  func buildsWithoutBlockingWrites() async throws {
    try await withFreshDatabase("migrations_concurrent_index") { database, pool in
      let migrator = Migrator(pool: pool, logger: quietLogger)
      try await migrator.apply(try plan("shop", widgets))
      let others = try PostgresPool(
        configuration: PostgresConfiguration(url: database.ownerURL, minConnections: 0, maxConnections: 3), logger: quietLogger)
      defer { Task { await others.close() } }

      // A writer's transaction stays open across the migration's start: the build waits for it
      // (as any CREATE INDEX would), and the test can see the build waiting.
      let (written, writtenSignal) = AsyncStream<Void>.makeStream()
      let (finish, finishSignal) = AsyncStream<Void>.makeStream()
      let writer = Task {
        try await others.transaction { tx in
          _ = try await tx.execute("INSERT INTO shop.widgets (id, name) VALUES (1, 'open')", [])
          writtenSignal.yield()
          for await _ in finish { break }
        }
      }
      for await _ in written { break }
      let migration = Task { try await migrator.apply(try plan("shop", widgets + [byName])) }
      // Whatever happens here, the writer then commits, so that the build ends and the test too.
      let probe: Result<Void, any Error>
      do {
        var waiting = false
        for _ in 0..<600 where !waiting {
          let rows = try await others.query(
            "SELECT count(*)::bigint FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX%widgets_by_name%' AND wait_event_type = 'Lock'", [])
          waiting = try rows[0].decode(Int64.self, at: 0) == 1
          if !waiting { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(waiting, "the build never waited for the open writer")

        // While the build waits, a new write goes through. Behind a plain CREATE INDEX's SHARE
        // lock, queued after the open writer, it would wait and run into its lock timeout.
        try await others.transaction { tx in
          _ = try await tx.execute("SET LOCAL lock_timeout = '5s'", [])
          _ = try await tx.execute("INSERT INTO shop.widgets (id, name) VALUES (2, 'during')", [])
        }
        probe = .success(())
      } catch {
        probe = .failure(error)
      }
      finishSignal.finish()
      try await writer.value
      try probe.get()
      let report = try await migration.value
      #expect(report.applied == [3])
      #expect(try await validity("widgets_by_name", pool) == true)
      #expect(try await migrator.appliedVersions(try plan("shop", widgets + [byName])) == [1, 2, 3])
      #expect(try await migrator.apply(try plan("shop", widgets + [byName])).applied == [])
    }
  }

  @Test("an index build that fails leaves no index behind and says which migration failed; the next run builds it")
  func failedBuildLeavesNothing() async throws {
    try await withTwins("migrations_concurrent_index_failure") { migrator, pool in
      let withIndex = try plan("shop", widgets + [uniqueNames])
      await #expect {
        try await migrator.apply(withIndex)
      } throws: { error in
        guard case MigrationError.failed(let version, let name, _) = error else { return false }
        return version == 3 && name == "unique_widget_names"
      }
      #expect(try await validity("widgets_unique_name", pool) == nil)
      #expect(try await migrator.appliedVersions(withIndex) == [1, 2])
      // The search path the build set is gone with it: the pool's connections see public again.
      let paths = try await pool.query("SHOW search_path", [])
      #expect(try paths[0].decode(String.self, at: 0) == "\"$user\", public")

      _ = try await pool.execute("DELETE FROM shop.widgets WHERE id = 2", [])
      #expect(try await migrator.apply(withIndex).applied == [3])
      #expect(try await validity("widgets_unique_name", pool) == true)
    }
  }

  @Test("an index left invalid by a run that died is dropped and built again")
  func invalidLeftoverIsRebuilt() async throws {
    try await withTwins("migrations_concurrent_index_leftover") { migrator, pool in
      // What a build that failed (or whose process died) leaves: the index, invalid.
      _ = try? await pool.execute("CREATE UNIQUE INDEX CONCURRENTLY widgets_unique_name ON shop.widgets (name)", [])
      #expect(try await validity("widgets_unique_name", pool) == false)
      _ = try await pool.execute("DELETE FROM shop.widgets WHERE id = 2", [])

      #expect(try await migrator.apply(try plan("shop", widgets + [uniqueNames])).applied == [3])
      #expect(try await validity("widgets_unique_name", pool) == true)
    }
  }

  @Test("an index built by a run that died before recording it is kept, and the migration recorded")
  func validLeftoverIsKept() async throws {
    try await withFreshDatabase("migrations_concurrent_index_built") { _, pool in
      let migrator = Migrator(pool: pool, logger: quietLogger)
      try await migrator.apply(try plan("shop", widgets))
      _ = try await pool.execute("CREATE INDEX widgets_by_name ON shop.widgets (name)", [])
      let oid = "SELECT 'shop.widgets_by_name'::regclass::oid::bigint"
      let before = try await pool.query(oid, [])[0].decode(Int64.self, at: 0)

      #expect(try await migrator.apply(try plan("shop", widgets + [byName])).applied == [3])
      #expect(try await pool.query(oid, [])[0].decode(Int64.self, at: 0) == before)
    }
  }

  @Test("an index name that is not a plain identifier is refused before touching the database")
  func indexNameIsChecked() {
    let spliced = Migration.concurrentIndex(3, "bad", index: "x; DROP TABLE widgets", "ON widgets (name)")
    #expect(throws: MigrationError.self) { try MigrationPlan(schema: "shop", migrations: widgets + [spliced]) }
  }
}
