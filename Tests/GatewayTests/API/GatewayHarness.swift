import Foundation
import GRPCCore
import GRPCShimTransport
import Logging
import MaaSContracts
import MaaSTesting
import Postgres
import PostgresMigrations
import Quota
import Testing
@testable import Gateway

/// The gateway as deployed, over the real transport: its two guarded services on a loopback
/// server, its own database, the REAL quota service (on a loopback server and a database of its
/// own) and a recording registry stub. Tests call it as tenants' clients would.
struct GatewayHarness {
  static let adminToken = "admin-token-for-the-tests-0123456789"

  let gateway: Maas_Gateway_V1_Gateway.Client<ShimClientTransport>
  let admin: Maas_Gateway_V1_Admin.Client<ShimClientTransport>
  /// The quota service, called directly, to check what the gateway did there.
  let quota: Maas_Quota_V1_Quota.Client<ShimClientTransport>
  let registry: RecordingRegistry
  let db: GatewayDatabase

  /// Metadata carrying `credential` as a bearer token.
  static func bearer(_ credential: String) -> Metadata { ["authorization": "Bearer \(credential)"] }

  var asAdmin: Metadata { Self.bearer(Self.adminToken) }

  /// Creates a tenant through Admin (which registers it with quota), with an API-call limit if
  /// given, and an API key for it. Returns the tenant and the key's secret.
  func tenant(_ name: String, apiCallsPerDay: Int64? = nil) async throws -> (tenant: Maas_Gateway_V1_Tenant, key: String) {
    // A deadline of its own, so that the setup is not held to a test's tight upstream bound (one
    // test sets 1 s; on a loaded machine registering the tenant at quota took longer).
    var options = CallOptions.defaults
    options.timeout = .seconds(60)
    let tenant = try await admin.createTenant(
      .with {
        $0.name = name
        $0.displayName = name.capitalized
        if let apiCallsPerDay {
          $0.limits = [.with {
            $0.resource = .apiCallsPerDay
            $0.value = apiCallsPerDay
          }]
        }
      }, metadata: asAdmin, options: options)
    let key = try await admin.createApiKey(.with { $0.tenantID = tenant.id }, metadata: asAdmin, options: options)
    return (tenant, key.secret)
  }

  /// API calls the tenant has spent today, as quota counts them.
  func apiCallsUsed(_ tenantID: String) async throws -> Int64 {
    try await quota.getQuota(.with { $0.tenantID = tenantID }).resources.first { $0.resource == .apiCallsPerDay }!.used
  }
}

/// Runs `body` with a harness whose databases are named after `name`, unique per test.
func withGateway(
  _ name: String,
  configure: (inout GatewaySettings) -> Void = { _ in },
  _ body: (GatewayHarness) async throws -> Void
) async throws {
  try await withGatewayDatabase(name) { db in
    try await withQuotaService(name + "_quota") { quotaService in
      let registry = RecordingRegistry()
      try await withLoopbackServer(services: [quotaService]) { quotaClient, quotaServer in
        try await withLoopbackServer(services: [registry.service]) { registryClient, registryServer in
          var settings = GatewaySettings(
            adminToken: GatewayHarness.adminToken,
            jwt: JWTSettings(hs256Secret: Array(TestKeys.hs256Secret.utf8), rs256PublicKeyPEM: TestKeys.trustedPublicKey))
          configure(&settings)
          let quota = Maas_Quota_V1_Quota.Client(wrapping: quotaClient)
          let services = try GatewayService.services(
            settings: settings, credentials: db.store, tenants: db.store,
            registry: registryClient, registryChannel: registryServer.clientTransport, quota: quota,
            quotaChannel: quotaServer.clientTransport, logger: quietLogger)
          try await withLoopbackServer(services: services) { gatewayClient, _ in
            try await body(
              GatewayHarness(
                gateway: Maas_Gateway_V1_Gateway.Client(wrapping: gatewayClient),
                admin: Maas_Gateway_V1_Admin.Client(wrapping: gatewayClient), quota: quota, registry: registry, db: db))
          }
        }
      }
    }
  }
}

/// The real quota service on a database of its own, on the host's clock: away from UTC midnight,
/// since tests count the API calls of the day.
func withQuotaService(_ name: String, _ body: (QuotaRPCService) async throws -> Void) async throws {
  try await awayFromUTCMidnight()
  try await withMigratedDatabase(named: name, plan: try QuotaSchema.plan(serviceRole: "maas_app"), appConnections: 6) { db in
    let store = QuotaStore(pool: db.app, policy: QuotaPolicy(), logger: quietLogger)
    try await body(QuotaRPCService(store: store, logger: quietLogger))
  }
}
