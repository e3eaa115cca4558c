/// The two statements each peer runs: a primary-key select and a single-row update of a random
/// account, one statement per transaction (autocommit), as pgbench's select-only script and the
/// update script given to it.
enum Workload: String, CaseIterable {
  case select
  case update

  var label: String {
    switch self {
    case .select: return "select by primary key"
    case .update: return "single-row update"
    }
  }
}

enum Peer: String, CaseIterable {
  case pgbench
  case swift

  var label: String {
    switch self {
    case .pgbench: return "pgbench"
    case .swift: return "Swift PostgresPool"
    }
  }
}

/// One cell: one peer, one workload, one number of clients.
struct Measurement: Encodable {
  var opsPerSecond: Double
  var p50Milliseconds: Double
  var p99Milliseconds: Double
  var meanMilliseconds: Double
  var maxMilliseconds: Double
  var operations: Int
  var seconds: Double
  /// Statements that failed (the Swift side counts them; pgbench -n stops a client on error).
  var errors: Int

  enum CodingKeys: String, CodingKey {
    case opsPerSecond = "ops_per_s"
    case p50Milliseconds = "p50_ms"
    case p99Milliseconds = "p99_ms"
    case meanMilliseconds = "mean_ms"
    case maxMilliseconds = "max_ms"
    case operations
    case seconds
    case errors
  }

  /// From per-operation latencies in nanoseconds; `opsPerSecond` defaults to count / seconds.
  init(latenciesNanoseconds: [Int64], seconds: Double, errors: Int = 0, opsPerSecond: Double? = nil) {
    let sorted = latenciesNanoseconds.sorted()
    func percentile(_ p: Double) -> Double {
      guard !sorted.isEmpty else { return 0 }
      let rank = min(sorted.count - 1, max(0, Int((Double(sorted.count) * p).rounded(.up)) - 1))
      return Double(sorted[rank]) / 1e6
    }
    self.operations = sorted.count
    self.seconds = seconds
    self.errors = errors
    self.opsPerSecond = opsPerSecond ?? (seconds > 0 ? Double(sorted.count) / seconds : 0)
    self.p50Milliseconds = percentile(0.50)
    self.p99Milliseconds = percentile(0.99)
    self.maxMilliseconds = Double(sorted.last ?? 0) / 1e6
    self.meanMilliseconds = sorted.isEmpty ? 0 : Double(sorted.reduce(0, +)) / Double(sorted.count) / 1e6
  }
}
