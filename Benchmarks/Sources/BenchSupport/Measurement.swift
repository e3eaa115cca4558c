/// One cell's throughput and latency, whoever the peer: pgbench, gRPC callers, a Swift client.
public struct BenchMeasurement: Sendable {
  public var perSecond: Double
  public var p50Milliseconds: Double
  public var p99Milliseconds: Double
  public var meanMilliseconds: Double
  public var maxMilliseconds: Double
  /// Operations that succeeded (the latencies it was made from).
  public var operations: Int
  public var seconds: Double
  /// Failed operations: what counts as one is the peer's (pgbench's failed transactions, calls
  /// that threw).
  public var errors: Int

  /// From per-operation latencies in nanoseconds; `perSecond` defaults to count / seconds (pgbench
  /// gives its own, which leaves out connection set-up).
  public init(latenciesNanoseconds: [Int64], seconds: Double, errors: Int = 0, perSecond: Double? = nil) {
    let sorted = latenciesNanoseconds.sorted()
    func percentile(_ p: Double) -> Double {
      guard !sorted.isEmpty else { return 0 }
      let rank = min(sorted.count - 1, max(0, Int((Double(sorted.count) * p).rounded(.up)) - 1))
      return Double(sorted[rank]) / 1e6
    }
    self.operations = sorted.count
    self.seconds = seconds
    self.errors = errors
    self.perSecond = perSecond ?? (seconds > 0 ? Double(sorted.count) / seconds : 0)
    self.p50Milliseconds = percentile(0.50)
    self.p99Milliseconds = percentile(0.99)
    self.maxMilliseconds = Double(sorted.last ?? 0) / 1e6
    self.meanMilliseconds = sorted.isEmpty ? 0 : Double(sorted.reduce(0, +)) / Double(sorted.count) / 1e6
  }

  /// Writes the figures into a report's cell. The throughput and the count go under the names the
  /// report gives them (`tps` and `transactions` for pgbench, `qps` and `operations`, ...), the
  /// rest under the keys every report shares: `errors`, `seconds`, `p50_ms`, `p99_ms`, `mean_ms`,
  /// `max_ms`.
  public func encode(into container: inout KeyedEncodingContainer<ReportKey>, rateKey: String, countKey: String) throws {
    try container.encode(self.perSecond, forKey: ReportKey(rateKey))
    try container.encode(self.operations, forKey: ReportKey(countKey))
    try container.encode(self.errors, forKey: "errors")
    try container.encode(self.seconds, forKey: "seconds")
    try container.encode(self.p50Milliseconds, forKey: "p50_ms")
    try container.encode(self.p99Milliseconds, forKey: "p99_ms")
    try container.encode(self.meanMilliseconds, forKey: "mean_ms")
    try container.encode(self.maxMilliseconds, forKey: "max_ms")
  }

  /// p50 and p99 as every table prints them (milliseconds, three decimals).
  public var latencyCells: [String] {
    [format(self.p50Milliseconds, 3), format(self.p99Milliseconds, 3)]
  }

  /// Latencies and errors in one line, as a `load` command (for a profiler) prints them.
  public var latencySummary: String {
    "p50 \(format(self.p50Milliseconds, 3)) ms, p99 \(format(self.p99Milliseconds, 3)) ms,"
      + " max \(format(self.maxMilliseconds, 1)) ms, \(self.errors) errors"
  }
}

/// A JSON key named by a string: report cells share most of their keys, and name a few after
/// what they count.
public struct ReportKey: CodingKey, ExpressibleByStringLiteral {
  public var stringValue: String
  public var intValue: Int? { nil }

  public init(_ name: String) { self.stringValue = name }
  public init(stringLiteral name: String) { self.stringValue = name }
  public init?(stringValue: String) { self.stringValue = stringValue }
  public init?(intValue: Int) { nil }
}
