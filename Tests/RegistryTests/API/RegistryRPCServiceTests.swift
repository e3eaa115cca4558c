import QuotaClient
import Foundation
import MaaSTesting
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import Registry
import SwiftProtobuf
import Testing

/// The gRPC edge over the real transport, with the real quota service behind it.
@Suite("maas.registry.v1.ModelRegistry over gRPC with the real quota service", .serialized, .timeLimit(.minutes(10)))
struct RegistryRPCServiceTests {
  @Test("the 101st model is RESOURCE_EXHAUSTED naming the limit and the usage, and nothing is written")
  func hundredAndFirstModel() async throws {
    try await withService("registry_api_models_quota") { f in
      try await f.register("acme")
      for index in 0..<100 { _ = try await f.registry.createModel(Requests.createModel("acme", "model-\(index)")) }
      let refused = await status { try await f.registry.createModel(Requests.createModel("acme", "model-100")) }
      #expect(refused?.code == .resourceExhausted)
      #expect(refused?.message == "models: limit 100, used 100, asked 1")
      #expect(try await f.count("models", tenant: "acme") == 100)
      let usage = try await f.usage("acme", .models)
      #expect(usage.used == 100)
      #expect(usage.reserved == 0)
      // Deleting one gives its unit back, and the next create fits again.
      _ = try await f.registry.deleteModel(.with {
        $0.tenantID = "acme"
        $0.model = Requests.ref("model-0")
        $0.idempotencyKey = "delete"
      })
      #expect(try await f.usage("acme", .models).used == 99)
      _ = try await f.registry.createModel(Requests.createModel("acme", "model-100"))
      #expect(try await f.usage("acme", .models).used == 100)
    }
  }

  @Test("a version over the storage limit is RESOURCE_EXHAUSTED and nothing is written; deletes give storage back")
  func storageQuota() async throws {
    try await withService("registry_api_storage_quota") { f in
      try await f.register("acme", storageBytes: 1_000)
      let model = try await f.registry.createModel(Requests.createModel("acme", "llama"))
      let first = try await f.registry.createModelVersion(Requests.createVersion("acme", Requests.ref("llama"), "1", size: 600))
      #expect(first.artifact.sizeBytes == 600)
      let refused = await status { try await f.registry.createModelVersion(Requests.createVersion("acme", Requests.ref("llama"), "2", size: 500)) }
      #expect(refused?.code == .resourceExhausted)
      #expect(refused?.message == "storage_bytes: limit 1000, used 600, asked 500")
      #expect(try await f.count("versions", tenant: "acme") == 1)
      #expect(try await f.usage("acme", .storageBytes) == QuotaUsage(600, 0))
      _ = try await f.registry.createModelVersion(Requests.createVersion("acme", Requests.ref(id: model.id), "2", size: 400))
      #expect(try await f.usage("acme", .storageBytes) == QuotaUsage(1_000, 0))
      _ = try await f.registry.deleteModelVersion(.with {
        $0.tenantID = "acme"
        $0.version = .with { $0.id = first.id }
        $0.idempotencyKey = "del-1"
      })
      #expect(try await f.usage("acme", .storageBytes) == QuotaUsage(400, 0))
      let notEmpty = await status {
        try await f.registry.deleteModel(.with {
          $0.tenantID = "acme"
          $0.model = Requests.ref("llama")
          $0.idempotencyKey = "del-model"
        })
      }
      #expect(notEmpty?.code == .failedPrecondition)
      _ = try await f.registry.deleteModel(.with {
        $0.tenantID = "acme"
        $0.model = Requests.ref("llama")
        $0.force = true
        $0.idempotencyKey = "del-model-force"
      })
      #expect(try await f.usage("acme", .storageBytes) == QuotaUsage(0, 0))
      #expect(try await f.usage("acme", .models) == QuotaUsage(0, 0))
    }
  }

  @Test("a tenant the quota service has never seen is FAILED_PRECONDITION, and nothing is written")
  func unknownTenant() async throws {
    try await withService("registry_api_unknown_tenant") { f in
      let refused = await status { try await f.registry.createModel(Requests.createModel("stranger", "llama")) }
      #expect(refused?.code == .failedPrecondition)
      #expect(refused?.message.hasPrefix("tenant_id: ") == true)
      let models = try await f.count("models", tenant: "stranger")
      let remembered = try await f.count("idempotency", tenant: "stranger")
      #expect(models == 0)
      #expect(remembered == 0)
    }
  }

