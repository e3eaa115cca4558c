import BenchSupport

/// The benchmark's own cluster is `.run/bench-scheduler`. The `scheduler` and `quota` schemas are
/// dropped every run and migrated again by the services as they start, so each run starts from
/// empty tables. The services migrate as the owner and serve as the app role (no BYPASSRLS).
extension BenchCluster {
  /// Starts the cluster. fsync stays on by default: every placement and every release is a
  /// durable commit in the scheduler, and the quota calls behind them are durable commits in
  /// the quota service; without fsync those commits would be free, which is not the path a real
  /// Schedule takes.
  static func start(fsync: Bool) throws -> BenchCluster {
    try BenchCluster.start(directory: ".run/bench-scheduler", fsync: fsync)
  }

  /// Drops both services' schemas (each migrates its own again when it starts). As the owner.
  func resetSchemas() throws {
    try self.sql(self.ownerURL, "DROP SCHEMA IF EXISTS scheduler CASCADE; DROP SCHEMA IF EXISTS quota CASCADE;")
  }

  /// The backends serving each service now, by pid: `pg:<application_name>`. As the app role,
  /// which the services connect as (pg_stat_activity shows a session's application_name to its
  /// own role).
  func serviceBackends() throws -> [Int32: String] {
    let text = try self.sql(
      self.appURL,
      "SELECT pid, application_name FROM pg_stat_activity WHERE application_name IN ('maas-scheduler', 'maas-quota')")
    var backends: [Int32: String] = [:]
    for line in text.split(separator: "\n") {
      let fields = line.split(separator: "|")
      if fields.count == 2, let pid = Int32(fields[0]) { backends[pid] = "pg:\(fields[1])" }
    }
    return backends
  }

  /// GPUs the database counts as held (exclusively, by memory or by MIG slices), and ACTIVE
  /// allocations: both 0 once every placement has been released.
  func heldInDatabase() throws -> (gpus: Int, activeAllocations: Int) {
    let text = try self.sql(
      self.ownerURL,
      """
      SELECT (SELECT count(*) FROM scheduler.gpus WHERE exclusive OR allocated_memory_bytes > 0 OR allocated_mig_slices > 0),
             (SELECT count(*) FROM scheduler.allocations WHERE state = 1)
      """)
    let fields = text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|").compactMap { Int($0) }
    guard fields.count == 2 else { throw BenchError("unexpected answer counting held GPUs: \(text)") }
    return (fields[0], fields[1])
  }
}
