import Logging
import MaaSTesting
import Postgres
import Synchronization
import Testing

@Suite("The connection pool")
struct PoolTests {
  @Test("With every connection held, a caller waits out the acquire timeout and gets poolExhausted saying why")
  func exhaustion() async throws {
    try await withPool({
      // Both connections open at start-up: the short acquire timeout is for the third caller's
      // wait, and must not also cover connecting on a loaded machine.
      $0.minConnections = 2
      $0.maxConnections = 2
      $0.acquireTimeout = .milliseconds(200)
    }) { pool in
      try await waitUntil("both connections to open") { pool.statistics.idle == 2 }
      try await pool.withConnection { _ in
        try await pool.withConnection { _ in
          let error = await #expect(throws: PostgresError.self) { _ = try await pool.query("SELECT 1", []) }
          #expect(error?.kind == .poolExhausted)
          #expect(error?.message.contains("maxConnections 2") == true)
          #expect(error?.message.contains("waited") == true)
          #expect(error?.message.contains("acquire timeout") == true)
          #expect(pool.statistics.checkedOut == 2)
        }
      }
      // Once they are back, the next caller gets one straight away.
      #expect(try await pool.execute("SELECT 1") == 1)
    }
  }

  @Test("With maxWaiters callers already queued, the next gets poolExhausted at once, and the queued ones are still served")
  func boundedQueue() async throws {
    // The acquire timeout is far longer than the test: a caller that queued would hang it.
    try await withPool({ $0.maxConnections = 1; $0.maxWaiters = 2; $0.acquireTimeout = .seconds(600) }) { pool in
      let release = Signal()
      let holder = Task { try await pool.withConnection { _ in await release.wait() } }
      try await waitUntil("the holder to take the connection") { pool.statistics.checkedOut == 1 }
      let queued = (1...2).map { _ in Task { try await pool.execute("SELECT 1") } }
      try await waitUntil("two callers to wait") { pool.statistics.waiting == 2 }
      let error = await #expect(throws: PostgresError.self) { _ = try await pool.query("SELECT 1", []) }
      #expect(error?.kind == .poolExhausted)
      #expect(error?.message.contains("2 callers already waiting") == true, "\(String(describing: error))")
      release.fire()
      try await holder.value
      for caller in queued { #expect(try await caller.value == 1) }
    }
  }

  @Test("Waiting callers are served first come, first served, as connections come back")
  func waitersAreServedInOrder() async throws {
    try await withPool({ $0.maxConnections = 1 }) { pool in
      let order = Locked<[Int]>([])
      let release = Signal()
      let holder = Task {
        try await pool.withConnection { _ in await release.wait() }
      }
      try await waitUntil("the holder to take the connection") { pool.statistics.checkedOut == 1 }
      var waiters: [Task<Void, any Error>] = []
      for number in 1...5 {
        waiters.append(Task {
          try await pool.withConnection { _ in order.withLock { $0.append(number) } }
        })
        try await waitUntil("caller \(number) to wait") { pool.statistics.waiting == number }
      }
      release.fire()
      try await holder.value
      for waiter in waiters { try await waiter.value }
      #expect(order.value == [1, 2, 3, 4, 5])
    }
  }

  @Test("200 concurrent queries on a pool of 4 never share a connection")
  func noConnectionHandedOutTwice() async throws {
    try await withPool({ $0.maxConnections = 4 }) { pool in
      let inUse = Locked<Set<Int>>([])
      let backendsInUse = Locked<Set<Int32>>([])
      let seen = Locked<Set<Int32>>([])
      let clashes = Locked(0)
      try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<200 {
          group.addTask {
            try await pool.withConnection { connection in
              if !inUse.withLock({ $0.insert(connection.id).inserted }) { clashes.withLock { $0 += 1 } }
              let pid = try await connection.query("SELECT pg_backend_pid() AS pid", [])[0].decode(Int32.self, column: "pid")
              #expect(pid == connection.backendPID)
              if !backendsInUse.withLock({ $0.insert(pid).inserted }) { clashes.withLock { $0 += 1 } }
              seen.withLock { _ = $0.insert(pid) }
              await Task.yield()
              backendsInUse.withLock { _ = $0.remove(pid) }
              inUse.withLock { _ = $0.remove(connection.id) }
            }
          }
        }
        try await group.waitForAll()
      }
      #expect(clashes.value == 0)
      #expect(seen.value.count <= 4)
      #expect(pool.statistics.checkedOut == 0)
    }
  }

  @Test("A connection returned inside a transaction is closed, not handed to the next caller")
  func connectionInsideTransactionIsNotReused() async throws {
    try await withPool({ $0.maxConnections = 1 }) { pool in
      let abandoned = try await pool.withConnection { connection in
        _ = try await connection.execute("BEGIN")
        return connection.backendPID
      }
      let next = try await pool.query("SELECT pg_backend_pid() AS pid", [])[0].decode(Int32.self, column: "pid")
      #expect(next != abandoned)
    }
  }

  // Both tests below wait for events (attempts recorded by the injected sleep), never for a
  // number of attempts to fit in some time: on a loaded machine a refused connect can take long.

