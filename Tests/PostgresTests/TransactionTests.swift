import MaaSTesting
import Postgres
import Synchronization
import Testing

struct Rejected: Error {}

@Suite("Transactions")
struct TransactionTests {
  @Test("A transaction commits what its closure did, and rolls all of it back when the closure throws")
  func commitAndRollback() async throws {
    try await withPool { pool in
      _ = try await pool.execute("CREATE TABLE tx_items (name text PRIMARY KEY)")
      let value = try await pool.transaction { tx in
        _ = try await tx.execute("INSERT INTO tx_items VALUES ($1)", ["kept"])
        return 7
      }
      #expect(value == 7)
      await #expect(throws: Rejected.self) {
        try await pool.transaction { tx in
          _ = try await tx.execute("INSERT INTO tx_items VALUES ($1)", ["dropped"])
          throw Rejected()
        }
      }
      let names = try await pool.query("SELECT name FROM tx_items ORDER BY name", []).map { try $0.decode(String.self, column: "name") }
      #expect(names == ["kept"])
    }
  }

  @Test("A serialization failure reruns the whole closure, which then sees the other transaction's write")
  func serializationFailureIsRetried() async throws {
    let retries = Locked<[Duration]>([])
    try await withPool(sleep: { delay in retries.withLock { $0.append(delay) } }) { pool in
      _ = try await pool.execute("CREATE TABLE tx_counter (id int4 PRIMARY KEY, value int8 NOT NULL)")
      _ = try await pool.execute("INSERT INTO tx_counter VALUES (1, 0)")
      let attempts = Locked(0)
      try await pool.transaction(isolation: .serializable) { tx in
        let attempt = attempts.withLock { attempts in
          attempts += 1
          return attempts
        }
        let value = try await tx.query("SELECT value FROM tx_counter WHERE id = 1", [])[0].decode(Int64.self, column: "value")
        if attempt == 1 {
          // Another session changes the row after this transaction's snapshot was taken.
          _ = try await pool.execute("UPDATE tx_counter SET value = value + 1 WHERE id = 1")
        }
        _ = try await tx.execute("UPDATE tx_counter SET value = $1 WHERE id = 1", [value + 1])
      }
      #expect(attempts.value == 2)
      #expect(retries.value.count == 1)
      let total = try await pool.query("SELECT value FROM tx_counter WHERE id = 1", [])[0].decode(Int64.self, column: "value")
      #expect(total == 2)
    }
  }

  @Test("Concurrent serializable read-then-increment transactions from many tasks end with the exact total")
  func concurrentIncrements() async throws {
    try await withPool({
      $0.maxConnections = 4
      $0.transactionMaxAttempts = 200
      $0.transactionRetryBackoff = PostgresBackoff(initial: .milliseconds(1), maximum: .milliseconds(50), jitter: 1)
    }) { pool in
      _ = try await pool.execute("CREATE TABLE tx_concurrent (id int4 PRIMARY KEY, value int8 NOT NULL)")
      _ = try await pool.execute("INSERT INTO tx_concurrent VALUES (1, 0)")
      let tasks = 8
      let increments = 15
      try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<tasks {
          group.addTask {
            for _ in 0..<increments {
              try await pool.transaction(isolation: .serializable) { tx in
                let value = try await tx.query("SELECT value FROM tx_concurrent WHERE id = 1", [])[0].decode(Int64.self, column: "value")
                _ = try await tx.execute("UPDATE tx_concurrent SET value = $1 WHERE id = 1", [value + 1])
              }
            }
          }
        }
        try await group.waitForAll()
      }
      let total = try await pool.query("SELECT value FROM tx_concurrent WHERE id = 1", [])[0].decode(Int.self, column: "value")
      #expect(total == tasks * increments)
    }
  }

  @Test("A deadlock fails one of the two transactions, which is run again and succeeds")
  func deadlockIsRetried() async throws {
    try await withPool { pool in
      _ = try await pool.execute("CREATE TABLE tx_locks (id int4 PRIMARY KEY, n int4 NOT NULL)")
      _ = try await pool.execute("INSERT INTO tx_locks VALUES (1, 0), (2, 0)")
      let attempts = Locked(0)
      let firstHeld = Signal()
      let secondHeld = Signal()
      // Each locks one row, waits until the other holds the other row, then wants it: a cycle
      // the server breaks after deadlock_timeout by failing one of them with 40P01.
      func lockInOrder(_ first: Int32, _ second: Int32, held: Signal, other: Signal) async throws {
        try await pool.transaction { tx in
          let attempt = attempts.withLock { attempts in
            attempts += 1
            return attempts
          }
          _ = try await tx.execute("UPDATE tx_locks SET n = n + 1 WHERE id = $1", [first])
          if attempt <= 2 {
            held.fire()
            await other.wait()
          }
          _ = try await tx.execute("UPDATE tx_locks SET n = n + 1 WHERE id = $1", [second])
        }
      }
      async let one: Void = lockInOrder(1, 2, held: firstHeld, other: secondHeld)
      async let two: Void = lockInOrder(2, 1, held: secondHeld, other: firstHeld)
      _ = try await (one, two)
      #expect(attempts.value == 3)
      let counts = try await pool.query("SELECT n FROM tx_locks ORDER BY id", []).map { try $0.decode(Int.self, column: "n") }
      #expect(counts == [2, 2])
    }
  }

  @Test("Retries stop after transactionMaxAttempts, with the server's error")
  func retriesAreBounded() async throws {
    try await withPool({ $0.transactionMaxAttempts = 3 }, sleep: { _ in }) { pool in
      let attempts = Locked(0)
      let error = await #expect(throws: PostgresError.self) {
        try await pool.transaction { tx in
          attempts.withLock { $0 += 1 }
          // RAISE with an SQLSTATE of our choosing stands in for a real conflict.
          _ = try await tx.execute("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
        }
      }
      #expect(error?.isSerializationFailure == true)
      #expect(attempts.value == 3)
    }
  }

  @Test("A closure that swallows a statement's error still fails the transaction with that error")
  func swallowedErrorStillFails() async throws {
    try await withPool { pool in
      _ = try await pool.execute("CREATE TABLE tx_swallowed (name text PRIMARY KEY)")
      _ = try await pool.execute("INSERT INTO tx_swallowed VALUES ('taken')")
      let error = await #expect(throws: PostgresError.self) {
        try await pool.transaction { tx in
          _ = try await tx.execute("INSERT INTO tx_swallowed VALUES ($1)", ["new"])
          _ = try? await tx.execute("INSERT INTO tx_swallowed VALUES ($1)", ["taken"])
        }
      }
      #expect(error?.isUniqueViolation == true)
      let count = try await pool.query("SELECT count(*) AS n FROM tx_swallowed", [])[0].decode(Int.self, column: "n")
      #expect(count == 1)
    }
  }

  @Test("queryAndCommit runs the last statement and COMMIT together, and the transaction is then over")
  func queryAndCommit() async throws {
    try await withPool { pool in
      _ = try await pool.execute("CREATE TABLE tx_final (name text PRIMARY KEY)")
      let inserted = try await pool.transaction { tx in
        _ = try await tx.execute("INSERT INTO tx_final VALUES ($1)", ["first"])
        let rows = try await tx.queryAndCommit("INSERT INTO tx_final VALUES ($1) RETURNING name", ["second"])
        let after = await #expect(throws: PostgresError.self) { _ = try await tx.query("SELECT 1", []) }
        #expect(after?.kind == .invalidUse)
        return try rows.map { try $0.decode(String.self, at: 0) }
      }
      #expect(inserted == ["second"])
      let names = try await pool.query("SELECT name FROM tx_final ORDER BY name", []).map { try $0.decode(String.self, at: 0) }
      #expect(names == ["first", "second"])
    }
  }

  @Test("A failing final statement commits nothing of the transaction")
  func failingFinalStatement() async throws {
    try await withPool { pool in
      _ = try await pool.execute("CREATE TABLE tx_final_fail (name text PRIMARY KEY)")
      let error = await #expect(throws: PostgresError.self) {
        try await pool.transaction { tx in
          _ = try await tx.execute("INSERT INTO tx_final_fail VALUES ($1)", ["kept?"])
          _ = try await tx.queryAndCommit("INSERT INTO tx_final_fail VALUES ($1)", ["kept?"])
        }
      }
      #expect(error?.sqlState == "23505")
      let count = try await pool.query("SELECT count(*)::bigint FROM tx_final_fail", [])[0].decode(Int64.self, at: 0)
      #expect(count == 0)
      // The connection is clean again: the next transaction works.
      try await pool.transaction { tx in _ = try await tx.queryAndCommit("INSERT INTO tx_final_fail VALUES ($1)", ["a"]) }
      #expect(try await pool.query("SELECT count(*)::bigint FROM tx_final_fail", [])[0].decode(Int64.self, at: 0) == 1)
    }
  }

  @Test("A batch goes out with BEGIN in one round trip, and each of its statements sees what the ones before it wrote")
  func batchInOneRoundTrip() async throws {
    try await withPool { pool in
      _ = try await pool.execute("CREATE TABLE tx_batch (name text PRIMARY KEY)")
      let before = pool.roundTrips
      let rows = try await pool.transaction { tx in
        try await tx.queryBatch([
          PostgresStatement("INSERT INTO tx_batch VALUES ($1)", ["first"]),
          PostgresStatement("INSERT INTO tx_batch SELECT name || $1 FROM tx_batch", ["+"]),
          PostgresStatement("SELECT name FROM tx_batch ORDER BY name"),
        ])
      }
      // The batch with BEGIN, then COMMIT.
      #expect(pool.roundTrips - before == 2)
      #expect(rows.map(\.affectedRows) == [1, 1, 2])
      #expect(try rows[2].map { try $0.decode(String.self, at: 0) } == ["first", "first+"])
    }
  }

  @Test("A statement committed first goes out with the batch and BEGIN in one round trip, and stays committed when the transaction rolls back")
  func committedFirstInOneRoundTrip() async throws {
    try await withPool { pool in
      _ = try await pool.execute("CREATE TABLE tx_first_intent (name text PRIMARY KEY, tenant text NOT NULL)")
      _ = try await pool.execute("CREATE TABLE tx_first_work (name text PRIMARY KEY)")
      let before = pool.roundTrips
      let rows = try await pool.transaction(tenant: "acme") { tx in
        try await tx.queryBatch(
          [
            PostgresStatement("SELECT count(*)::bigint FROM tx_first_intent"),
            PostgresStatement("INSERT INTO tx_first_work VALUES ($1)", ["work"]),
          ],
          committedFirst: PostgresStatement(
            "INSERT INTO tx_first_intent VALUES ($1, current_setting('maas.tenant_id'))", ["intent"]))
      }
      // The intent, BEGIN and the batch in one round trip, then COMMIT.
      #expect(pool.roundTrips - before == 2)
      // The batch sees the intent (committed before it began), written with the transaction's settings.
      #expect(try rows[0][0].decode(Int64.self, at: 0) == 1)
      #expect(try await pool.query("SELECT tenant FROM tx_first_intent", [])[0].decode(String.self, at: 0) == "acme")

      // A transaction that fails after it keeps the intent and writes nothing of its own.
      await #expect(throws: PostgresError.self) {
        try await pool.transaction { tx in
          _ = try await tx.queryBatch(
            [PostgresStatement("INSERT INTO tx_first_work VALUES ($1)", ["work"])],
            committedFirst: PostgresStatement("INSERT INTO tx_first_intent VALUES ($1, 'x')", ["kept"]))
        }
      }
      let intents = try await pool.query("SELECT name FROM tx_first_intent ORDER BY name", []).map { try $0.decode(String.self, at: 0) }
      #expect(intents == ["intent", "kept"])
      #expect(try await pool.query("SELECT count(*)::bigint FROM tx_first_work", [])[0].decode(Int64.self, at: 0) == 1)
    }
  }

  @Test("A statement committed first that fails fails the batch, which runs nothing, and the connection is clean after")
  func failingCommittedFirst() async throws {
    try await withPool { pool in
      _ = try await pool.execute("CREATE TABLE tx_first_taken (name text PRIMARY KEY)")
      _ = try await pool.execute("CREATE TABLE tx_first_after (name text PRIMARY KEY)")
      _ = try await pool.execute("INSERT INTO tx_first_taken VALUES ('taken')")
      let error = await #expect(throws: PostgresError.self) {
        try await pool.transaction { tx in
          _ = try await tx.queryBatch(
            [PostgresStatement("INSERT INTO tx_first_after VALUES ($1)", ["after"])],
            committedFirst: PostgresStatement("INSERT INTO tx_first_taken VALUES ($1)", ["taken"]))
        }
      }
      #expect(error?.isUniqueViolation == true)
      #expect(try await pool.query("SELECT count(*)::bigint FROM tx_first_after", [])[0].decode(Int64.self, at: 0) == 0)
      // Only as the first round trip of a transaction.
      let misuse = await #expect(throws: PostgresError.self) {
        try await pool.transaction { tx in
          _ = try await tx.execute("INSERT INTO tx_first_after VALUES ($1)", ["a"])
          _ = try await tx.queryBatch(
            [PostgresStatement("SELECT 1")], committedFirst: PostgresStatement("INSERT INTO tx_first_taken VALUES ($1)", ["b"]))
        }
      }
      #expect(misuse?.kind == .invalidUse)
      let names = try await pool.query("SELECT name FROM tx_first_taken UNION ALL SELECT name FROM tx_first_after", [])
      #expect(try names.map { try $0.decode(String.self, at: 0) } == ["taken"])
      // Every connection of the pool is usable again.
      for _ in 0..<4 {
        try await pool.transaction { tx in _ = try await tx.queryAndCommit("SELECT 1", []) }
      }
    }
  }

  @Test("A batch statement that starts after an earlier one waited for a lock sees what the lock's holder committed meanwhile")
  func batchSeesWhatTheLockHolderCommitted() async throws {
    try await withPool { pool in
      _ = try await pool.execute("CREATE TABLE tx_batch_lock (id int4 PRIMARY KEY, n int8 NOT NULL)")
      _ = try await pool.execute("CREATE TABLE tx_batch_notes (note text NOT NULL)")
      _ = try await pool.execute("INSERT INTO tx_batch_lock VALUES (1, 0)")
      let holding = Signal()
      let commit = Signal()
      let holderPID = Mutex<Int32?>(nil)
      async let holder: Void = pool.transaction { tx in
        let pid = try await tx.query("SELECT pg_backend_pid()", [])[0].decode(Int32.self, at: 0)
        holderPID.withLock { $0 = pid }
        _ = try await tx.execute("UPDATE tx_batch_lock SET n = n + 1 WHERE id = 1")
        _ = try await tx.execute("INSERT INTO tx_batch_notes VALUES ('written under the lock')")
        holding.fire()
        await commit.wait()
      }
      await holding.wait()
      async let batch: [PostgresRows] = pool.transaction { tx in
        try await tx.queryBatch([
          // The subquery reads with the snapshot this statement took before it waited.
          PostgresStatement("SELECT n, (SELECT count(*) FROM tx_batch_notes) AS notes FROM tx_batch_lock WHERE id = 1 FOR UPDATE"),
          PostgresStatement("SELECT count(*) AS notes FROM tx_batch_notes"),
        ])
      }
      // Blocked by this holder's session, not merely waiting on some lock: other suites share the
      // database, and one of theirs waiting FOR UPDATE let this test commit before the batch began.
      let pid = try #require(holderPID.withLock { $0 })
      try await waitUntil("the batch to wait for the holder's row lock") {
        let waiting = try await pool.query(
          "SELECT count(*)::bigint FROM pg_stat_activity WHERE $1::int4 = ANY (pg_blocking_pids(pid))", [pid])
        return try waiting[0].decode(Int64.self, at: 0) == 1
      }
      commit.fire()
      try await holder
      let rows = try await batch
      #expect(try rows[0][0].decode(Int64.self, column: "n") == 1)
      #expect(try rows[0][0].decode(Int64.self, column: "notes") == 0)
      #expect(try rows[1][0].decode(Int64.self, column: "notes") == 1)
    }
  }

  @Test("A failing statement of a batch stops the ones after it and fails the transaction, which commits nothing")
  func failingBatch() async throws {
    try await withPool { pool in
      _ = try await pool.execute("CREATE TABLE tx_batch_fail (name text PRIMARY KEY)")
      _ = try await pool.execute("INSERT INTO tx_batch_fail VALUES ('taken')")
      let error = await #expect(throws: PostgresError.self) {
        try await pool.transaction { tx in
          _ = try await tx.queryBatch([
            PostgresStatement("INSERT INTO tx_batch_fail VALUES ($1)", ["new"]),
            PostgresStatement("INSERT INTO tx_batch_fail VALUES ($1)", ["taken"]),
            PostgresStatement("INSERT INTO tx_batch_fail VALUES ($1)", ["after"]),
          ])
        }
      }
      #expect(error?.isUniqueViolation == true)
      #expect(error?.detail == "Key (name)=(taken) already exists.")
      let names = try await pool.query("SELECT name FROM tx_batch_fail ORDER BY name", []).map { try $0.decode(String.self, at: 0) }
      #expect(names == ["taken"])
      // The connection is clean again, and a batch later in a transaction (BEGIN already sent) works.
      let count = try await pool.transaction { tx in
        _ = try await tx.execute("INSERT INTO tx_batch_fail VALUES ($1)", ["new"])
        let rows = try await tx.queryBatch([
          PostgresStatement("INSERT INTO tx_batch_fail VALUES ($1)", ["after"]),
          PostgresStatement("SELECT count(*)::bigint FROM tx_batch_fail"),
        ])
        return try rows[1][0].decode(Int64.self, at: 0)
      }
      #expect(count == 3)
    }
  }

  @Test("A statement's first use inside a transaction prepares it in the same round trip as BEGIN, and a failed one is not cached")
  func firstStatementWithBegin() async throws {
    try await withPool { pool in
      // Fails to prepare (no such table) in the BEGIN round trip, then works once the table exists.
      let missing = await #expect(throws: PostgresError.self) {
        try await pool.transaction { tx in _ = try await tx.query("SELECT count(*) FROM tx_later", []) }
      }
      #expect(missing?.sqlState == "42P01")
      _ = try await pool.execute("CREATE TABLE tx_later (name text)")
      for _ in 0..<3 {
        let count = try await pool.transaction { tx in
          try await tx.query("SELECT count(*)::bigint FROM tx_later", [])[0].decode(Int64.self, at: 0)
        }
        #expect(count == 0)
      }
      // A transaction that runs nothing sends nothing, and commits nothing.
      let value = try await pool.transaction { _ in 5 }
      #expect(value == 5)
    }
  }

  @Test("A transaction handle used after its transaction ended throws invalidUse")
  func useAfterEnd() async throws {
    try await withPool { pool in
      let escaped = try await pool.transaction { tx in tx }
      let error = await #expect(throws: PostgresError.self) { _ = try await escaped.query("SELECT 1", []) }
      #expect(error?.kind == .invalidUse)
    }
  }

  @Test("The tenant is set for the transaction only, and the statement timeout too")
  func tenantAndTimeoutAreLocal() async throws {
    try await withPool({
      $0.maxConnections = 1
      $0.statementTimeout = .seconds(20)
    }) { pool in
      try await pool.transaction(tenant: "tenant-a", statementTimeout: .milliseconds(1500)) { tx in
        let row = try await tx.query(
          "SELECT current_setting('maas.tenant_id') AS tenant, current_setting('statement_timeout') AS timeout", [])[0]
        #expect(try row.decode(String.self, column: "tenant") == "tenant-a")
        #expect(try row.decode(String.self, column: "timeout") == "1500ms")
      }
      let after = try await pool.query(
        "SELECT current_setting('maas.tenant_id', true) AS tenant, current_setting('statement_timeout') AS timeout", [])[0]
      #expect(try after.decode(String?.self, column: "tenant") ?? "" == "")
      #expect(try after.decode(String.self, column: "timeout") == "20s")

      let error = await #expect(throws: PostgresError.self) {
        try await pool.transaction(statementTimeout: .milliseconds(100)) { tx in
          _ = try await tx.query("SELECT pg_sleep(10)", [])
        }
      }
      #expect(error?.kind == .timeout)
      #expect(error?.sqlState == "57014")
    }
  }

  @Test("Row-level security on maas.tenant_id shows a tenant only its own rows, even to an unscoped query")
  func rowLevelSecurity() async throws {
    let database = try await TestDatabase.shared()
    try await withPool { owner in
      _ = try await owner.execute("CREATE TABLE tx_tenant_models (tenant_id text NOT NULL, name text NOT NULL)")
      _ = try await owner.execute("ALTER TABLE tx_tenant_models ENABLE ROW LEVEL SECURITY")
      _ = try await owner.execute(
        "CREATE POLICY tenant_isolation ON tx_tenant_models USING (tenant_id = current_setting('maas.tenant_id', true))")
      _ = try await owner.execute("GRANT SELECT, INSERT ON tx_tenant_models TO maas_app")
    }
    try await withPool(url: database.appURL) { app in
      for (tenant, name) in [("a", "llama"), ("a", "mistral"), ("b", "secret")] {
        try await app.transaction(tenant: tenant) { tx in
          _ = try await tx.execute("INSERT INTO tx_tenant_models (tenant_id, name) VALUES ($1, $2)", [tenant, name])
        }
      }
      let seenByA = try await app.transaction(tenant: "a") { tx in
        try await tx.query("SELECT name FROM tx_tenant_models ORDER BY name", []).map { try $0.decode(String.self, column: "name") }
      }
      #expect(seenByA == ["llama", "mistral"])
      let seenWithoutTenant = try await app.query("SELECT name FROM tx_tenant_models", [])
      #expect(seenWithoutTenant.isEmpty)
      let smuggled = await #expect(throws: PostgresError.self) {
        try await app.transaction(tenant: "a") { tx in
          _ = try await tx.execute("INSERT INTO tx_tenant_models (tenant_id, name) VALUES ($1, $2)", ["b", "planted"])
        }
      }
      #expect(smuggled?.sqlState == "42501")
    }
  }
}
