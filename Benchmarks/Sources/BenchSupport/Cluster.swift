import Foundation

/// A benchmark's own Postgres cluster, made and run by `scripts/postgres` in a directory of its
/// own (`.run/bench-<name>`), apart from `make run`'s and the other benchmarks' so that none
/// disturbs another. The data directory is kept between runs (initdb is skipped next time); each
/// benchmark makes its tables afresh every run.
public struct BenchCluster {
  public static let script = "scripts/postgres"
  public static let psql = "/usr/bin/psql"

  public let directory: String
  /// The owner's URL, over 127.0.0.1 TCP: it owns the database and the service schemas.
  public let ownerURL: String
  /// The role services connect as (no BYPASSRLS, so row-level security applies).
  public let appURL: String
  public let port: Int
  public let fsync: Bool

  /// Starts the cluster in `directory` on a free port, with fsync or without: whether a
  /// benchmark's cells should pay for durable commits is its own call.
  public static func start(directory: String, fsync: Bool) throws -> BenchCluster {
    guard FileManager.default.isExecutableFile(atPath: Self.script) else {
      throw BenchError("run from the repository root: \(Self.script) not found")
    }
    // A cluster left running by an interrupted run keeps its old port; stop it so that it
    // starts on the free one.
    try runCommand(Self.script, ["stop", "--dir", directory])
    let port = try freeLoopbackPort()
    note("starting the cluster in \(directory) on 127.0.0.1:\(port), fsync \(fsync ? "on" : "off")")
    try runCommand(Self.script, ["start", "--dir", directory, "--port", String(port)] + (fsync ? [] : ["--no-fsync"]))
    func url(_ role: String) throws -> String {
      try runCommand(Self.script, ["url", "--dir", directory, "--role", role])
        .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
    return BenchCluster(directory: directory, ownerURL: try url("owner"), appURL: try url("app"), port: port, fsync: fsync)
  }

  /// Stops the server, keeping its data. Never throws: it runs on the way out of failed runs too.
  public func stop() {
    do {
      try runCommand(Self.script, ["stop", "--dir", self.directory])
      note("stopped the cluster (data kept in \(self.directory); scripts/postgres destroy --dir \(self.directory) --yes deletes it)")
    } catch {
      note("could not stop the cluster: \(error)")
    }
  }

  /// The postmaster's pid (first line of `postmaster.pid`).
  public func postmasterPID() throws -> Int32 {
    let path = self.directory + "/data/postmaster.pid"
    guard let text = try? String(contentsOfFile: path, encoding: .utf8),
      let first = text.split(separator: "\n").first, let pid = Int32(first)
    else { throw BenchError("cannot read the postmaster's pid from \(path)") }
    return pid
  }

  /// Runs `sql` through psql as `url`'s role with `variables` (`-v name=value`, referenced as
  /// `:'name'`, so values are quoted by psql, never spliced here); stops at the first error;
  /// returns the unaligned tuples only.
  @discardableResult
  public func sql(_ url: String, _ sql: String, variables: [String: String] = [:]) throws -> String {
    let settings = variables.sorted { $0.key < $1.key }.flatMap { ["-v", "\($0.key)=\($0.value)"] }
    // `-c` does not interpolate variables; a script on stdin would, but runCommand gives the child
    // /dev/null. A file, then.
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(benchName)-\(UUID().uuidString).sql")
    try sql.write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    return try runCommand(
      Self.psql, ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-A", "-t"] + settings + ["-d", url, "-f", file.path]
    ).stdout
  }
}
