import BenchSupport

/// The benchmark's own cluster is `.run/bench-gateway`. The three services' schemas are dropped
/// every run and migrated again by the services as they start, so each run starts from empty
/// tables. The services migrate as the owner; they serve, and pgbench runs, as the app role (no
/// BYPASSRLS, so row-level security applies to both alike).
extension BenchCluster {
  /// Starts the cluster. fsync stays on by default: every gateway call spends one API call at
  /// quota, a durable write (group-committed per tenant), while the list itself is a read-only
  /// transaction that flushes nothing; without fsync the write would be free, which is not the
  /// path a real call takes.
  static func start(fsync: Bool) throws -> BenchCluster {
    try BenchCluster.start(directory: ".run/bench-gateway", fsync: fsync)
  }

  /// Drops the services' schemas (each service migrates its own again when it starts: the
  /// migration table lives inside the schema). As the owner, which owns them.
  func resetSchemas() throws {
    try self.sql(self.ownerURL, "DROP SCHEMA IF EXISTS gateway CASCADE; DROP SCHEMA IF EXISTS registry CASCADE; DROP SCHEMA IF EXISTS quota CASCADE;")
  }
}
