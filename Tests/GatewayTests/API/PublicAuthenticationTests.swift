import Foundation
import MaaSTesting
import GRPCCore
import GRPCShimTransport
import JWTKit
import MaaSContracts
import Testing
@testable import Gateway

/// The public Gateway service over the real transport, with the real quota service behind it.
@Suite("Gateway: authentication and the daily API budget, end to end", .serialized, .timeLimit(.minutes(5)))
struct PublicAuthenticationTests {
  let getModel = Maas_Gateway_V1_GetModelRequest.with { $0.model = .with { $0.name = "llama" } }

  @Test("no credential, a malformed one, an unknown or revoked key, an expired, forged or unsigned JWT: UNAUTHENTICATED, and nothing is spent or forwarded")
  func unauthenticated() async throws {
    try await withGateway("gateway_e2e_unauthenticated") { harness in
      let (tenant, key) = try await harness.tenant("acme")
      let revoked = try await harness.admin.createApiKey(.with { $0.tenantID = tenant.id }, metadata: harness.asAdmin)
      _ = try await harness.admin.revokeApiKey(
        .with {
          $0.tenantID = tenant.id
          $0.keyID = revoked.key.id
        }, metadata: harness.asAdmin)

      let now = Date()
      var expiredClaims = TestClaims.valid(tenant: tenant.id, now: now)
      expiredClaims.exp = ExpirationClaim(value: now.addingTimeInterval(-60))
      var otherAudience = TestClaims.valid(tenant: tenant.id, now: now)
      otherAudience.aud = AudienceClaim(value: ["billing"])
      let credentials: [(String, Metadata)] = [
        ("no credential", [:]),
        ("another scheme", ["authorization": "Basic YWRtaW46YWRtaW4="]),
        ("garbage", GatewayHarness.bearer("let-me-in")),
        ("an unknown key", GatewayHarness.bearer(ApiKeyToken.generate().text)),
        ("a known prefix with another secret", GatewayHarness.bearer(String(key.prefix(14)) + ApiKeyToken.generate().secret)),
        ("a revoked key", GatewayHarness.bearer(revoked.secret)),
        ("an expired JWT", GatewayHarness.bearer(try await TokenIssuer.rs256(expiredClaims))),
        ("a JWT signed with another key", GatewayHarness.bearer(try await TokenIssuer.rs256(
          .valid(tenant: tenant.id, now: now), privateKey: TestKeys.untrustedPrivateKey))),
        ("an HS256 JWT with another secret", GatewayHarness.bearer(try await TokenIssuer.hs256(
          .valid(tenant: tenant.id, now: now), secret: "not-the-gateway-secret-but-32-bytes-long"))),
        ("an alg none JWT", GatewayHarness.bearer(try TokenIssuer.unsigned(.valid(tenant: tenant.id, now: now)))),
        ("a JWT for another audience", GatewayHarness.bearer(try await TokenIssuer.hs256(otherAudience))),
        ("a JWT for an unknown tenant", GatewayHarness.bearer(try await TokenIssuer.hs256(.valid(tenant: "nobody", now: now)))),
        ("the admin token", GatewayHarness.bearer(GatewayHarness.adminToken)),
      ]
      for (what, metadata) in credentials {
        let failure = await status { try await harness.gateway.getModel(getModel, metadata: metadata) }
        #expect(failure?.code == .unauthenticated, "\(what): \(String(describing: failure))")
        let quota = await status { try await harness.gateway.getQuota(.init(), metadata: metadata) }
        #expect(quota?.code == .unauthenticated, "\(what)")
      }
      #expect(harness.registry.requests.isEmpty)
      #expect(try await harness.apiCallsUsed(tenant.id) == 0)

      // The messages say what is wrong without echoing the credential.
      let missing = await status { try await harness.gateway.getModel(getModel) }
      #expect(missing?.message.hasPrefix("missing credential") == true)
      let revokedMessage = await status { try await harness.gateway.getModel(getModel, metadata: GatewayHarness.bearer(revoked.secret)) }
      #expect(revokedMessage?.message == "API key has been revoked")
      #expect(revokedMessage?.message.contains(revoked.secret) == false)

      // The valid key of the same tenant still works.
      let model = try await harness.gateway.getModel(getModel, metadata: GatewayHarness.bearer(key))
      #expect(model.tenantID == tenant.id)
      #expect(try await harness.apiCallsUsed(tenant.id) == 1)
    }
  }

