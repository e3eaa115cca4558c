import Logging
import MaaSTesting
import Postgres
import Synchronization

/// A logger that drops everything, so that test output stays readable.
let quietLogger = Logger(label: "maas.postgres.test") { _ in SwiftLogNoOpLogHandler() }

/// The database the suites share, on the test process's shared cluster: created once per
/// process; each test keeps to tables of its own.
enum TestDatabase {
  private static let database = Mutex<Task<PostgresTestDatabase, any Error>?>(nil)

  static func shared() async throws -> PostgresTestDatabase {
    let task = self.database.withLock { task in
      if let task { return task }
      let created = Task { try await PostgresFixture.shared().createDatabase(named: "postgres_client_tests") }
      task = created
      return created
    }
    return try await task.value
  }
}

/// A pool on the shared test database (as `maas_owner` unless told otherwise), closed when `body`
/// ends. Acquire timeouts are generous: they bound waits, they are not what these tests measure.
func withPool<Result>(
  url: String? = nil,
  _ configure: (inout PostgresConfiguration) -> Void = { _ in },
  sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
  _ body: (PostgresPool) async throws -> Result
) async throws -> Result {
  let resolvedURL: String
  if let url {
    resolvedURL = url
  } else {
    resolvedURL = try await TestDatabase.shared().ownerURL
  }
  var configuration = PostgresConfiguration(url: resolvedURL, minConnections: 0, maxConnections: 4, acquireTimeout: .seconds(30))
  configure(&configuration)
  let pool = try PostgresPool(configuration: configuration, logger: quietLogger, sleep: sleep)
  do {
    let result = try await body(pool)
    await pool.close()
    return result
  } catch {
    await pool.close()
    throw error
  }
}

/// A value shared by test tasks, behind a lock (a `Mutex` itself cannot be captured by escaping
/// closures).
final class Locked<Value: Sendable>: Sendable {
  private let mutex: Mutex<Value>

  init(_ value: Value) { self.mutex = Mutex(value) }

  func withLock<Result: Sendable>(_ body: (inout sending Value) -> sending Result) -> Result {
    self.mutex.withLock(body)
  }

  var value: Value { self.mutex.withLock { $0 } }
}
