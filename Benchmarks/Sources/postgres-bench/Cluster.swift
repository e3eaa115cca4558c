import BenchSupport

/// The benchmark's own cluster is `.run/bench-postgres`. The pgbench tables are made again every
/// run, so each run starts from the same freshly vacuumed tables whatever the last one's updates
/// left behind. pgbench and the Swift client both connect as the owner: same role, same
/// transport (127.0.0.1 TCP), so the only difference between the peers is the client.
extension BenchCluster {
  /// Starts the cluster without fsync: the update cells should measure the client and the
  /// server's CPU, not how fast this shared disk flushes (both peers would wait for the same
  /// flushes, and that wait would drown the difference between them).
  static func start() throws -> BenchCluster {
    try BenchCluster.start(directory: ".run/bench-postgres", fsync: false)
  }

  /// `pgbench -i -s scale` as the owner: drops and makes pgbench_accounts (100000 * scale rows)
  /// and the small tables, with their primary keys, and vacuums them.
  func initialisePgbench(scale: Int) throws {
    let clock = ContinuousClock()
    let start = clock.now
    note("pgbench -i -s \(scale) (\(100_000 * scale) accounts)")
    try runCommand(PgbenchRunner.executable, ["-i", "-q", "-s", String(scale), self.ownerURL])
    note("tables ready in \(start.duration(to: clock.now))")
  }
}
