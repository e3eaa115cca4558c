import BenchSupport
import Foundation

/// The benchmark's own cluster is `.run/bench-quota`. The `quota` schema and pgbench's counter
/// table are made again every run, so each run starts from empty tables whatever the last one
/// left behind. maas-quota migrates as the owner and serves as the app role; pgbench runs as the
/// owner (it owns the counter table).
extension BenchCluster {
  /// Starts the cluster. fsync stays on by default, unlike postgres-bench's: the naive design's
  /// limit is one durable commit per call on the counter row (the row lock is held until the
  /// commit is flushed), and what Consume's group commit buys is one flush for a whole batch;
  /// without fsync both peers only measure CPU, and on two cores the gRPC round trip alone costs
  /// more than pgbench's whole update. The price is noise: flushes on a shared disk vary.
  static func start(fsync: Bool) throws -> BenchCluster {
    try BenchCluster.start(directory: ".run/bench-quota", fsync: fsync)
  }

  /// Drops the `quota` schema (maas-quota migrates it again when it starts: its migration table
  /// lives inside it) and makes pgbench's one-row counter afresh. As the owner, which owns both.
  func resetTables() throws {
    try self.sql(
      self.ownerURL,
      """
      DROP SCHEMA IF EXISTS quota CASCADE;
      DROP TABLE IF EXISTS bench_counter;
      CREATE TABLE bench_counter (id integer PRIMARY KEY, used bigint NOT NULL);
      INSERT INTO bench_counter VALUES (1, 0);
      """)
  }

  /// `bench_counter`'s `used` after the pgbench cells (a check that they really updated it).
  func counterValue() throws -> Int64 {
    let text = try self.sql(self.ownerURL, "SELECT used FROM bench_counter WHERE id = 1")
    guard let value = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
      throw BenchError("bench_counter: unexpected answer \(text)")
    }
    return value
  }
}
