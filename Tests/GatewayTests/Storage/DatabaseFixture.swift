import Foundation
import GRPCCore
import GRPCShimTransport
import Logging
import MaaSContracts
import MaaSTesting
import Postgres
import PostgresMigrations
@testable import Gateway

/// A fresh database with the gateway schema migrated, a store on it connected as the service
/// role (row-level security applies), and the owner's pool for looking behind its back.
struct GatewayDatabase {
  let store: PostgresGatewayStore
  let app: PostgresPool
  let owner: PostgresPool
  let database: PostgresTestDatabase

  /// Administration on this store whose quota client is never called (key operations only).
  func keyAdministration(clock: any GatewayClock = SystemGatewayClock()) -> TenantAdministration {
    TenantAdministration(store: store, quota: NeverCalledQuota.client, clock: clock, logger: quietLogger)
  }

  /// Inserts a tenant directly (no quota registration).
  @discardableResult
  func tenant(_ name: String, at time: Date = Date()) async throws -> Tenant {
    let tenant = Tenant(id: "tenant-\(name)", name: name, displayName: name.capitalized, createTime: time)
    guard case .inserted(let inserted) = try await store.insertTenant(tenant, idempotency: nil) else {
      throw PostgresError(kind: .invalidUse, message: "tenant \(name) was not inserted")
    }
    return inserted
  }
}

/// A client that is never connected: for code paths that must not call the service behind.
enum NeverCalledQuota {
  static let grpcClient = GRPCClient(transport: ShimClientTransport(target: "127.0.0.1:1"))
  static let client = Maas_Quota_V1_Quota.Client(wrapping: grpcClient)
}

/// Runs `body` with a gateway database of its own, `name` being unique per test.
func withGatewayDatabase<Result>(_ name: String, _ body: (GatewayDatabase) async throws -> Result) async throws -> Result {
  try await withMigratedDatabase(named: name, plan: try GatewaySchema.plan(serviceRole: "maas_app"), appConnections: 6) { db in
    try await body(GatewayDatabase(store: PostgresGatewayStore(pool: db.app), app: db.app, owner: db.owner, database: db.database))
  }
}
