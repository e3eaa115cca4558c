import GRPCCore
import Logging
import MaaSRuntime
import Postgres
import Testing

@Suite("EdgeStatus answers what a service's domain does not")
struct EdgeStatusTests {
  private static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

  private static func status(for error: any Error) -> RPCError {
    EdgeStatus.rpcError(for: error, database: "quota", retryHint: "retry with the same key", method: "Reserve", logger: logger)
  }

  @Test("a lost database connection is UNAVAILABLE naming the database and the retry")
  func databaseUnavailable() {
    let status = Self.status(for: PostgresError(kind: .connection, message: "server closed the connection"))
    #expect(status.code == .unavailable)
    #expect(status.message == "the quota database is unavailable; retry with the same key")
  }

  @Test("a statement timeout is DEADLINE_EXCEEDED, and a failed query INTERNAL without its SQL")
  func databaseTimeoutAndQuery() {
    #expect(Self.status(for: PostgresError(kind: .timeout, message: "canceling statement")).code == .deadlineExceeded)
    let query = Self.status(for: PostgresError(kind: .query, message: "syntax error", statement: "SELECT secret"))
    #expect(query.code == .internalError)
    #expect(!query.message.contains("SELECT"))
  }

  @Test("a status already made passes through unchanged")
  func statusPassesThrough() {
    let upstream = RPCError(code: .resourceExhausted, message: "api_calls_per_day: limit 10, used 10, asked 1")
    let status = Self.status(for: upstream)
    #expect(status.code == .resourceExhausted)
    #expect(status.message == upstream.message)
  }

  @Test("a cancelled call is CANCELLED, and anything unexpected INTERNAL")
  func cancelledAndUnexpected() {
    struct Surprise: Error {}
    #expect(Self.status(for: CancellationError()).code == .cancelled)
    let unexpected = Self.status(for: Surprise())
    #expect(unexpected.code == .internalError)
    #expect(unexpected.message == "internal error")
  }
}
