import Foundation

/// One cell's throughput and latency, pgbench's and the gRPC callers' alike.
struct Measurement {
  var perSecond: Double
  var p50Milliseconds: Double
  var p99Milliseconds: Double
  var meanMilliseconds: Double
  var maxMilliseconds: Double
  /// Operations that succeeded.
  var operations: Int
  var seconds: Double
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

/// A cell in the JSON report: its figures and where its CPU went.
struct Cell: Encodable {
  var measurement: Measurement
  var cpu: CPUUsage
  /// The first error's text, when there were errors.
  var firstError: String?

  enum CodingKeys: String, CodingKey {
    case qps, operations, errors, seconds, cpu
    case p50 = "p50_ms", p99 = "p99_ms", mean = "mean_ms", max = "max_ms"
    case cpuMicrosecondsPerOperation = "cpu_us_per_op"
    case firstError = "first_error"
  }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(self.measurement.perSecond, forKey: .qps)
    try container.encode(self.measurement.operations, forKey: .operations)
    try container.encode(self.measurement.errors, forKey: .errors)
    try container.encode(self.measurement.seconds, forKey: .seconds)
    try container.encode(self.measurement.p50Milliseconds, forKey: .p50)
    try container.encode(self.measurement.p99Milliseconds, forKey: .p99)
    try container.encode(self.measurement.meanMilliseconds, forKey: .mean)
    try container.encode(self.measurement.maxMilliseconds, forKey: .max)
    try container.encode(self.cpu, forKey: .cpu)
    try container.encode(self.cpu.microsecondsPerOperation(self.measurement.perSecond), forKey: .cpuMicrosecondsPerOperation)
    try container.encodeIfPresent(self.firstError, forKey: .firstError)
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

func format(_ value: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", value) }
