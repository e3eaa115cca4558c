public import PostgresMigrations

/// The `quota` schema, which the quota service owns (limits, usage counters, reservations and the usage ledger): its migrations, oldest first,
/// compiled into `maas-quota` and applied by `maas-quota migrate`. Tables arrive with the
/// service itself; a shipped migration never changes, later ones are appended.
public enum QuotaSchema {
  public static let name = "quota"

  /// - Parameter serviceRole: the role the service connects as (no BYPASSRLS).
  public static func plan(serviceRole: String) throws -> MigrationPlan {
    try MigrationPlan(schema: name, migrations: [
      try .serviceRoleGrants(1, schema: name, role: serviceRole)
    ])
  }
}
