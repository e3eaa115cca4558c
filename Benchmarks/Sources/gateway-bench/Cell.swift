import BenchSupport

/// A cell in the JSON report: its figures (throughput as `qps`) and where its CPU went.
struct Cell: Encodable {
  var measurement: BenchMeasurement
  var cpu: CPUUsage
  /// The first error's text, when there were errors.
  var firstError: String?

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: ReportKey.self)
    try self.measurement.encode(into: &container, rateKey: "qps", countKey: "operations")
    try container.encode(self.cpu, forKey: "cpu")
    try container.encode(self.cpu.microsecondsPerOperation(self.measurement.perSecond), forKey: "cpu_us_per_op")
    try container.encodeIfPresent(self.firstError, forKey: "first_error")
  }
}
