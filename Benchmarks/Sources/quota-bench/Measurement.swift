/// One cell's throughput and latency. pgbench's and Consume's cells share it; the report names
/// the throughput `tps` for the one and `calls_per_second` for the other.
struct Measurement {
  var perSecond: Double
  var p50Milliseconds: Double
  var p99Milliseconds: Double
  var meanMilliseconds: Double
  var maxMilliseconds: Double
  /// Operations that succeeded (Consume: admitted calls).
  var operations: Int
  var seconds: Double
  /// Failed operations (Consume: anything but an admission or a RESOURCE_EXHAUSTED refusal).
  var errors: Int

  /// From per-operation latencies in nanoseconds; `perSecond` defaults to count / seconds.
  init(latenciesNanoseconds: [Int64], seconds: Double, errors: Int = 0, perSecond: Double? = nil) {
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
}

/// A pgbench cell in the JSON report.
struct PgbenchCell: Encodable {
  var measurement: Measurement

  enum CodingKeys: String, CodingKey {
    case tps, transactions, errors, seconds
    case p50 = "p50_ms", p99 = "p99_ms", mean = "mean_ms", max = "max_ms"
  }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(self.measurement.perSecond, forKey: .tps)
    try container.encode(self.measurement.operations, forKey: .transactions)
    try container.encode(self.measurement.errors, forKey: .errors)
    try container.encode(self.measurement.seconds, forKey: .seconds)
    try container.encode(self.measurement.p50Milliseconds, forKey: .p50)
    try container.encode(self.measurement.p99Milliseconds, forKey: .p99)
    try container.encode(self.measurement.meanMilliseconds, forKey: .mean)
    try container.encode(self.measurement.maxMilliseconds, forKey: .max)
  }
}

/// A Consume cell in the JSON report. Latencies are those of admitted calls.
struct ConsumeCell: Encodable {
  var measurement: Measurement
  /// RESOURCE_EXHAUSTED answers (none expected: the limits are far above what a run spends).
  var refused: Int

  enum CodingKeys: String, CodingKey {
    case calls, refused, errors, seconds
    case callsPerSecond = "calls_per_second"
    case p50 = "p50_ms", p99 = "p99_ms", mean = "mean_ms", max = "max_ms"
  }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(self.measurement.perSecond, forKey: .callsPerSecond)
    try container.encode(self.measurement.operations, forKey: .calls)
    try container.encode(self.refused, forKey: .refused)
    try container.encode(self.measurement.errors, forKey: .errors)
    try container.encode(self.measurement.seconds, forKey: .seconds)
    try container.encode(self.measurement.p50Milliseconds, forKey: .p50)
    try container.encode(self.measurement.p99Milliseconds, forKey: .p99)
    try container.encode(self.measurement.meanMilliseconds, forKey: .mean)
    try container.encode(self.measurement.maxMilliseconds, forKey: .max)
  }
}

extension Duration {
  var nanoseconds: Int64 {
    self.components.seconds * 1_000_000_000 + self.components.attoseconds / 1_000_000_000
  }

  var seconds: Double {
    Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18
  }
}