  @Test("When the server cannot be reached, attempts back off exponentially up to the maximum")
  func reconnectBackoff() async throws {
    let delays = Locked<[Duration]>([])
    try await withPool(
      url: try await unreachableURL(),
      {
        // A pool below minConnections keeps trying with nobody waiting.
        $0.minConnections = 1
        $0.maxConnections = 1
        $0.reconnectBackoff = PostgresBackoff(initial: .milliseconds(4), maximum: .milliseconds(32), jitter: 0)
      },
      sleep: { delay in
        delays.withLock { $0.append(delay) }
        try await Task.sleep(for: delay)
      }
    ) { _ in
      try await waitUntil("six failed attempts") { delays.value.count >= 6 }
    }
    #expect(Array(delays.value.prefix(6)) == [4, 8, 16, 32, 32, 32].map { Duration.milliseconds($0) })
  }

  @Test("A caller that times out while every attempt fails gets a connection error counting the attempts")
  func connectionErrorAfterFailedAttempts() async throws {
    let failures = Locked(0)
    try await withPool(
      url: try await unreachableURL(),
      {
        $0.minConnections = 1
        $0.maxConnections = 1
        $0.acquireTimeout = .milliseconds(200)
        $0.reconnectBackoff = PostgresBackoff(initial: .milliseconds(4), maximum: .milliseconds(32), jitter: 0)
      },
      sleep: { delay in
        failures.withLock { $0 += 1 }
        try await Task.sleep(for: delay)
      }
    ) { pool in
      // The pool records a failure before it sleeps, so the caller below always finds one.
      try await waitUntil("a failed attempt") { failures.value >= 1 }
      let error = await #expect(throws: PostgresError.self) { _ = try await pool.query("SELECT 1", []) }
      #expect(error?.kind == .connection)
      #expect(error?.message.contains("connection attempts in a row failed") == true)
    }
  }

  /// The test cluster's URL with port 1, where nothing listens: every attempt is refused at once.
  private func unreachableURL() async throws -> String {
    let database = try await TestDatabase.shared()
    return database.ownerURL.replacingOccurrences(of: ":\(database.cluster.port)/", with: ":1/")
  }

  @Test("Backoff grows by its multiplier up to its maximum, and jitter only ever shortens it")
  func backoffSchedule() {
    let backoff = PostgresBackoff(initial: .milliseconds(100), maximum: .seconds(1), multiplier: 2, jitter: 0.5)
    #expect(backoff.delay(attempt: 1, random: 0) == .milliseconds(100))
    #expect(backoff.delay(attempt: 3, random: 0) == .milliseconds(400))
    #expect(backoff.delay(attempt: 10, random: 0) == .seconds(1))
    #expect(backoff.delay(attempt: 3, random: 0.999) > .milliseconds(200))
    #expect(backoff.delay(attempt: 3, random: 0.999) < .milliseconds(400))
  }

  @Test("close() fails waiting callers, waits for checked-out connections, and refuses new callers")
  func close() async throws {
    let database = try await TestDatabase.shared()
    let pool = try PostgresPool(
      configuration: PostgresConfiguration(url: database.ownerURL, minConnections: 0, maxConnections: 1, acquireTimeout: .seconds(30)),
      logger: quietLogger)
    let release = Signal()
    let holder = Task { try await pool.withConnection { _ in await release.wait() } }
    try await waitUntil("the holder to take the connection") { pool.statistics.checkedOut == 1 }
    let waiter = Task { try await pool.query("SELECT 1", []) }
    try await waitUntil("the second caller to wait") { pool.statistics.waiting == 1 }
    let closing = Task { await pool.close() }
    let waiterError = await #expect(throws: PostgresError.self) { _ = try await waiter.value }
    #expect(waiterError?.kind == .poolClosed)
    release.fire()
    try await holder.value
    await closing.value
    #expect(pool.statistics == PostgresPoolStatistics(idle: 0, checkedOut: 0, opening: 0, waiting: 0))
    let after = await #expect(throws: PostgresError.self) { _ = try await pool.query("SELECT 1", []) }
    #expect(after?.kind == .poolClosed)
  }

  @Test("A pool keeps minConnections open, and idle connections past the health-check age still work")
  func minimumAndHealthCheck() async throws {
    try await withPool({
      $0.minConnections = 2
      $0.healthCheckAfterIdle = .zero
    }) { pool in
      try await waitUntil("the minimum to open") { pool.statistics.idle == 2 }
      #expect(try await pool.execute("SELECT 1") == 1)
      #expect(pool.statistics.idle == 2)
    }
  }

  @Test("Every problem with a configuration is reported at once")
  func configurationProblems() {
    let configuration = PostgresConfiguration(url: "", minConnections: 3, maxConnections: 2, acquireTimeout: .zero)
    #expect(configuration.problems().count == 3)
    let error = #expect(throws: PostgresError.self) {
      _ = try PostgresPool(configuration: configuration, logger: quietLogger)
    }
    #expect(error?.kind == .invalidUse)
    #expect(error?.message.contains("minConnections") == true)
    #expect(error?.message.contains("acquireTimeout") == true)
  }
}
