import Postgres
import Testing

@Suite("Prepared statements per connection")
struct StatementCacheTests {
  @Test("A statement is prepared once per connection and reused")
  func preparedOnce() async throws {
    try await withPool({ $0.maxConnections = 1 }) { pool in
      for number in 1...5 {
        let echoed = try await pool.query("SELECT $1::int8 AS n /* prepared once */", [number])[0].decode(Int.self, column: "n")
        #expect(echoed == number)
      }
      let prepared = try await pool.query(
        "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE $1", ["%prepared once%"])
      #expect(try prepared[0].decode(Int.self, column: "n") == 1)
    }
  }

  @Test("A transaction's settings are one prepared statement, run again by every transaction, each with its own values")
  func transactionSettingsArePrepared() async throws {
    try await withPool({ $0.maxConnections = 1 }) { pool in
      for tenant in ["t1", "t2", "t3"] {
        let seen = try await pool.transaction(tenant: tenant, statementTimeout: .seconds(7)) { tx in
          try await tx.query("SELECT current_setting('maas.tenant_id') AS t, current_setting('statement_timeout') AS s", [])[0]
        }
        #expect(try seen.decode(String.self, column: "t") == tenant)
        #expect(try seen.decode(String.self, column: "s") == "7s")
      }
      let row = try await pool.query(
        "SELECT count(*) AS n, coalesce(sum(generic_plans + custom_plans), 0)::int8 AS runs FROM pg_prepared_statements WHERE statement LIKE $1",
        ["SELECT set_config(%"])[0]
      #expect(try row.decode(Int.self, column: "n") == 1)
      #expect(try row.decode(Int.self, column: "runs") == 3)
    }
  }

  @Test("With generic plans a prepared statement is planned once, not on every execution")
  func genericPlans() async throws {
    for generic in [false, true] {
      try await withPool({
        $0.maxConnections = 1
        $0.genericPlans = generic
      }) { pool in
        let sql = "SELECT $1::int8 + $2::int8 AS n /* plans \(generic) */"
        for number in 1...8 { _ = try await pool.query(sql, [number, number]) }
        let row = try await pool.query(
          "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1", [sql])[0]
        let (genericCount, customCount) = (try row.decode(Int.self, column: "generic_plans"), try row.decode(Int.self, column: "custom_plans"))
        if generic {
          #expect(customCount == 0)
          #expect(genericCount == 8)
        } else {
          // The server's `auto`: custom plans for the first five executions at least.
          #expect(customCount >= 5)
        }
      }
    }
  }

  @Test("A cached statement whose table changed shape is prepared again instead of failing")
  func schemaChange() async throws {
    try await withPool({ $0.maxConnections = 1 }) { pool in
      _ = try await pool.execute("CREATE TABLE cache_shape (a int4)")
      _ = try await pool.execute("INSERT INTO cache_shape VALUES (1)")
      #expect(try await pool.query("SELECT * FROM cache_shape", []).columns.count == 1)
      _ = try await pool.execute("ALTER TABLE cache_shape ADD COLUMN b text")
      #expect(try await pool.query("SELECT * FROM cache_shape", []).columns.count == 2)
      _ = try await pool.execute("DEALLOCATE ALL")
      #expect(try await pool.query("SELECT * FROM cache_shape", []).count == 1)
    }
  }

  @Test("The cache evicts the least recently used statements beyond its capacity, and can be off")
  func evictionAndNoCache() async throws {
    try await withPool({
      $0.maxConnections = 1
      $0.statementCacheCapacity = 2
    }) { pool in
      for round in 1...2 {
        for number in 1...5 {
          let sql = "SELECT \(number) + $1::int8 AS n /* eviction */"
          #expect(try await pool.query(sql, [round])[0].decode(Int.self, column: "n") == number + round)
        }
      }
      let prepared = try await pool.query("SELECT count(*) AS n FROM pg_prepared_statements", [])[0].decode(Int.self, column: "n")
      #expect(prepared <= 3)
    }
    try await withPool({
      $0.maxConnections = 1
      $0.statementCacheCapacity = 0
    }) { pool in
      #expect(try await pool.query("SELECT $1::text AS s", ["unprepared"])[0].decode(String.self, column: "s") == "unprepared")
      let prepared = try await pool.query("SELECT count(*) AS n FROM pg_prepared_statements", [])[0].decode(Int.self, column: "n")
      #expect(prepared == 0)
    }
  }
}
