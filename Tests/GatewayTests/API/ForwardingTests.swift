import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import MaaSRuntime
import MaaSTesting
import SwiftProtobuf
import Testing
@testable import Gateway

/// What the gateway sends behind it: the tenant from the credential, the caller's deadline,
/// every field; and what comes back.
@Suite("Gateway: forwarding to the registry and quota", .serialized, .timeLimit(.minutes(5)))
struct ForwardingEndToEndTests {
  @Test("tenant_id comes from the credential; a tenant field inside the request cannot override it")
  func tenantFromCredential() async throws {
    try await withGateway("gateway_e2e_tenant_source") { harness in
      let (acme, acmeKey) = try await harness.tenant("acme")
      let (globex, _) = try await harness.tenant("globex")

      // UpdateModel carries a whole Model, whose tenant_id field names the other tenant.
      let updated = try await harness.gateway.updateModel(
        .with {
          $0.model = .with { $0.name = "llama" }
          $0.update = .with {
            $0.tenantID = globex.id
            $0.description_p = "new"
          }
          $0.updateMask = .with { $0.paths = ["description"] }
        }, metadata: GatewayHarness.bearer(acmeKey))
      #expect(updated.tenantID == acme.id)
      let forwarded = try #require(harness.registry.requests.last?.message as? Maas_Registry_V1_UpdateModelRequest)
      #expect(forwarded.tenantID == acme.id)
      #expect(forwarded.update.tenantID.isEmpty)
      #expect(forwarded.update.description_p == "new")
      #expect(forwarded.updateMask.paths == ["description"])
      #expect(!forwarded.idempotencyKey.isEmpty)

      // A JWT's tenant_id claim names the tenant the same way.
      let token = try await TokenIssuer.rs256(.valid(tenant: globex.id))
      _ = try await harness.gateway.getModel(.with { $0.model = .with { $0.id = "m" } }, metadata: GatewayHarness.bearer(token))
      #expect(harness.registry.requests.last?.tenantID == globex.id)

      // Every registry call carries the credential's tenant, whatever it asks.
      #expect(harness.registry.requests.allSatisfy { !$0.tenantID.isEmpty })
    }
  }

