import BenchSupport

/// A pgbench cell in the JSON report: its throughput is `tps`.
struct PgbenchCell: Encodable {
  var measurement: BenchMeasurement

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: ReportKey.self)
    try self.measurement.encode(into: &container, rateKey: "tps", countKey: "transactions")
  }
}

/// A Consume cell in the JSON report (the floor's and the in-process store's too): its
/// throughput is `calls_per_second`. Latencies are those of admitted calls; errors, calls that
/// failed other than with RESOURCE_EXHAUSTED.
struct ConsumeCell: Encodable {
  var measurement: BenchMeasurement
  /// RESOURCE_EXHAUSTED answers (none expected: the limits are far above what a run spends).
  var refused: Int

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: ReportKey.self)
    try self.measurement.encode(into: &container, rateKey: "calls_per_second", countKey: "calls")
    try container.encode(self.refused, forKey: "refused")
  }
}

extension CallerCell {
  /// The measured phase as the report shows it.
  var consumeCell: ConsumeCell { ConsumeCell(measurement: self.measurement, refused: self.run.refused) }
}
