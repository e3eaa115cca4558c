import GRPCCore
import GRPCShimTransport
import MaaSContracts
import MaaSTesting

/// What a `maas-scheduler` process needs to serve on `database` (a free loopback port), taking
/// quota from `quotaTarget`. Its nodes never need to heartbeat: the grace outlasts any test.
func schedulerEnvironment(database: PostgresTestDatabase, quotaTarget: String) -> [String: String] {
  [
    "MAAS_SCHEDULER_DATABASE_URL": database.appURL,
    "MAAS_SCHEDULER_MIGRATION_DATABASE_URL": database.ownerURL,
    "MAAS_SCHEDULER_HOST": "127.0.0.1", "MAAS_SCHEDULER_PORT": "0", "MAAS_SCHEDULER_LOG_LEVEL": "warning",
    "MAAS_SCHEDULER_QUOTA_TARGET": quotaTarget,
    "MAAS_SCHEDULER_HEARTBEAT_GRACE_SECONDS": "3600",
  ]
}

/// Sets each tenant's CONCURRENT_GPUS limit at the quota service.
func setConcurrentGPULimits(_ limits: [String: Int64], at quotaTarget: String) async throws {
  try await withClient(quotaTarget) { client in
    let quota = Maas_Quota_V1_Quota.Client(wrapping: client)
    for (tenant, limit) in limits {
      _ = try await quota.setLimits(.with {
        $0.tenantID = tenant
        $0.limits = [.with { $0.resource = .concurrentGpus; $0.value = limit }]
        $0.idempotencyKey = "setup-\(tenant)"
      })
    }
  }
}

func withClient<Result: Sendable>(
  _ target: String, _ body: (GRPCClient<ShimClientTransport>) async throws -> Result
) async throws -> Result {
  try await withGRPCClient(transport: ShimClientTransport(target: target)) { client in try await body(client) }
}
