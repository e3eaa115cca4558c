import QuotaClient
import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import MaaSTesting
import Postgres
import PostgresMigrations
import Quota
import Registry
import Testing
@testable import Gateway

/// The whole path a tenant's call takes, every part real: the gateway's guarded services, the
/// model registry and the quota service, each on a loopback server over the real transport and on
/// a Postgres database of its own, calling each other over gRPC as deployed.
struct Stack {
  let gateway: Maas_Gateway_V1_Gateway.Client<ShimClientTransport>
  let admin: Maas_Gateway_V1_Admin.Client<ShimClientTransport>
  /// The same connection, for requests no Swift message can express.
  let client: GRPCClient<ShimClientTransport>
  /// The quota service called directly, to check what the stack did there.
  let quota: Maas_Quota_V1_Quota.Client<ShimClientTransport>
  /// Where the gateway listens, for processes such as maasctl.
  let gatewayTarget: String
  let db: GatewayDatabase

  var asAdmin: Metadata { GatewayHarness.bearer(GatewayHarness.adminToken) }

  /// A tenant made through Admin (which registers it with quota), with limits if given, and an
  /// API key for it.
  func tenant(_ name: String, limits: [Maas_Quota_V1_Resource: Int64] = [:]) async throws -> StackTenant {
    let tenant = try await admin.createTenant(
      .with {
        $0.name = name
        $0.limits = limits.sorted { $0.key.rawValue < $1.key.rawValue }.map { resource, value in
          .with {
            $0.resource = resource
            $0.value = value
          }
        }
        $0.idempotencyKey = "create-\(name)"
      }, metadata: asAdmin)
    let key = try await admin.createApiKey(.with { $0.tenantID = tenant.id }, metadata: asAdmin)
    return StackTenant(id: tenant.id, keyID: key.key.id, secret: key.secret)
  }

  /// What quota reports for one of the tenant's resources.
  func usage(_ tenant: StackTenant, _ resource: Maas_Quota_V1_Resource) async throws -> Maas_Quota_V1_ResourceQuota {
    try await quota.getQuota(.with { $0.tenantID = tenant.id }).resources.first { $0.resource == resource }!
  }
}

struct StackTenant {
  let id: String
  let keyID: String
  let secret: String
  var credential: Metadata { GatewayHarness.bearer(secret) }
}

/// Runs `body` with a stack whose three databases are named after `name`, unique per test.
func withStack(_ name: String, _ body: (Stack) async throws -> Void) async throws {
  try await withQuotaService("\(name)_q") { quotaService in
    try await withLoopbackServer(services: [quotaService]) { quotaClient, quotaServer in
      let quota = Maas_Quota_V1_Quota.Client(wrapping: quotaClient)
      try await withRegistryService("\(name)_r", quota: quotaServer.clientTransport) { registryService in
        try await withLoopbackServer(services: [registryService]) { registryClient, registryServer in
          try await withGatewayDatabase("\(name)_g") { db in
            let settings = GatewaySettings(
              adminToken: GatewayHarness.adminToken,
              jwt: JWTSettings(hs256Secret: Array(TestKeys.hs256Secret.utf8), rs256PublicKeyPEM: TestKeys.trustedPublicKey))
            let services = try GatewayService.services(
              settings: settings, credentials: db.store, tenants: db.store,
              registry: registryClient, registryChannel: registryServer.clientTransport, quota: quota,
              quotaChannel: quotaServer.clientTransport, logger: quietLogger)
            try await withLoopbackServer(services: services) { gatewayClient, server in
              try await body(
                Stack(
                  gateway: Maas_Gateway_V1_Gateway.Client(wrapping: gatewayClient),
                  admin: Maas_Gateway_V1_Admin.Client(wrapping: gatewayClient), client: gatewayClient, quota: quota,
                  gatewayTarget: "127.0.0.1:\(server.port)", db: db))
            }
          }
        }
      }
    }
  }
}

/// The real registry service on a database of its own, calling `quota` over gRPC.
func withRegistryService(
  _ name: String, quota: ShimClientTransport, _ body: (RegistryRPCService) async throws -> Void
) async throws {
  try await withMigratedDatabase(named: name, plan: try RegistrySchema.plan(serviceRole: "maas_app")) { db in
    let store = RegistryStore(pool: db.app, quota: GRPCQuotaGate(channel: quota, timeout: .seconds(5)), logger: quietLogger)
    try await body(RegistryRPCService(store: store, tokens: PageTokens(secret: "stack-tests-page-token-secret"), logger: quietLogger))
  }
}

let validSHA256 = String(repeating: "ab", count: 32)
