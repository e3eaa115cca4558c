public import PostgresMigrations

/// The `scheduler` schema, which the scheduler service owns (GPU nodes, GPUs, allocations and deployments): its migrations, oldest first,
/// compiled into `maas-scheduler` and applied by `maas-scheduler migrate`. Tables arrive with the
/// service itself; a shipped migration never changes, later ones are appended.
public enum SchedulerSchema {
  public static let name = "scheduler"

  /// - Parameter serviceRole: the role the service connects as (no BYPASSRLS).
  public static func plan(serviceRole: String) throws -> MigrationPlan {
    try MigrationPlan(schema: name, migrations: [
      try .serviceRoleGrants(1, schema: name, role: serviceRole)
    ])
  }
}
