import Foundation
import MaaSTesting
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import SwiftProtobuf
import Testing
@testable import Gateway

/// The operator's Admin service over the real transport, with the real quota service behind it.
@Suite("Admin: tenants, keys and quotas, end to end", .serialized, .timeLimit(.minutes(5)))
struct AdminServiceTests {
  @Test("the Admin service takes only the admin credential: none or a wrong one is UNAUTHENTICATED, a tenant's is PERMISSION_DENIED")
  func adminCredential() async throws {
    try await withGateway("gateway_admin_credential") { harness in
      let (tenant, key) = try await harness.tenant("acme")
      let jwt = try await TokenIssuer.hs256(.valid(tenant: tenant.id))
      let list = Maas_Gateway_V1_ListTenantsRequest.with { $0.pageSize = 10 }
      let cases: [(String, Metadata, RPCError.Code)] = [
        ("no credential", [:], .unauthenticated),
        ("a wrong token", GatewayHarness.bearer("admin-token-for-the-tests-0123456788"), .unauthenticated),
        ("a prefix of the token", GatewayHarness.bearer(String(GatewayHarness.adminToken.dropLast())), .unauthenticated),
        ("another scheme", ["authorization": "Basic \(GatewayHarness.adminToken)"], .unauthenticated),
        ("a revoked-looking garbage key", GatewayHarness.bearer(ApiKeyToken.generate().text), .unauthenticated),
        ("a tenant's API key", GatewayHarness.bearer(key), .permissionDenied),
        ("a tenant's JWT", GatewayHarness.bearer(jwt), .permissionDenied),
      ]
      for (what, metadata, code) in cases {
        let failure = await status { try await harness.admin.listTenants(list, metadata: metadata) }
        #expect(failure?.code == code, "\(what): \(String(describing: failure))")
        let create = await status { try await harness.admin.createTenant(.with { $0.name = "evil" }, metadata: metadata) }
        #expect(create?.code == code, "\(what)")
      }
      let tenants = try await harness.admin.listTenants(list, metadata: harness.asAdmin)
      #expect(tenants.tenants.map(\.name) == ["acme"])
    }
  }

  @Test("without an admin token configured, every Admin call is UNAUTHENTICATED")
  func adminClosed() async throws {
    try await withGateway("gateway_admin_closed", configure: { $0.adminToken = nil }) { harness in
      let failure = await status { try await harness.admin.listTenants(.with { $0.pageSize = 1 }, metadata: harness.asAdmin) }
      #expect(failure?.code == .unauthenticated)
    }
  }

  @Test("CreateTenant registers the tenant with quota with its limits; names are unique; a keyed retry returns the first tenant, and the key with another display name or limits is refused")
  func createTenant() async throws {
    try await withGateway("gateway_admin_create_tenant") { harness in
      let request = Maas_Gateway_V1_CreateTenantRequest.with {
        $0.name = "acme"
        $0.displayName = "Acme Corp"
        $0.limits = [.with { $0.resource = .models; $0.value = 7 }]
        $0.idempotencyKey = "create-acme"
      }
      let tenant = try await harness.admin.createTenant(request, metadata: harness.asAdmin)
      #expect(tenant.name == "acme" && tenant.displayName == "Acme Corp" && !tenant.id.isEmpty && tenant.hasCreateTime)
      let registered = try await harness.quota.getQuota(.with { $0.tenantID = tenant.id })
      let models = try #require(registered.resources.first { $0.resource == .models })
      #expect(models.limit.value == 7 && !models.isDefault)
      #expect(registered.resources.first { $0.resource == .apiCallsPerDay }?.isDefault == true)

      let retry = try await harness.admin.createTenant(request, metadata: harness.asAdmin)
      #expect(retry == tenant)
      var changed = request
      changed.displayName = "Someone else"
      let reused = await status { try await harness.admin.createTenant(changed, metadata: harness.asAdmin) }
      #expect(reused?.code == .invalidArgument)
      #expect(reused?.message == "idempotency_key: was already used for a different request")
      var otherLimits = request
      otherLimits.limits[0].value = 8
      let relimited = await status { try await harness.admin.createTenant(otherLimits, metadata: harness.asAdmin) }
      #expect(relimited?.code == .invalidArgument)
      let taken = await status { try await harness.admin.createTenant(.with { $0.name = "acme" }, metadata: harness.asAdmin) }
      #expect(taken?.code == .alreadyExists)
      #expect(taken?.message == "name: a tenant named \"acme\" already exists")

      let bad = await status {
        try await harness.admin.createTenant(
          .with {
            $0.name = "9-Lives"
            $0.displayName = String(repeating: "x", count: 257)
          }, metadata: harness.asAdmin)
      }
      #expect(bad?.code == .invalidArgument)
      #expect(bad?.message == "name: must be 1 to 63 characters from [a-z0-9-], starting with a letter; display_name: is longer than 256 bytes")
      let badLimit = await status {
        try await harness.admin.createTenant(
          .with {
            $0.name = "globex"
            $0.limits = [.with { $0.resource = .models; $0.value = -1 }]
          }, metadata: harness.asAdmin)
      }
      #expect(badLimit?.code == .invalidArgument)
      #expect(badLimit?.message == "limits[0].value: is out of range")
      let missing = await status { try await harness.admin.getTenant(.with { $0.name = "globex" }, metadata: harness.asAdmin) }
      #expect(missing?.code == .notFound)
    }
  }

