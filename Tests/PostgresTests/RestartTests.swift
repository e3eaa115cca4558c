import MaaSTesting
import Postgres
import Testing

@Suite("Surviving a server restart")
struct RestartTests {
  @Test(
    "Writes keep going through a restart: the next query reconnects and every acknowledged row is there",
    arguments: [PostgresTestCluster.StopMode.fast, .immediate]
  )
  func restartMidRun(mode: PostgresTestCluster.StopMode) async throws {
    let cluster = try await PostgresFixture.privateCluster(named: "client-restart-\(mode.rawValue)")
    do {
      let database = try await cluster.createDatabase(named: "restart_test")
      try await withPool(url: database.ownerURL, {
        $0.minConnections = 2
        $0.maxConnections = 4
        $0.acquireTimeout = .seconds(30)
        $0.reconnectBackoff = PostgresBackoff(initial: .milliseconds(20), maximum: .milliseconds(500))
      }) { pool in
        _ = try await pool.execute("CREATE TABLE acknowledged (id int8 PRIMARY KEY)")
        let acknowledged = Locked<[Int]>([])
        let failures = Locked(0)
        let stop = Locked(false)
        let nextID = Locked(0)
        try await withThrowingTaskGroup(of: Void.self) { group in
          for _ in 0..<4 {
            group.addTask {
              while !stop.value {
                let id = nextID.withLock { id in
                  id += 1
                  return id
                }
                do {
                  _ = try await pool.execute("INSERT INTO acknowledged (id) VALUES ($1)", [id])
                  acknowledged.withLock { $0.append(id) }
                } catch let error as PostgresError where error.kind == .connection || error.kind == .poolExhausted {
                  // In flight when the server went away: its outcome is unknown, so it does
                  // not count as acknowledged.
                  failures.withLock { $0 += 1 }
                  try await Task.sleep(for: .milliseconds(10))
                }
              }
            }
          }
          try await waitUntil("writes before the restart") { acknowledged.value.count >= 50 }
          try await cluster.restart(mode: mode)
          let before = acknowledged.value.count
          try await waitUntil("writes after the restart") { acknowledged.value.count >= before + 50 }
          stop.withLock { $0 = true }
          try await group.waitForAll()
        }

        // The next query after the restart succeeds, on whatever connections the pool has now.
        let stored = try await pool.query("SELECT id FROM acknowledged", []).map { try $0.decode(Int.self, column: "id") }
        let missing = Set(acknowledged.value).subtracting(stored)
        #expect(missing.isEmpty, "acknowledged but lost: \(missing.sorted().prefix(10))")
        #expect(acknowledged.value.count >= 100)
      }
      try await cluster.destroy()
    } catch {
      try? await cluster.destroy()
      throw error
    }
  }

  @Test("After a restart with the pool idle, the very next query succeeds")
  func nextQueryAfterIdleRestart() async throws {
    let cluster = try await PostgresFixture.privateCluster(named: "client-idle-restart")
    do {
      let database = try await cluster.createDatabase(named: "idle_restart_test")
      try await withPool(url: database.ownerURL, {
        $0.minConnections = 3
        $0.maxConnections = 3
      }) { pool in
        try await waitUntil("the pool to fill") { pool.statistics.idle == 3 }
        let before = try await pool.query("SELECT pg_backend_pid() AS pid", [])[0].decode(Int32.self, column: "pid")
        try await cluster.restart(mode: .fast)
        let after = try await pool.query("SELECT pg_backend_pid() AS pid", [])[0].decode(Int32.self, column: "pid")
        #expect(after != before)
      }
      try await cluster.destroy()
    } catch {
      try? await cluster.destroy()
      throw error
    }
  }
}
