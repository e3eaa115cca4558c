public import PostgresMigrations

/// The `gateway` schema, which the gateway service owns (tenants and API keys): its migrations, oldest first,
/// compiled into `maas-gateway` and applied by `maas-gateway migrate`. Tables arrive with the
/// service itself; a shipped migration never changes, later ones are appended.
public enum GatewaySchema {
  public static let name = "gateway"

  /// - Parameter serviceRole: the role the service connects as (no BYPASSRLS).
  public static func plan(serviceRole: String) throws -> MigrationPlan {
    try MigrationPlan(schema: name, migrations: [
      try .serviceRoleGrants(1, schema: name, role: serviceRole)
    ])
  }
}
