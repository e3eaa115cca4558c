import Logging
import MaaSRuntime
import MaaSTesting
import Postgres
import Quota
import Testing

@Suite("The serving role must be held by row-level security", .serialized, .timeLimit(.minutes(3)))
struct ServingRoleCheckTests {
  static func refusal(as url: String, schema: String = "quota") async throws -> ServingRoleCheck.Refusal? {
    let pool = try PostgresPool(
      configuration: PostgresConfiguration(url: url, minConnections: 0, maxConnections: 1, connectTimeout: .seconds(15)),
      logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
    do {
      try await ServingRoleCheck.check(pool, schema: schema, prefix: "MAAS_QUOTA")
      await pool.close()
      return nil
    } catch let refusal as ServingRoleCheck.Refusal {
      await pool.close()
      return refusal
    } catch {
      await pool.close()
      throw error
    }
  }

  @Test("the service role passes, the owner of the schema's tables and a superuser are refused, with why")
  func rolesJudged() async throws {
    try await withMigratedDatabase(named: "serving_role", plan: QuotaSchema.plan(serviceRole: "maas_app")) { migrated in
      #expect(try await Self.refusal(as: migrated.database.appURL) == nil)

      let owner = try #require(try await Self.refusal(as: migrated.database.ownerURL))
      #expect(owner.role == "maas_owner")
      #expect(owner.reasons == ["owns tables of schema quota"])
      #expect(owner.description.contains("MAAS_QUOTA_DATABASE_URL"))
      #expect(owner.description.contains("MAAS_QUOTA_MIGRATION_DATABASE_URL"))

      let superuser = try #require(try await Self.refusal(as: migrated.database.adminURL))
      #expect(superuser.reasons.contains("is a superuser"))
      // The owner of another schema's tables is not refused for this one.
      #expect(try await Self.refusal(as: migrated.database.ownerURL, schema: "registry") == nil)
    }
  }

  @Test("maas-quota given the owner's URL to serve with migrates, then refuses to serve and exits 1")
  func serveRefusesTheOwner() async throws {
    let database = try await PostgresFixture.shared().createDatabase(named: "serving_role_process")
    let outcome = try await runToCompletion(
      try builtProduct(named: "maas-quota").path, [],
      environment: [
        "MAAS_QUOTA_DATABASE_URL": database.ownerURL, "MAAS_QUOTA_HOST": "127.0.0.1", "MAAS_QUOTA_PORT": "0",
      ],
      timeLimit: .seconds(60))
    #expect(outcome.status == 1)
    #expect(outcome.standardError.contains("refusing to serve"))
    #expect(outcome.standardError.contains("owns tables of schema quota"))
    #expect(!outcome.standardOutput.contains("listening on"))
  }
}
