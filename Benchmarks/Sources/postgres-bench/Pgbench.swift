import Foundation

/// pgbench, the limit the Swift client is measured against: C, libpq, one thread per client
/// (`-j N`), every statement prepared once per connection (`-M prepared`), no vacuum between runs
/// (`-n`).
///
/// Its throughput is its own `tps` (which leaves out connection set-up). It prints only the
/// average latency, so the percentiles come from its per-transaction log (`--log`), whose third
/// field is each transaction's latency in microseconds. Writing that log costs pgbench a buffered
/// fprintf per transaction, about what the Swift side pays to keep its latencies in memory.
struct Pgbench {
  static let executable = "/usr/bin/pgbench"

  let url: String
  let scratch: URL

  init(url: String) throws {
    self.url = url
    self.scratch = FileManager.default.temporaryDirectory.appendingPathComponent("postgres-bench-pgbench-\(getpid())")
    try? FileManager.default.removeItem(at: self.scratch)
    try FileManager.default.createDirectory(at: self.scratch, withIntermediateDirectories: true)
    // pgbench's own update script (tpcb-like) touches three tables and inserts into history; this
    // one is the single-row update the Swift side runs, with the same random key.
    try """
    \\set aid random(1, 100000 * :scale)
    UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;

    """.write(to: self.updateScript, atomically: true, encoding: .utf8)
  }

  private var updateScript: URL { self.scratch.appendingPathComponent("single-row-update.sql") }

  func removeScratch() {
    try? FileManager.default.removeItem(at: self.scratch)
  }

  private func scriptArguments(_ workload: Workload) -> [String] {
    switch workload {
    case .select: return ["-S"]
    case .update: return ["-f", self.updateScript.path]
    }
  }

  /// A warm-up run, then the measured one.
  func measure(_ workload: Workload, clients: Int, seconds: Int, warmUpSeconds: Int) throws -> Measurement {
    let common = ["-n", "-M", "prepared", "-c", String(clients), "-j", String(clients)] + self.scriptArguments(workload)
    if warmUpSeconds > 0 {
      try runCommand(Self.executable, common + ["-T", String(warmUpSeconds), self.url])
    }
    let prefix = "\(workload.rawValue)-\(clients)"
    let logPrefix = self.scratch.appendingPathComponent(prefix).path
    let output = try runCommand(
      Self.executable,
      common + ["-T", String(seconds), "--log", "--log-prefix", logPrefix, self.url]
    )
    guard let tps = Self.value(after: "tps = ", in: output.stdout) else {
      throw BenchError("no tps in pgbench's output:\n\(output.stdout)\(output.stderr)")
    }
    let failed = Self.value(after: "number of failed transactions: ", in: output.stdout) ?? 0
    let latencies = try self.readLogs(prefix: prefix)
    try? FileManager.default.contentsOfDirectory(atPath: self.scratch.path)
      .filter { $0.hasPrefix(prefix + ".") }
      .forEach { try? FileManager.default.removeItem(at: self.scratch.appendingPathComponent($0)) }
    return Measurement(
      latenciesNanoseconds: latencies,
      seconds: Double(seconds),
      errors: Int(failed),
      opsPerSecond: tps
    )
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
