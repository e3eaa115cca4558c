import Foundation

/// The benchmark's own cluster, under `.run/bench-quota`, apart from `make run`'s and
/// `make bench-postgres`'s so that none disturbs another. Its data directory is kept between runs
/// (initdb is skipped next time); the `quota` schema and pgbench's counter table are made again
/// every run, so each run starts from empty tables whatever the last one left behind.
struct BenchCluster {
  static let directory = ".run/bench-quota"
  static let script = "scripts/postgres"
  static let psql = "/usr/bin/psql"

  /// The owner's URL: maas-quota migrates with it, pgbench runs with it (it owns the table).
  let ownerURL: String
  /// The role maas-quota serves as (no BYPASSRLS, so row-level security applies).
  let appURL: String
  let port: Int
  let fsync: Bool

  /// Starts the cluster on a free port. fsync stays on by default, unlike postgres-bench's: the
  /// naive design's limit is one durable commit per call on the counter row (the row lock is held
  /// until the commit is flushed), and what Consume's group commit buys is one flush for a whole
  /// batch; without fsync both peers only measure CPU, and on two cores the gRPC round trip alone
  /// costs more than pgbench's whole update. The price is noise: flushes on a shared disk vary.
  static func start(fsync: Bool) throws -> BenchCluster {
    guard FileManager.default.isExecutableFile(atPath: Self.script) else {
      throw BenchError("run from the repository root: \(Self.script) not found")
    }
    // A cluster left running by an interrupted run keeps its old port; stop it so that it
    // starts on the free one.
    try runCommand(Self.script, ["stop", "--dir", Self.directory])
    let port = try freeLoopbackPort()
    note("starting the cluster in \(Self.directory) on 127.0.0.1:\(port), fsync \(fsync ? "on" : "off")")
    try runCommand(Self.script, ["start", "--dir", Self.directory, "--port", String(port)] + (fsync ? [] : ["--no-fsync"]))
    func url(_ role: String) throws -> String {
      try runCommand(Self.script, ["url", "--dir", Self.directory, "--role", role])
        .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    return BenchCluster(ownerURL: try url("owner"), appURL: try url("app"), port: port, fsync: fsync)
  }

  func stop() {
    do {
      try runCommand(Self.script, ["stop", "--dir", Self.directory])
      note("stopped the cluster (data kept in \(Self.directory); scripts/postgres destroy --dir \(Self.directory) --yes deletes it)")
    } catch {
      note("could not stop the cluster: \(error)")
    }
  }

  /// Drops the `quota` schema (maas-quota migrates it again when it starts: its migration table
  /// lives inside it) and makes pgbench's one-row counter afresh. As the owner, which owns both.
  func resetTables() throws {
    try self.ownerSQL(
      """
      DROP SCHEMA IF EXISTS quota CASCADE;
      DROP TABLE IF EXISTS bench_counter;
      CREATE TABLE bench_counter (id integer PRIMARY KEY, used bigint NOT NULL);
      INSERT INTO bench_counter VALUES (1, 0);
      """)
  }

  /// `bench_counter`'s `used` after the pgbench cells (a check that they really updated it).
  func counterValue() throws -> Int64 {
    let text = try self.ownerSQL("SELECT used FROM bench_counter WHERE id = 1", tuplesOnly: true)
    guard let value = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
      throw BenchError("bench_counter: unexpected answer \(text)")
    }
    return value
  }

  @discardableResult
  private func ownerSQL(_ sql: String, tuplesOnly: Bool = false) throws -> String {
    try runCommand(Self.psql, ["-X", "-q", "-v", "ON_ERROR_STOP=1"] + (tuplesOnly ? ["-A", "-t"] : []) + ["-d", self.ownerURL, "-c", sql]).stdout
  }
}