  @Test("GetTenant finds a tenant by id or name; ListTenants pages by name and filters by prefix")
  func readTenants() async throws {
    try await withGateway("gateway_admin_read_tenants") { harness in
      for name in ["delta", "acme", "acme-eu", "beta"] {
        _ = try await harness.admin.createTenant(.with { $0.name = name }, metadata: harness.asAdmin)
      }
      let byName = try await harness.admin.getTenant(.with { $0.name = "beta" }, metadata: harness.asAdmin)
      let byID = try await harness.admin.getTenant(.with { $0.id = byName.id }, metadata: harness.asAdmin)
      #expect(byID == byName)
      let neither = await status { try await harness.admin.getTenant(.init(), metadata: harness.asAdmin) }
      #expect(neither?.code == .invalidArgument)

      var names: [String] = []
      var token = ""
      repeat {
        let page = try await harness.admin.listTenants(
          .with {
            $0.pageSize = 3
            $0.pageToken = token
          }, metadata: harness.asAdmin)
        names += page.tenants.map(\.name)
        token = page.nextPageToken
      } while !token.isEmpty
      #expect(names == ["acme", "acme-eu", "beta", "delta"])
      let acmes = try await harness.admin.listTenants(.with { $0.pageSize = 10; $0.namePrefix = "acme" }, metadata: harness.asAdmin)
      #expect(acmes.tenants.map(\.name) == ["acme", "acme-eu"])
      let badSize = await status { try await harness.admin.listTenants(.with { $0.pageSize = 1001 }, metadata: harness.asAdmin) }
      #expect(badSize?.message == "page_size: must be 1 to 1000")
      let badToken = await status {
        try await harness.admin.listTenants(.with { $0.pageSize = 1; $0.pageToken = "garbage!" }, metadata: harness.asAdmin)
      }
      #expect(badToken?.message == "page_token: is malformed")
    }
  }

  @Test("SetTenantQuota changes a tenant's limits at quota and the gateway holds the tenant to them")
  func setTenantQuota() async throws {
    try await withGateway("gateway_admin_set_quota") { harness in
      let (tenant, key) = try await harness.tenant("acme")
      let answer = try await harness.admin.setTenantQuota(
        .with {
          $0.tenantID = tenant.id
          $0.limits = [.with { $0.resource = .apiCallsPerDay; $0.value = 1 }]
        }, metadata: harness.asAdmin)
      #expect(answer.tenantID == tenant.id)
      #expect(answer.resources.first { $0.resource == .apiCallsPerDay }?.limit.value == 1)
      _ = try await harness.gateway.getQuota(.init(), metadata: GatewayHarness.bearer(key))
      let refused = await status { try await harness.gateway.getQuota(.init(), metadata: GatewayHarness.bearer(key)) }
      #expect(refused?.code == .resourceExhausted)
      #expect(refused?.message.hasPrefix("api_calls_per_day: limit 1, used 1, asked 1") == true)

      let reset = try await harness.admin.setTenantQuota(
        .with {
          $0.tenantID = tenant.id
          $0.resetToDefault = [.apiCallsPerDay]
        }, metadata: harness.asAdmin)
      #expect(reset.resources.first { $0.resource == .apiCallsPerDay }?.limit.value == 10_000)
      let unknown = await status {
        try await harness.admin.setTenantQuota(.with { $0.tenantID = "nobody" }, metadata: harness.asAdmin)
      }
      #expect(unknown?.code == .notFound)
      #expect(unknown?.message == "tenant_id: no tenant \"nobody\"")
    }
  }

