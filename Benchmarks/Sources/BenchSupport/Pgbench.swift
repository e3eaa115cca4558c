import Foundation

/// Runs pgbench, the C/libpq limit each benchmark measures its Swift peer against, and reads its
/// figures. Throughput is pgbench's own `tps` (which leaves out connection set-up). It prints only
/// the average latency, so the percentiles come from its per-transaction log (`--log`), whose
/// third field is each transaction's latency in microseconds. Writing that log costs pgbench a
/// buffered fprintf per transaction, about what the Swift side pays to keep its latencies in
/// memory.
///
/// What pgbench runs (its script, its variables) is each benchmark's own; this holds the run's
/// scratch directory for those scripts and for the logs.
public struct PgbenchRunner {
  public static let executable = "/usr/bin/pgbench"

  public let url: String
  /// Scripts and per-transaction logs, this process's own; `removeScratch` deletes it.
  public let scratch: URL

  /// - Parameter url: whom pgbench connects as.
  public init(url: String) throws {
    self.url = url
    self.scratch = FileManager.default.temporaryDirectory.appendingPathComponent("\(benchName)-pgbench-\(getpid())")
    try? FileManager.default.removeItem(at: self.scratch)
    try FileManager.default.createDirectory(at: self.scratch, withIntermediateDirectories: true)
  }

  public func removeScratch() {
    try? FileManager.default.removeItem(at: self.scratch)
  }

  /// `pgbench --version`'s line, for the report.
  public static var version: String {
    (try? runCommand(Self.executable, ["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? "unknown"
  }

  /// The arguments every measured pgbench run shares: no vacuum between runs (`-n`), every
  /// statement prepared once per connection (`-M prepared`), `clients` connections over `threads`
  /// threads (`-j`).
  public static func clientArguments(clients: Int, threads: Int) -> [String] {
    ["-n", "-M", "prepared", "-c", String(clients), "-j", String(threads)]
  }

  /// A run that is not measured (a warm-up), of `arguments` (all but `-T`, the log and the URL).
  /// - Returns: the transactions it made.
  @discardableResult
  public func warmUp(_ arguments: [String], seconds: Int) throws -> Int {
    let output = try runCommand(Self.executable, arguments + ["-T", String(seconds), self.url])
    return Int(Self.value(after: "number of transactions actually processed: ", in: output.stdout) ?? 0)
  }

  /// The measured run of `arguments` (all but `-T`, the log and the URL), its per-transaction log
  /// named after `logName` (unique per run: the logs are read, then deleted).
  /// - Parameter afterExit: called as soon as pgbench has exited, before its logs are read, so
  ///   that what a caller measures around the run leaves the reading out.
  public func measure(_ arguments: [String], seconds: Int, logName: String, afterExit: () -> Void = {}) throws -> PgbenchResult {
    let logPrefix = self.scratch.appendingPathComponent(logName).path
    let output = try runCommand(
      Self.executable,
      arguments + ["-T", String(seconds), "--log", "--log-prefix", logPrefix, self.url]
    )
    afterExit()
    guard let tps = Self.value(after: "tps = ", in: output.stdout) else {
      throw BenchError("no tps in pgbench's output:\n\(output.stdout)\(output.stderr)")
    }
    let transactions = Int(Self.value(after: "number of transactions actually processed: ", in: output.stdout) ?? 0)
    let failed = Self.value(after: "number of failed transactions: ", in: output.stdout) ?? 0
    let latencies = try self.readLogs(prefix: logName)
    try? FileManager.default.contentsOfDirectory(atPath: self.scratch.path)
      .filter { $0.hasPrefix(logName + ".") }
      .forEach { try? FileManager.default.removeItem(at: self.scratch.appendingPathComponent($0)) }
    let measurement = BenchMeasurement(
      latenciesNanoseconds: latencies, seconds: Double(seconds), errors: Int(failed), perSecond: tps)
    return PgbenchResult(measurement: measurement, transactions: transactions, output: output)
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

/// One measured pgbench run.
public struct PgbenchResult {
  /// Its tps, the latencies from its log, its failed transactions as errors.
  public var measurement: BenchMeasurement
  /// Transactions it made (pgbench's count, failed ones aside).
  public var transactions: Int
  /// What it printed: stderr says why transactions failed.
  public var output: CommandOutput
}