  @Test("ListModels pages with opaque tokens bound to the tenant and filters, aliases included")
  func listing() async throws {
    try await withService("registry_api_listing") { f in
      try await f.register("acme")
      for name in ["b", "a", "c", "d", "e"] { _ = try await f.registry.createModel(Requests.createModel("acme", name, labels: ["k": "v"])) }
      _ = try await f.registry.createModelVersion(Requests.createVersion("acme", Requests.ref("a"), "1", size: 0))
      _ = try await f.registry.setModelAlias(.with {
        $0.tenantID = "acme"
        $0.model = Requests.ref("a")
        $0.alias = "production"
        $0.version = "1"
        $0.idempotencyKey = "alias"
      })
      var request = Maas_Registry_V1_ListModelsRequest.with {
        $0.tenantID = "acme"
        $0.pageSize = 2
        $0.labelSelector = ["k": "v"]
      }
      var names: [String] = []
      var tokens: [String] = []
      repeat {
        let page = try await f.registry.listModels(request)
        names += page.models.map(\.name)
        if page.models.first?.name == "a" { #expect(page.models[0].aliases == ["production": "1"]) }
        request.pageToken = page.nextPageToken
        tokens.append(page.nextPageToken)
      } while !request.pageToken.isEmpty
      #expect(names == ["a", "b", "c", "d", "e"])
      let token = tokens[0]
      let otherTenant = await status {
        try await f.registry.listModels(.with {
          $0.tenantID = "globex"
          $0.pageSize = 2
          $0.labelSelector = ["k": "v"]
          $0.pageToken = token
        })
      }
      #expect(otherTenant?.code == .invalidArgument)
      #expect(otherTenant?.message.hasPrefix("page_token: ") == true)
      let otherFilters = await status {
        try await f.registry.listModels(.with {
          $0.tenantID = "acme"
          $0.pageSize = 2
          $0.pageToken = token
        })
      }
      #expect(otherFilters?.code == .invalidArgument)
      #expect(otherFilters?.message.hasPrefix("page_token: ") == true)
    }
  }

  @Test("a retried CreateModel with the same key returns the same model and takes quota once")
  func idempotentOverTheWire() async throws {
    try await withService("registry_api_idempotent") { f in
      try await f.register("acme")
      let request = Requests.createModel("acme", "llama")
      let first = try await f.registry.createModel(request)
      let second = try await f.registry.createModel(request)
      #expect(second == first)
      #expect(try await f.usage("acme", .models) == QuotaUsage(1, 0))
      var changed = request
      changed.name = "other"
      let reused = await status { try await f.registry.createModel(changed) }
      #expect(reused?.code == .invalidArgument)
      #expect(reused?.message == "idempotency_key: was already used for a different request")
    }
  }

  @Test("UpdateModel changes only the masked fields and moves update_time; versions of an archived model are refused")
  func updates() async throws {
    try await withService("registry_api_updates") { f in
      try await f.register("acme")
      let created = try await f.registry.createModel(.with {
        $0.tenantID = "acme"
        $0.name = "llama"
        $0.description_p = "first"
        $0.labels = ["team": "nlp"]
        $0.idempotencyKey = "c"
      })
      let updated = try await f.registry.updateModel(.with {
        $0.tenantID = "acme"
        $0.model = Requests.ref(id: created.id)
        $0.update = .with {
          $0.name = "ignored-name"
          $0.description_p = "second"
          $0.state = .archived
        }
        $0.updateMask = Google_Protobuf_FieldMask(protoPaths: ["description", "state"])
        $0.idempotencyKey = "u"
      })
      #expect(updated.name == "llama")
      #expect(updated.description_p == "second")
      #expect(updated.labels == ["team": "nlp"])
      #expect(updated.state == .archived)
      #expect(updated.createTime == created.createTime)
      #expect(updated.updateTime.date > created.updateTime.date)
      let refused = await status { try await f.registry.createModelVersion(Requests.createVersion("acme", Requests.ref("llama"), "1", size: 1)) }
      #expect(refused?.code == .failedPrecondition)
      #expect(try await f.usage("acme", .storageBytes) == QuotaUsage(0, 0))
    }
  }

  @Test("quota unreachable is UNAVAILABLE within the deadline, and nothing is written")
  func quotaUnreachable() async throws {
    try await withDatabase("registry_api_quota_down", plan: try RegistrySchema.plan(serviceRole: "maas_app")) { app, owner in
      // Nothing listens on the quota target: port 1 on loopback.
      try await withGRPCClient(transport: ShimClientTransport(target: "127.0.0.1:1")) { upstream in
        let gate = GRPCQuotaGate(channel: upstream, timeout: .seconds(2))
        let store = RegistryStore(pool: app, quota: gate, logger: quietLogger)
        let command = try CreateModelCommand.validate(tenantID: "acme", name: "llama", description: "", labels: [:], idempotencyKey: "k").get()
        let error = await registryError { try await store.createModel(command) }
        #expect(error?.category == .unavailable)
        let rows = try await owner.query("SELECT count(*) FROM registry.models")
        #expect(try rows[0].decode(Int.self, at: 0) == 0)
      }
    }
  }
}
