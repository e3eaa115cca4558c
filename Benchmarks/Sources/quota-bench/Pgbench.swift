import BenchSupport
import Foundation

/// The naive design's limit: every call a transaction of its own that updates the tenant's one
/// counter row, `UPDATE bench_counter SET used = used + 1 WHERE id = 1`, run by pgbench (C,
/// libpq, statement prepared once per connection with `-M prepared`, no vacuum with `-n`) on the
/// same server as maas-quota. Each update holds the row lock until its commit, so however many
/// clients there are, the row sees one update-and-commit at a time.
///
/// Two threads (`-j 2`, fewer when there are fewer clients): the machine this runs on has two
/// cores. Its figures as `PgbenchRunner` reads them, as in postgres-bench.
struct Pgbench {
  static let statement = "UPDATE bench_counter SET used = used + 1 WHERE id = 1"

  let runner: PgbenchRunner

  init(url: String) throws {
    self.runner = try PgbenchRunner(url: url)
    try "\(Self.statement);\n".write(to: self.script, atomically: true, encoding: .utf8)
  }

  private var script: URL { self.runner.scratch.appendingPathComponent("counter-update.sql") }

  func removeScratch() {
    self.runner.removeScratch()
  }

  /// A warm-up run, then the measured one. Also returns how many transactions both made, so that
  /// the caller can check them against the counter.
  func measure(clients: Int, seconds: Int, warmUpSeconds: Int) throws -> (BenchMeasurement, transactions: Int) {
    let common = PgbenchRunner.clientArguments(clients: clients, threads: min(2, clients)) + ["-f", self.script.path]
    var transactions = 0
    if warmUpSeconds > 0 {
      transactions += try self.runner.warmUp(common, seconds: warmUpSeconds)
    }
    let result = try self.runner.measure(common, seconds: seconds, logName: "update-\(clients)")
    return (result.measurement, transactions + result.transactions)
  }
}
