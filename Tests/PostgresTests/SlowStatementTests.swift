import Logging
import Postgres
import Synchronization
import Testing

/// Keeps what was logged at warning level and above: message and metadata.
final class WarningRecorder: Sendable {
  let entries = Mutex<[(message: String, metadata: Logger.Metadata)]>([])

  var logger: Logger {
    Logger(label: "maas.postgres.test") { _ in Handler(recorder: self) }
  }

  struct Handler: LogHandler {
    let recorder: WarningRecorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .warning

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
      get { metadata[key] }
      set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
      recorder.entries.withLock { $0.append((event.message.description, event.metadata ?? [:])) }
    }
  }
}

@Suite("Slow statements")
struct SlowStatementTests {
  @Test("a statement over the threshold is logged once, with its SQL cut to 512 bytes on a character boundary and its length")
  func slowStatementIsLoggedWithAnExcerpt() async throws {
    let recorder = WarningRecorder()
    var configuration = PostgresConfiguration(
      url: try await TestDatabase.shared().ownerURL, minConnections: 0, maxConnections: 1, acquireTimeout: .seconds(30))
    configuration.slowQueryThreshold = .milliseconds(100)
    let pool = try PostgresPool(configuration: configuration, logger: recorder.logger)
    // A comment makes the text long without changing what runs; 'é' is two bytes, so a cut by
    // bytes alone would split one.
    let padding = String(repeating: "é", count: 3000)
    let slow = "SELECT pg_sleep(0.3) /* \(padding) */"
    do {
      _ = try await pool.query(slow, [])
      await pool.close()
    } catch {
      await pool.close()
      throw error
    }
    // Only this statement's entries: how long anything else took is up to the machine.
    let entries = recorder.entries.withLock { $0 }.filter { $0.metadata["sql"]?.description.hasPrefix("SELECT pg_sleep") == true }
    #expect(entries.count == 1, "\(entries.map(\.message))")
    let entry = try #require(entries.first)
    #expect(entry.message == "slow postgres statement")
    let sql = try #require(entry.metadata["sql"]).description
    #expect(sql.hasPrefix("SELECT pg_sleep(0.3) /* éé"))
    #expect(sql.hasSuffix("... (\(slow.utf8.count) bytes in all)"), "\(sql.suffix(40))")
    #expect(sql.utf8.count <= 512 + "... (6027 bytes in all)".utf8.count)
    #expect(Int(try #require(entry.metadata["duration_ms"]).description).map { $0 >= 100 } == true)
  }
}
