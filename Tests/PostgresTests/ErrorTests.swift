import MaaSTesting
import Postgres
import Testing

@Suite("Server errors come back as typed PostgresErrors")
struct ErrorTests {
  @Test("Text into an integer column is a query error with SQLSTATE 22P02, and the connection stays usable")
  func textIntoIntegerColumn() async throws {
    try await withPool({ $0.maxConnections = 1 }) { pool in
      _ = try await pool.execute("CREATE TABLE errors_integers (n int4 NOT NULL)")
      let error = await #expect(throws: PostgresError.self) {
        _ = try await pool.execute("INSERT INTO errors_integers (n) VALUES ($1)", ["twelve"])
      }
      #expect(error?.kind == .query)
      #expect(error?.sqlState == "22P02")
      #expect(error?.statement?.hasPrefix("INSERT INTO errors_integers") == true)
      #expect(try await pool.execute("INSERT INTO errors_integers (n) VALUES ($1)", ["12"]) == 1)
      #expect(pool.statistics.idle == 1)
    }
  }

  @Test("Too few parameters, too many, and bad SQL are typed errors, not crashes")
  func parameterCountAndSyntax() async throws {
    try await withPool({ $0.maxConnections = 1 }) { pool in
      let tooFew = await #expect(throws: PostgresError.self) {
        _ = try await pool.query("SELECT $1::int8 + $2::int8 AS sum", [1])
      }
      #expect(tooFew?.kind == .query)
      #expect(tooFew?.sqlState == "08P01")
      // A surplus parameter whose type the statement cannot tell is an error (42P18); one the
      // client typed (an Int is int8) is accepted and ignored by the server, as with psql's \bind.
      let tooMany = await #expect(throws: PostgresError.self) {
        _ = try await pool.query("SELECT $1::int8 AS n", [1, "surplus"])
      }
      #expect(tooMany?.sqlState == "42P18")
      let syntax = await #expect(throws: PostgresError.self) {
        _ = try await pool.query("SELEC 1", [])
      }
      #expect(syntax?.sqlState == "42601")
      let notNull = await #expect(throws: PostgresError.self) {
        _ = try await pool.query("SELECT $1::int8 AS n WHERE $1::int8 > ALL ($2::int8[])", [1, "not an array"])
      }
      #expect(notNull?.sqlState == "22P02")
      // None of these broke the session.
      let sum = try await pool.query("SELECT $1::int8 + $2::int8 AS sum", [1, 2])[0].decode(Int.self, column: "sum")
      #expect(sum == 3)
      #expect(pool.statistics.idle == 1)
    }
  }

  @Test("A unique violation says 23505 and names its constraint and table")
  func uniqueViolation() async throws {
    try await withPool { pool in
      _ = try await pool.execute("CREATE TABLE errors_unique (email text CONSTRAINT errors_unique_email_key UNIQUE)")
      _ = try await pool.execute("INSERT INTO errors_unique (email) VALUES ($1)", ["a@example.com"])
      let error = await #expect(throws: PostgresError.self) {
        _ = try await pool.execute("INSERT INTO errors_unique (email) VALUES ($1)", ["a@example.com"])
      }
      #expect(error?.isUniqueViolation == true)
      #expect(error?.sqlState == "23505")
      #expect(error?.constraint == "errors_unique_email_key")
      #expect(error?.table == "errors_unique")
      #expect(error?.schema == "public")
      #expect(error?.severity == "ERROR")
      #expect(error?.isSerializationFailure == false)
      // The description is what logs show: it names the constraint and never the parameters.
      #expect(error.map { "\($0)" }?.contains("errors_unique_email_key") == true)
      #expect(error.map { "\($0)" }?.contains("a@example.com") == false)
    }
  }

  @Test("A foreign key violation says 23503")
  func foreignKeyViolation() async throws {
    try await withPool { pool in
      _ = try await pool.execute("CREATE TABLE errors_parents (id int8 PRIMARY KEY)")
      _ = try await pool.execute("CREATE TABLE errors_children (parent int8 REFERENCES errors_parents (id))")
      let error = await #expect(throws: PostgresError.self) {
        _ = try await pool.execute("INSERT INTO errors_children (parent) VALUES ($1)", [99])
      }
      #expect(error?.isForeignKeyViolation == true)
      #expect(error?.constraint == "errors_children_parent_fkey")
    }
  }

  @Test("The configured statement timeout ends a slow statement with a timeout error, 57014")
  func statementTimeout() async throws {
    try await withPool({ $0.statementTimeout = .milliseconds(200) }) { pool in
      let error = await #expect(throws: PostgresError.self) {
        _ = try await pool.query("SELECT pg_sleep(10)", [])
      }
      #expect(error?.kind == .timeout)
      #expect(error?.isQueryCanceled == true)
      let setting = try await pool.query("SELECT current_setting('statement_timeout') AS timeout", [])[0]
      #expect(try setting.decode(String.self, column: "timeout") == "200ms")
    }
  }

  @Test("A transaction left waiting on its client past the idle-in-transaction timeout is ended by the server, and its locks go with it")
  func idleInTransactionTimeout() async throws {
    try await withPool { setup in
      _ = try await setup.execute("CREATE TABLE errors_stalled (id int4 PRIMARY KEY)")
      _ = try await setup.execute("INSERT INTO errors_stalled (id) VALUES (1)")
    }
    try await withPool({ $0.idleInTransactionTimeout = .milliseconds(200) }) { stalling in
      let setting = try await stalling.query("SELECT current_setting('idle_in_transaction_session_timeout') AS timeout", [])[0]
      #expect(try setting.decode(String.self, column: "timeout") == "200ms")
      let error = await #expect(throws: PostgresError.self) {
        try await stalling.transaction { tx in
          _ = try await tx.query("SELECT id FROM errors_stalled WHERE id = 1 FOR UPDATE", [])
          // This client now stalls while holding the row. Another session can lock it only once
          // the server has ended this one: without the timeout it would wait until its own
          // statement timeout and fail.
          try await withPool({ $0.statementTimeout = .seconds(60) }) { other in
            let locked = try await other.transaction { tx in
              try await tx.query("SELECT id FROM errors_stalled WHERE id = 1 FOR UPDATE", []).count
            }
            #expect(locked == 1)
          }
          _ = try await tx.query("SELECT 1", [])
        }
      }
      #expect(error?.kind == .connection)
    }
  }

  @Test("Cancelling the calling task cancels the running statement, and the connection is reused")
  func cancellation() async throws {
    try await withPool({ $0.maxConnections = 1 }) { pool in
      let pid = try await pool.query("SELECT pg_backend_pid() AS pid", [])[0].decode(Int32.self, column: "pid")
      let sleeper = Task { try await pool.query("SELECT pg_sleep(60) /* cancellation test */", []) }
      try await withPool { observer in
        try await waitUntil("the statement to run") {
          let rows = try await observer.query(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE '%cancellation test%'",
            [pid])
          return try rows[0].decode(Int.self, column: "n") == 1
        }
      }
      sleeper.cancel()
      let error = await #expect(throws: PostgresError.self) { _ = try await sleeper.value }
      #expect(error?.kind == .cancelled)
      #expect(error?.sqlState == "57014")
      let samePID = try await pool.query("SELECT pg_backend_pid() AS pid", [])[0].decode(Int32.self, column: "pid")
      #expect(samePID == pid)
    }
  }

  @Test("A connection whose server process is killed reports a connection error and is replaced")
  func killedBackend() async throws {
    try await withPool({ $0.maxConnections = 1 }) { pool in
      try await pool.withConnection { connection in
        try await withPool { killer in
          // The second argument makes it wait until the process has gone.
          _ = try await killer.query("SELECT pg_terminate_backend($1, 10000)", [connection.backendPID])
        }
        let error = await #expect(throws: PostgresError.self) { _ = try await connection.query("SELECT 1", []) }
        #expect(error?.kind == .connection)
        #expect(connection.isBroken)
      }
      let rows = try await pool.query("SELECT 1 AS one", [])
      #expect(try rows[0].decode(Int.self, column: "one") == 1)
    }
  }
}
