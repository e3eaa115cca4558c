import Foundation

/// The benchmark's own cluster, under `.run/bench-postgres`, apart from the `make run` one so
/// that neither disturbs the other. Its data directory is kept between runs (initdb is skipped
/// next time); the pgbench tables are made again every run, so each run starts from the same
/// freshly vacuumed tables whatever the last one's updates left behind.
struct BenchCluster {
  static let directory = ".run/bench-postgres"
  static let script = "scripts/postgres"

  /// The owner's URL, over 127.0.0.1 TCP. pgbench and the Swift client both connect with it:
  /// same role, same transport, so the only difference between the peers is the client.
  let url: String
  let port: Int

  /// Starts the cluster on a free port. fsync is off: the update cells should measure the
  /// client and the server's CPU, not how fast this shared disk flushes (both peers would wait
  /// for the same flushes, and that wait would drown the difference between them).
  static func start() throws -> BenchCluster {
    guard FileManager.default.isExecutableFile(atPath: Self.script) else {
      throw BenchError("run from the repository root: \(Self.script) not found")
    }
    // A cluster left running by an interrupted run keeps its old port; stop it so that it
    // starts on the free one.
    try runCommand(Self.script, ["stop", "--dir", Self.directory])
    let port = try freeLoopbackPort()
    note("starting the cluster in \(Self.directory) on 127.0.0.1:\(port)")
    try runCommand(Self.script, ["start", "--dir", Self.directory, "--port", String(port), "--no-fsync"])
    let url = try runCommand(Self.script, ["url", "--dir", Self.directory, "--role", "owner"])
      .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    return BenchCluster(url: url, port: port)
  }

  func stop() {
    do {
      try runCommand(Self.script, ["stop", "--dir", Self.directory])
      note("stopped the cluster (data kept in \(Self.directory); scripts/postgres destroy --dir \(Self.directory) --yes deletes it)")
    } catch {
      note("could not stop the cluster: \(error)")
    }
  }

  /// `pgbench -i -s scale` as the owner: drops and makes pgbench_accounts (100000 * scale rows)
  /// and the small tables, with their primary keys, and vacuums them.
  func initialisePgbench(scale: Int) throws {
    let clock = ContinuousClock()
    let start = clock.now
    note("pgbench -i -s \(scale) (\(100_000 * scale) accounts)")
    try runCommand(Pgbench.executable, ["-i", "-q", "-s", String(scale), self.url])
    note("tables ready in \(start.duration(to: clock.now))")
  }
}
