import BenchSupport
import Foundation

/// pgbench, the limit the Swift client is measured against: C, libpq, one thread per client
/// (`-j N`), every statement prepared once per connection (`-M prepared`), no vacuum between runs
/// (`-n`); its figures as `PgbenchRunner` reads them.
struct Pgbench {
  let runner: PgbenchRunner

  init(url: String) throws {
    self.runner = try PgbenchRunner(url: url)
    // pgbench's own update script (tpcb-like) touches three tables and inserts into history; this
    // one is the single-row update the Swift side runs, with the same random key.
    try """
    \\set aid random(1, 100000 * :scale)
    UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;

    """.write(to: self.updateScript, atomically: true, encoding: .utf8)
  }

  private var updateScript: URL { self.runner.scratch.appendingPathComponent("single-row-update.sql") }

  func removeScratch() {
    self.runner.removeScratch()
  }

  private func scriptArguments(_ workload: Workload) -> [String] {
    switch workload {
    case .select: return ["-S"]
    case .update: return ["-f", self.updateScript.path]
    }
  }

  /// A warm-up run, then the measured one.
  func measure(_ workload: Workload, clients: Int, seconds: Int, warmUpSeconds: Int) throws -> BenchMeasurement {
    let common = PgbenchRunner.clientArguments(clients: clients, threads: clients) + self.scriptArguments(workload)
    if warmUpSeconds > 0 {
      try self.runner.warmUp(common, seconds: warmUpSeconds)
    }
    return try self.runner.measure(common, seconds: seconds, logName: "\(workload.rawValue)-\(clients)").measurement
  }
}