  @Test("every model, version and alias call reaches the registry with its fields and the tenant")
  func everyRegistryCall() async throws {
    try await withGateway("gateway_e2e_registry_calls") { harness in
      let (tenant, key) = try await harness.tenant("acme")
      let auth = GatewayHarness.bearer(key)
      let model = Maas_Registry_V1_ModelRef.with { $0.name = "llama" }
      let list = try await harness.gateway.listModels(
        .with {
          $0.pageSize = 5
          $0.pageToken = "p"
          $0.namePrefix = "ll"
          $0.labelSelector = ["team": "ml"]
          $0.state = .archived
        }, metadata: auth)
      #expect(list.nextPageToken == "next")
      #expect(list.models.map(\.name) == ["first"])
      _ = try await harness.gateway.createModel(
        .with {
          $0.name = "llama"
          $0.description_p = "d"
          $0.labels = ["a": "b"]
        }, metadata: auth)
      _ = try await harness.gateway.deleteModel(.with { $0.model = model; $0.force = true }, metadata: auth)
      let version = try await harness.gateway.createModelVersion(
        .with {
          $0.model = model
          $0.version = "1.0.0"
          $0.artifact = .with {
            $0.uri = "s3://b/k"
            $0.sha256 = String(repeating: "a", count: 64)
            $0.sizeBytes = 10
          }
        }, metadata: auth)
      #expect(version.artifact.uri == "s3://b/k")
      _ = try await harness.gateway.getModelVersion(.with { $0.model = model; $0.version = .with { $0.alias = "prod" } }, metadata: auth)
      _ = try await harness.gateway.listModelVersions(.with { $0.model = model; $0.pageSize = 3 }, metadata: auth)
      _ = try await harness.gateway.deleteModelVersion(.with { $0.model = model; $0.version = .with { $0.version = "1.0.0" } }, metadata: auth)
      let alias = try await harness.gateway.setModelAlias(.with { $0.model = model; $0.alias = "prod"; $0.version = "1.0.0" }, metadata: auth)
      #expect(alias.name == "prod" && alias.version == "1.0.0")
      _ = try await harness.gateway.getModelAlias(.with { $0.model = model; $0.alias = "prod" }, metadata: auth)
      _ = try await harness.gateway.deleteModelAlias(.with { $0.model = model; $0.alias = "prod" }, metadata: auth)

      let requests = harness.registry.requests
      #expect(requests.map(\.method) == [
        "ListModels", "CreateModel", "DeleteModel", "CreateModelVersion", "GetModelVersion", "ListModelVersions",
        "DeleteModelVersion", "SetModelAlias", "GetModelAlias", "DeleteModelAlias",
      ])
      #expect(requests.allSatisfy { $0.tenantID == tenant.id })
      let listed = try #require(requests[0].message as? Maas_Registry_V1_ListModelsRequest)
      #expect(listed.pageSize == 5 && listed.pageToken == "p" && listed.namePrefix == "ll")
      #expect(listed.labelSelector == ["team": "ml"] && listed.state == .archived)
      let deleted = try #require(requests[2].message as? Maas_Registry_V1_DeleteModelRequest)
      #expect(deleted.force && deleted.model == model)
      let resolved = try #require(requests[4].message as? Maas_Registry_V1_GetModelVersionRequest)
      #expect(resolved.version.alias == "prod")
      #expect(try await harness.apiCallsUsed(tenant.id) == 10)
    }
  }

  @Test("the caller's remaining deadline is forwarded, up to the upstream bound; a call without one is bounded by the upstream timeout")
  func deadlines() async throws {
    try await withGateway(
      "gateway_e2e_deadlines", configure: { $0.upstream = UpstreamPolicy(defaultTimeout: .seconds(8), maxTimeout: .seconds(20)) }
    ) { harness in
      let (_, key) = try await harness.tenant("acme")
      /// The timeout the registry received for a GetModel sent with `timeout` (none when nil).
      func forwarded(_ timeout: Duration?) async throws -> Duration {
        var options = CallOptions.defaults
        options.timeout = timeout
        _ = try await harness.gateway.getModel(
          .with { $0.model = .with { $0.name = "llama" } }, metadata: GatewayHarness.bearer(key), options: options)
        return try #require(harness.registry.deadlines.last?.timeout)
      }
      // The header is rounded up on the way, so allow the transport a few milliseconds.
      let withDeadline = try await forwarded(.seconds(3))
      #expect(withDeadline <= .seconds(3) + .milliseconds(100))
      #expect(withDeadline > .seconds(1))

      let bounded = try await forwarded(nil)
      #expect(bounded <= .seconds(8) + .milliseconds(100))
      #expect(bounded > .seconds(5))

      let capped = try await forwarded(.seconds(3_600))
      #expect(capped <= .seconds(20) + .milliseconds(100))
      #expect(capped > .seconds(17))
    }
  }

  @Test("errors of the registry pass through with their code and message")
  func errorsPassThrough() async throws {
    try await withGateway("gateway_e2e_errors") { harness in
      let (_, key) = try await harness.tenant("acme")
      let missing = await status {
        try await harness.gateway.getModel(.with { $0.model = .with { $0.name = "missing" } }, metadata: GatewayHarness.bearer(key))
      }
      #expect(missing?.code == .notFound)
      #expect(missing?.message == "model: no model \"missing\"")
      let busy = await status {
        try await harness.gateway.getModel(.with { $0.model = .with { $0.name = "busy" } }, metadata: GatewayHarness.bearer(key))
      }
      #expect(busy?.code == .failedPrecondition)
      #expect(busy?.message == "model: has 2 versions; delete them or use force")
      // UNAVAILABLE stays UNAVAILABLE, in the gateway's words: internal addresses stay inside.
      let down = await status {
        try await harness.gateway.getModel(.with { $0.model = .with { $0.name = "down" } }, metadata: GatewayHarness.bearer(key))
      }
      #expect(down?.code == .unavailable)
      #expect(down?.message == "the registry service is unavailable; retry later (with the same idempotency key)")
    }
  }

  @Test("a service that does not answer is UNAVAILABLE after the upstream bound, or DEADLINE_EXCEEDED at the caller's deadline")
  func hangingService() async throws {
    try await withGateway("gateway_e2e_hanging", configure: { $0.upstream = UpstreamPolicy(defaultTimeout: .seconds(1)) }) { harness in
      let (_, key) = try await harness.tenant("acme")
      // The stub answers "slow" only after 4 s: a bound that did not fire would be a success.
      let slow = Maas_Gateway_V1_GetModelRequest.with { $0.model = .with { $0.name = "slow" } }
      let bounded = await status { try await harness.gateway.getModel(slow, metadata: GatewayHarness.bearer(key)) }
      #expect(bounded?.code == .unavailable)
      #expect(bounded?.message.hasPrefix("the registry service did not answer within") == true)

      var options = CallOptions.defaults
      options.timeout = .milliseconds(500)
      let expired = await status { try await harness.gateway.getModel(slow, metadata: GatewayHarness.bearer(key), options: options) }
      #expect(expired?.code == .deadlineExceeded)

      // A caller's deadline past the gateway's longest bound: the bound ends the call.
      try await withGateway(
        "gateway_e2e_hanging_capped", configure: { $0.upstream = UpstreamPolicy(defaultTimeout: .seconds(1), maxTimeout: .seconds(1)) }
      ) { harness in
        let (_, key) = try await harness.tenant("acme")
        var patient = CallOptions.defaults
        patient.timeout = .seconds(30)
        let capped = await status { try await harness.gateway.getModel(slow, metadata: GatewayHarness.bearer(key), options: patient) }
        #expect(capped?.code == .unavailable)
        #expect(capped?.message.hasPrefix("the registry service did not answer within 1") == true, "\(String(describing: capped))")
      }
    }
  }

  @Test("a registry or quota service that cannot be reached is UNAVAILABLE, not a hang")
  func unreachableServices() async throws {
    try await withGatewayDatabase("gateway_e2e_unreachable") { db in
      let tenant = try await db.tenant("acme")
      let (_, token) = try await db.keyAdministration().createApiKey(tenantID: tenant.id)
      let auth = GatewayHarness.bearer(token!.text)
      try await withQuotaService("gateway_e2e_unreachable_quota") { quotaService in
        try await withLoopbackServer(services: [quotaService]) { quotaClient, _ in
          let quota = Maas_Quota_V1_Quota.Client(wrapping: quotaClient)
          _ = try await quota.setLimits(.with { $0.tenantID = tenant.id; $0.idempotencyKey = "register" })
          // Nothing listens on port 1.
          try await withGRPCClient(transport: ShimClientTransport(target: "127.0.0.1:1")) { deadClient in
            let dead = Maas_Quota_V1_Quota.Client(wrapping: deadClient)
            let noRegistry = try GatewayService.services(
              settings: GatewaySettings(upstream: UpstreamPolicy(defaultTimeout: .seconds(3))), credentials: db.store,
              tenants: db.store, registry: deadClient, registryChannel: deadClient, quota: quota, quotaChannel: quotaClient,
              logger: quietLogger)
            try await withLoopbackServer(services: noRegistry) { client, _ in
              let failure = await status {
                try await Maas_Gateway_V1_Gateway.Client(wrapping: client).getModel(
                  .with { $0.model = .with { $0.name = "llama" } }, metadata: auth)
              }
              #expect(failure?.code == .unavailable, "\(String(describing: failure))")
              #expect(failure?.message.contains("127.0.0.1") == false)
            }
            let noQuota = try GatewayService.services(
              settings: GatewaySettings(upstream: UpstreamPolicy(defaultTimeout: .seconds(3))), credentials: db.store,
              tenants: db.store, registry: deadClient, registryChannel: deadClient, quota: dead, quotaChannel: deadClient,
              logger: quietLogger)
            try await withLoopbackServer(services: noQuota) { client, _ in
              let failure = await status {
                try await Maas_Gateway_V1_Gateway.Client(wrapping: client).getQuota(.init(), metadata: auth)
              }
              #expect(failure?.code == .unavailable, "\(String(describing: failure))")
            }
          }
        }
      }
    }
  }

  @Test(
    "on the shared runtime's server, health answers without a credential while Gateway and Admin demand theirs, and the refusals are counted"
  )
  func runtimeServer() async throws {
    try await withGatewayDatabase("gateway_e2e_runtime") { db in
      let services = try GatewayService.services(
        settings: GatewaySettings(adminToken: GatewayHarness.adminToken), credentials: db.store, tenants: db.store,
        registry: NeverCalledQuota.grpcClient, registryChannel: NeverCalledQuota.grpcClient,
        quota: NeverCalledQuota.client, quotaChannel: NeverCalledQuota.grpcClient, logger: quietLogger)
      // With metrics on: the metered transport must leave the guards in place.
      let server = MaaSServer(
        settings: ServerSettings(host: "127.0.0.1", port: 0, metricsPort: 0), services: services, logger: quietLogger)
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        let port = try await server.listeningPort()
        try await withGRPCClient(transport: ShimClientTransport(target: "127.0.0.1:\(port)")) { client in
          let health = try await Grpc_Health_V1_Health.Client(wrapping: client).check(
            .with { $0.service = "maas.gateway.v1.Gateway" })
          #expect(health.status == .serving)
          let gateway = await status { try await Maas_Gateway_V1_Gateway.Client(wrapping: client).getQuota(.init()) }
          #expect(gateway?.code == .unauthenticated)
          let admin = await status { try await Maas_Gateway_V1_Admin.Client(wrapping: client).getTenant(.with { $0.name = "x" }) }
          #expect(admin?.code == .unauthenticated)
          let adminOK = await status {
            try await Maas_Gateway_V1_Admin.Client(wrapping: client).getTenant(
              .with { $0.name = "x" }, metadata: GatewayHarness.bearer(GatewayHarness.adminToken))
          }
          #expect(adminOK?.code == .notFound)
        }
        let samples = try scrapeMetrics(port: try #require(try await server.metricsPort()))
        let handled = "grpc_server_handled_total{grpc_service=\"maas.gateway.v1."
        #expect(samples[handled + "Gateway\",grpc_method=\"GetQuota\",grpc_code=\"Unauthenticated\"}"] == 1)
        #expect(samples[handled + "Admin\",grpc_method=\"GetTenant\",grpc_code=\"Unauthenticated\"}"] == 1)
        #expect(samples[handled + "Admin\",grpc_method=\"GetTenant\",grpc_code=\"NotFound\"}"] == 1)
        server.beginGracefulShutdown()
        try await group.waitForAll()
      }
    }
  }
}
