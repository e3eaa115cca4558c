import Foundation

/// The benchmark's own cluster, under `.run/bench-gateway`, apart from `make run`'s and the other
/// benchmarks' so that none disturbs another. Its data directory is kept between runs (initdb is
/// skipped next time); the three services' schemas are dropped every run and migrated again by
/// the services as they start, so each run starts from empty tables.
struct BenchCluster {
  static let directory = ".run/bench-gateway"
  static let script = "scripts/postgres"
  static let psql = "/usr/bin/psql"

  /// The owner's URL: the services migrate with it.
  let ownerURL: String
  /// The role the services serve as and pgbench runs as (no BYPASSRLS, so row-level security
  /// applies to both alike).
  let appURL: String
  let port: Int
  let fsync: Bool

  /// Starts the cluster on a free port. fsync stays on by default: every gateway call spends one
  /// API call at quota, a durable write (group-committed per tenant), while the list itself is a
  /// read-only transaction that flushes nothing; without fsync the write would be free, which is
  /// not the path a real call takes.
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

  /// Drops the services' schemas (each service migrates its own again when it starts: the
  /// migration table lives inside the schema). As the owner, which owns them.
  func resetSchemas() throws {
    try self.sql(self.ownerURL, "DROP SCHEMA IF EXISTS gateway CASCADE; DROP SCHEMA IF EXISTS registry CASCADE; DROP SCHEMA IF EXISTS quota CASCADE;")
  }

  /// The postmaster's pid (first line of `postmaster.pid`), for the CPU accounting.
  func postmasterPID() throws -> Int32 {
    let path = Self.directory + "/data/postmaster.pid"
    guard let text = try? String(contentsOfFile: path, encoding: .utf8),
      let first = text.split(separator: "\n").first, let pid = Int32(first)
    else { throw BenchError("cannot read the postmaster's pid from \(path)") }
    return pid
  }

  /// Runs `sql` through psql with `variables` (`-v name=value`, referenced as `:'name'`, so
  /// values are quoted by psql, never spliced here); unaligned tuples only.
  @discardableResult
  func sql(_ url: String, _ sql: String, variables: [String: String] = [:]) throws -> String {
    let settings = variables.sorted { $0.key < $1.key }.flatMap { ["-v", "\($0.key)=\($0.value)"] }
    // `-c` does not interpolate variables; a script on stdin would, but runCommand gives the child
    // /dev/null. A file, then.
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-bench-\(UUID().uuidString).sql")
    try sql.write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    return try runCommand(
      Self.psql, ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t"] + settings + ["-d", url, "-f", file.path]
    ).stdout
  }
}