  @Test("CreateApiKey shows the secret once; ListApiKeys never; a revoked key stops working at once")
  func apiKeyLifecycle() async throws {
    try await withGateway("gateway_admin_keys") { harness in
      let (tenant, _) = try await harness.tenant("acme")
      let (other, _) = try await harness.tenant("globex")
      let request = Maas_Gateway_V1_CreateApiKeyRequest.with {
        $0.tenantID = tenant.id
        $0.name = "ci-deployer"
        $0.idempotencyKey = "ci"
      }
      let created = try await harness.admin.createApiKey(request, metadata: harness.asAdmin)
      #expect(created.secret.hasPrefix(created.key.prefix + "_"))
      #expect(created.key.prefix.hasPrefix("maas_") && created.key.prefix.count == 13)
      #expect(created.key.tenantID == tenant.id && created.key.name == "ci-deployer" && !created.key.hasRevokeTime)
      let retry = try await harness.admin.createApiKey(request, metadata: harness.asAdmin)
      #expect(retry.key == created.key)
      #expect(retry.secret.isEmpty)

      let model = try await harness.gateway.getModel(
        .with { $0.model = .with { $0.name = "llama" } }, metadata: GatewayHarness.bearer(created.secret))
      #expect(model.tenantID == tenant.id)

      let listed = try await harness.admin.listApiKeys(.with { $0.tenantID = tenant.id; $0.pageSize = 10 }, metadata: harness.asAdmin)
      #expect(listed.keys.count == 2)
      #expect(listed.keys.first?.id == created.key.id)
      #expect(listed.keys.first?.hasLastUsedTime == true)
      let serialized = try listed.jsonString()
      #expect(!serialized.contains(String(created.secret.dropFirst(14))))

      // A key is found only under its own tenant.
      let crossTenant = await status {
        try await harness.admin.revokeApiKey(.with { $0.tenantID = other.id; $0.keyID = created.key.id }, metadata: harness.asAdmin)
      }
      #expect(crossTenant?.code == .notFound)

      let revoked = try await harness.admin.revokeApiKey(
        .with { $0.tenantID = tenant.id; $0.keyID = created.key.id }, metadata: harness.asAdmin)
      #expect(revoked.hasRevokeTime)
      let again = try await harness.admin.revokeApiKey(
        .with { $0.tenantID = tenant.id; $0.keyID = created.key.id }, metadata: harness.asAdmin)
      #expect(again.revokeTime == revoked.revokeTime)
      let refused = await status {
        try await harness.gateway.getModel(.with { $0.model = .with { $0.name = "llama" } }, metadata: GatewayHarness.bearer(created.secret))
      }
      #expect(refused?.code == .unauthenticated)
      let active = try await harness.admin.listApiKeys(.with { $0.tenantID = tenant.id; $0.pageSize = 10 }, metadata: harness.asAdmin)
      #expect(active.keys.count == 1)

      let past = await status {
        try await harness.admin.createApiKey(
          .with {
            $0.tenantID = tenant.id
            $0.expireTime = Google_Protobuf_Timestamp(date: Date().addingTimeInterval(-1))
          }, metadata: harness.asAdmin)
      }
      #expect(past?.code == .invalidArgument)
      #expect(past?.message == "expire_time: is in the past")
      // Postgres would keep a time past its range as `infinity`, which no Timestamp can answer.
      for seconds in [Int64(9e12), .max, .min] {
        let far = await status {
          try await harness.admin.createApiKey(
            .with {
              $0.tenantID = tenant.id
              $0.expireTime = .with { $0.seconds = seconds }
            }, metadata: harness.asAdmin)
        }
        #expect(far?.code == .invalidArgument, "\(seconds)")
        #expect(far?.message == "expire_time: must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z", "\(seconds)")
      }
      let noTenant = await status { try await harness.admin.createApiKey(.with { $0.tenantID = "nobody" }, metadata: harness.asAdmin) }
      #expect(noTenant?.code == .notFound)
    }
  }
}