  @Test("valid API keys and JWTs (HS256 and RS256) are accepted")
  func accepted() async throws {
    try await withGateway("gateway_e2e_accepted") { harness in
      let (tenant, key) = try await harness.tenant("acme")
      let claims = TestClaims.valid(tenant: tenant.id)
      for credential in [key, try await TokenIssuer.hs256(claims), try await TokenIssuer.rs256(claims)] {
        let model = try await harness.gateway.getModel(getModel, metadata: GatewayHarness.bearer(credential))
        #expect(model.tenantID == tenant.id)
      }
      #expect(try await harness.apiCallsUsed(tenant.id) == 3)
    }
  }

  @Test("the call past the daily API budget is RESOURCE_EXHAUSTED naming the limit; only the read that met it may reach the registry")
  func dailyBudget() async throws {
    try await withGateway("gateway_e2e_budget") { harness in
      let (tenant, key) = try await harness.tenant("acme", apiCallsPerDay: 3)
      let (other, otherKey) = try await harness.tenant("globex", apiCallsPerDay: 3)
      for _ in 0..<3 {
        _ = try await harness.gateway.getModel(getModel, metadata: GatewayHarness.bearer(key))
      }
      let refused = await status { try await harness.gateway.getModel(getModel, metadata: GatewayHarness.bearer(key)) }
      #expect(refused?.code == .resourceExhausted)
      #expect(refused?.message.hasPrefix("api_calls_per_day: limit 3, used 3, asked 1, resets ") == true, "\(refused?.message ?? "")")
      // A read is forwarded while it is being charged, so the one that met the limit may have
      // reached the registry (its answer dropped); once refused, the tenant is charged first.
      let forwarded = harness.registry.requests.count
      #expect((3...4).contains(forwarded))
      let again = await status { try await harness.gateway.getModel(getModel, metadata: GatewayHarness.bearer(key)) }
      #expect(again?.code == .resourceExhausted)
      // Writes are forwarded only once admitted.
      let create = await status {
        try await harness.gateway.createModel(.with { $0.name = "llama" }, metadata: GatewayHarness.bearer(key))
      }
      #expect(create?.code == .resourceExhausted)
      // Every method is held to the budget, GetQuota included.
      let quota = await status { try await harness.gateway.getQuota(.init(), metadata: GatewayHarness.bearer(key)) }
      #expect(quota?.code == .resourceExhausted)
      #expect(harness.registry.requests.count == forwarded, "nothing reached the registry after the refusal")
      #expect(try await harness.apiCallsUsed(tenant.id) == 3)

      // Another tenant's budget is its own.
      _ = try await harness.gateway.getModel(getModel, metadata: GatewayHarness.bearer(otherKey))
      #expect(try await harness.apiCallsUsed(other.id) == 1)
    }
  }

  @Test("GetQuota shows the tenant its own limits and usage, this call included")
  func getQuota() async throws {
    try await withGateway("gateway_e2e_get_quota") { harness in
      let (acme, acmeKey) = try await harness.tenant("acme", apiCallsPerDay: 500)
      let (_, globexKey) = try await harness.tenant("globex")
      _ = try await harness.gateway.getModel(getModel, metadata: GatewayHarness.bearer(acmeKey))
      _ = try await harness.gateway.listModels(.with { $0.pageSize = 10 }, metadata: GatewayHarness.bearer(acmeKey))

      let acmeQuota = try await harness.gateway.getQuota(.init(), metadata: GatewayHarness.bearer(acmeKey))
      #expect(acmeQuota.resources.map(\.resource) == [.models, .storageBytes, .gpuSeconds, .apiCallsPerDay, .concurrentGpus])
      let acmeCalls = try #require(acmeQuota.resources.first { $0.resource == .apiCallsPerDay })
      #expect(acmeCalls.used == 3)
      #expect(acmeCalls.limit.value == 500)
      #expect(acmeCalls.isDefault == false)
      #expect(acmeCalls.window == .utcDay)

      let globexQuota = try await harness.gateway.getQuota(.init(), metadata: GatewayHarness.bearer(globexKey))
      let globexCalls = try #require(globexQuota.resources.first { $0.resource == .apiCallsPerDay })
      #expect(globexCalls.used == 1)
      #expect(globexCalls.limit.value == 10_000)
      #expect(globexCalls.isDefault)
      #expect(try await harness.apiCallsUsed(acme.id) == 3)
    }
  }

