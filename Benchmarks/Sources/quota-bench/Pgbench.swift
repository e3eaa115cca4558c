import Foundation

/// The naive design's limit: every call a transaction of its own that updates the tenant's one
/// counter row, `UPDATE bench_counter SET used = used + 1 WHERE id = 1`, run by pgbench (C,
/// libpq, statement prepared once per connection with `-M prepared`, no vacuum with `-n`) on the
/// same server as maas-quota. Each update holds the row lock until its commit, so however many
/// clients there are, the row sees one update-and-commit at a time.
///
/// Two threads (`-j 2`, fewer when there are fewer clients): the machine this runs on has two
/// cores. Throughput is pgbench's own `tps` (which leaves out connection set-up); percentiles come
/// from its per-transaction log (`--log`, third field: latency in microseconds), as in
/// postgres-bench.
struct Pgbench {
  static let executable = "/usr/bin/pgbench"
  static let statement = "UPDATE bench_counter SET used = used + 1 WHERE id = 1"

  let url: String
  let scratch: URL

  init(url: String) throws {
    self.url = url
    self.scratch = FileManager.default.temporaryDirectory.appendingPathComponent("quota-bench-pgbench-\(getpid())")
    try? FileManager.default.removeItem(at: self.scratch)
    try FileManager.default.createDirectory(at: self.scratch, withIntermediateDirectories: true)
    try "\(Self.statement);\n".write(to: self.script, atomically: true, encoding: .utf8)
  }

  private var script: URL { self.scratch.appendingPathComponent("counter-update.sql") }

  func removeScratch() {
    try? FileManager.default.removeItem(at: self.scratch)
  }

  static var version: String {
    (try? runCommand(Self.executable, ["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? "unknown"
  }

  /// A warm-up run, then the measured one. Also returns how many transactions both made, so that
  /// the caller can check them against the counter.
  func measure(clients: Int, seconds: Int, warmUpSeconds: Int) throws -> (Measurement, transactions: Int) {
    let common = ["-n", "-M", "prepared", "-c", String(clients), "-j", String(min(2, clients)), "-f", self.script.path]
    var transactions = 0
    if warmUpSeconds > 0 {
      let warmUp = try runCommand(Self.executable, common + ["-T", String(warmUpSeconds), self.url])
      transactions += Int(Self.value(after: "number of transactions actually processed: ", in: warmUp.stdout) ?? 0)
    }
    let prefix = "update-\(clients)"
    let logPrefix = self.scratch.appendingPathComponent(prefix).path
    let output = try runCommand(
      Self.executable,
      common + ["-T", String(seconds), "--log", "--log-prefix", logPrefix, self.url]
    )
    guard let tps = Self.value(after: "tps = ", in: output.stdout) else {
      throw BenchError("no tps in pgbench's output:\n\(output.stdout)\(output.stderr)")
    }
    transactions += Int(Self.value(after: "number of transactions actually processed: ", in: output.stdout) ?? 0)
    let failed = Self.value(after: "number of failed transactions: ", in: output.stdout) ?? 0
    let latencies = try self.readLogs(prefix: prefix)
    try? FileManager.default.contentsOfDirectory(atPath: self.scratch.path)
      .filter { $0.hasPrefix(prefix + ".") }
      .forEach { try? FileManager.default.removeItem(at: self.scratch.appendingPathComponent($0)) }
    let measurement = Measurement(
      latenciesNanoseconds: latencies, seconds: Double(seconds), errors: Int(failed), perSecond: tps)
    return (measurement, transactions)
  }

  /// Every transaction's latency from the per-thread logs `prefix.<pid>` and `prefix.<pid>.<n>`
  /// (`client_id transaction_no time_us script_no epoch epoch_us`; "failed" for a failed one).
  private func readLogs(prefix: String) throws -> [Int64] {
    var latencies: [Int64] = []
    let files = try FileManager.default.contentsOfDirectory(atPath: self.scratch.path).filter { $0.hasPrefix(prefix + ".") }
    guard !files.isEmpty else { throw BenchError("pgbench wrote no transaction log for \(prefix)") }
    for file in files {
      let text = try String(contentsOf: self.scratch.appendingPathComponent(file), encoding: .utf8)
      for line in text.split(separator: "\n") {
        let fields = line.split(separator: " ", maxSplits: 3)
        guard fields.count >= 3, let microseconds = Int64(fields[2]) else { continue }
        latencies.append(microseconds * 1_000)
      }
    }
    return latencies
  }

  /// The number that follows `label` on its line of pgbench's summary.
  private static func value(after label: String, in text: String) -> Double? {
    for line in text.split(separator: "\n") {
      guard let range = line.range(of: label) else { continue }
      let rest = line[range.upperBound...].prefix { $0.isNumber || $0 == "." }
      return Double(rest)
    }
    return nil
  }
}
