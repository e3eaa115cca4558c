public import PostgresMigrations

/// The `registry` schema, which the registry service owns (models, versions, artifacts and aliases): its migrations, oldest first,
/// compiled into `maas-registry` and applied by `maas-registry migrate`. Tables arrive with the
/// service itself; a shipped migration never changes, later ones are appended.
public enum RegistrySchema {
  public static let name = "registry"

  /// - Parameter serviceRole: the role the service connects as (no BYPASSRLS).
  public static func plan(serviceRole: String) throws -> MigrationPlan {
    try MigrationPlan(schema: name, migrations: [
      try .serviceRoleGrants(1, schema: name, role: serviceRole)
    ])
  }
}