  @Test("GetUsage reports the tenant's billing lines, from the start of the month by default")
  func getUsage() async throws {
    try await withGateway("gateway_e2e_get_usage") { harness in
      let (tenant, key) = try await harness.tenant("acme")
      let report = try await harness.gateway.getUsage(.init(), metadata: GatewayHarness.bearer(key))
      #expect(report.tenantID == tenant.id)
      #expect(report.periodStart.date == UsagePeriod.monthStart(containing: Date()))
      let calls = try #require(report.lines.first { $0.resource == .apiCallsPerDay })
      #expect(calls.used == 1)
    }
  }

  @Test("a retry with the same idempotency key is charged once; calls without a key are charged each time")
  func retriesChargedOnce() async throws {
    try await withGateway("gateway_e2e_retry_charge") { harness in
      let (tenant, key) = try await harness.tenant("acme")
      let create = Maas_Gateway_V1_CreateModelRequest.with {
        $0.name = "llama"
        $0.idempotencyKey = "create-llama"
      }
      _ = try await harness.gateway.createModel(create, metadata: GatewayHarness.bearer(key))
      _ = try await harness.gateway.createModel(create, metadata: GatewayHarness.bearer(key))
      #expect(try await harness.apiCallsUsed(tenant.id) == 1)
      let forwarded = harness.registry.requests.compactMap { $0.message as? Maas_Registry_V1_CreateModelRequest }
      #expect(forwarded.map(\.idempotencyKey) == ["create-llama", "create-llama"])

      var unkeyed = create
      unkeyed.idempotencyKey = ""
      _ = try await harness.gateway.createModel(unkeyed, metadata: GatewayHarness.bearer(key))
      _ = try await harness.gateway.createModel(unkeyed, metadata: GatewayHarness.bearer(key))
      #expect(try await harness.apiCallsUsed(tenant.id) == 3)
      let keys = harness.registry.requests.compactMap { ($0.message as? Maas_Registry_V1_CreateModelRequest)?.idempotencyKey }
      #expect(keys.count == 4)
      #expect(!keys[2].isEmpty && !keys[3].isEmpty && keys[2] != keys[3])
    }
  }

  @Test("deployment calls are UNIMPLEMENTED for an authenticated caller, UNAUTHENTICATED otherwise, and cost nothing")
  func deploymentsNotYet() async throws {
    try await withGateway("gateway_e2e_deployments") { harness in
      let (tenant, key) = try await harness.tenant("acme")
      let deploy = await status {
        try await harness.gateway.deployModel(.with { $0.name = "web" }, metadata: GatewayHarness.bearer(key))
      }
      #expect(deploy?.code == .unimplemented)
      #expect(deploy?.message.hasPrefix("DeployModel is not available yet") == true)
      let scale = await status { try await harness.gateway.scaleDeployment(.init(), metadata: GatewayHarness.bearer(key)) }
      #expect(scale?.code == .unimplemented)
      let watch = await status {
        try await harness.gateway.watchDeployment(.init(), metadata: GatewayHarness.bearer(key)) { response in
          for try await _ in response.messages {}
        }
      }
      #expect(watch?.code == .unimplemented)
      let anonymous = await status { try await harness.gateway.deployModel(.init()) }
      #expect(anonymous?.code == .unauthenticated)
      #expect(try await harness.apiCallsUsed(tenant.id) == 0)
    }
  }
}
