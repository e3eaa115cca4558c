public import Postgres

/// The role a service serves as must be held to its tenant by row-level security: the policies
/// are not FORCE (migrations and SECURITY DEFINER functions run as the schema's owner and see
/// every row), so a superuser, a role with BYPASSRLS, or the owner of the schema's tables (or a
/// member with its privileges) would see every tenant's rows, and a query that forgot its tenant
/// filter would leak them instead of finding nothing. That happens when a deployment gives
/// `<PREFIX>_DATABASE_URL` the owner's credentials (the migration URL defaults to it), so `serve`
/// refuses to start on such a role rather than run without the safety net.
public enum ServingRoleCheck {
  public struct Refusal: Error, CustomStringConvertible {
    public let role: String
    /// Why the role escapes row-level security, e.g. ["is a superuser", "owns tables of schema quota"].
    public let reasons: [String]
    public let prefix: String

    public var description: String {
      "the service connects as \"\(role)\", which \(reasons.joined(separator: " and ")), so row-level security "
        + "would not hold it to one tenant; set \(prefix)_DATABASE_URL to the service role (\(prefix)_DATABASE_SERVICE_ROLE, "
        + "maas_app by default) and \(prefix)_MIGRATION_DATABASE_URL to the schema's owner"
    }
  }

  /// - Throws: `Refusal` when the pool's role escapes row-level security on `schema`;
  ///   `PostgresError` when the database cannot be asked.
  public static func check(_ pool: PostgresPool, schema: String, prefix: String) async throws {
    let rows = try await pool.query(
      """
      SELECT current_user::text AS role, r.rolsuper AS superuser, r.rolbypassrls AS bypassrls,
        EXISTS (
          SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND pg_has_role(current_user, c.relowner, 'USAGE')
        ) AS owner
      FROM pg_roles r WHERE r.rolname = current_user
      """,
      [schema]
    )
    guard let row = rows.first else { return }
    var reasons: [String] = []
    if try row.decode(Bool.self, column: "superuser") { reasons.append("is a superuser") }
    if try row.decode(Bool.self, column: "bypassrls") { reasons.append("has BYPASSRLS") }
    if try row.decode(Bool.self, column: "owner") { reasons.append("owns tables of schema \(schema)") }
    guard reasons.isEmpty else {
      throw Refusal(role: try row.decode(String.self, column: "role"), reasons: reasons, prefix: prefix)
    }
  }
}
