import Foundation
import MaaSTesting
import GRPCCore
import MaaSContracts
import Registry
import SwiftProtobuf
import Testing

/// Tenancy at the edge: every method, by name and by id, as another tenant calls it.
@Suite("Tenant isolation over gRPC", .serialized, .timeLimit(.minutes(5)))
struct TenantIsolationTests {
  @Test("another tenant's model, version and alias answer NOT_FOUND exactly like missing ones, by name and by id, and stay unchanged")
  func isolation() async throws {
    try await withService("registry_api_isolation") { f in
      try await f.register("acme")
      try await f.register("globex")
      let model = try await f.registry.createModel(Requests.createModel("acme", "llama", labels: ["team": "nlp"]))
      let version = try await f.registry.createModelVersion(Requests.createVersion("acme", Requests.ref("llama"), "1.0", size: 10))
      _ = try await f.registry.setModelAlias(.with {
        $0.tenantID = "acme"
        $0.model = Requests.ref("llama")
        $0.alias = "production"
        $0.version = "1.0"
        $0.idempotencyKey = "alias"
      })
      let before = try await f.registry.getModel(.with { $0.tenantID = "acme"; $0.model = Requests.ref("llama") })
      let acmeModels = try await f.usage("acme", .models)
      let acmeStorage = try await f.usage("acme", .storageBytes)

      // Every call of the service on acme's resources, as `tenant` asks it.
      func everyCall(as tenant: String) async -> [String: (code: RPCError.Code, message: String)?] {
        var answers: [String: (code: RPCError.Code, message: String)?] = [:]
        let key = { UUID().uuidString }
        for (label, ref) in [("name", Requests.ref("llama")), ("id", Requests.ref(id: model.id))] {
          answers["GetModel \(label)"] = await status { try await f.registry.getModel(.with { $0.tenantID = tenant; $0.model = ref }) }
          answers["UpdateModel \(label)"] = await status {
            try await f.registry.updateModel(.with {
              $0.tenantID = tenant
              $0.model = ref
              $0.update = .with { $0.description_p = "pwned" }
              $0.updateMask = Google_Protobuf_FieldMask(protoPaths: ["description"])
              $0.idempotencyKey = key()
            })
          }
          answers["DeleteModel \(label)"] = await status {
            try await f.registry.deleteModel(.with { $0.tenantID = tenant; $0.model = ref; $0.force = true; $0.idempotencyKey = key() })
          }
          answers["CreateModelVersion \(label)"] = await status {
            var request = Requests.createVersion(tenant, ref, "2.0", size: 1)
            request.idempotencyKey = key()
            return try await f.registry.createModelVersion(request)
          }
          answers["GetModelVersion \(label) version"] = await status {
            try await f.registry.getModelVersion(.with { $0.tenantID = tenant; $0.model = ref; $0.version = .with { $0.version = "1.0" } })
          }
          answers["GetModelVersion \(label) alias"] = await status {
            try await f.registry.getModelVersion(.with { $0.tenantID = tenant; $0.model = ref; $0.version = .with { $0.alias = "production" } })
          }
          answers["GetModelVersion \(label) id"] = await status {
            try await f.registry.getModelVersion(.with { $0.tenantID = tenant; $0.model = ref; $0.version = .with { $0.id = version.id } })
          }
          answers["ListModelVersions \(label)"] = await status {
            try await f.registry.listModelVersions(.with { $0.tenantID = tenant; $0.model = ref; $0.pageSize = 10 })
          }
          answers["DeleteModelVersion \(label)"] = await status {
            try await f.registry.deleteModelVersion(.with {
              $0.tenantID = tenant; $0.model = ref; $0.version = .with { $0.version = "1.0" }; $0.idempotencyKey = key()
            })
          }
          answers["SetModelAlias \(label)"] = await status {
            try await f.registry.setModelAlias(.with {
              $0.tenantID = tenant; $0.model = ref; $0.alias = "production"; $0.version = "1.0"; $0.idempotencyKey = key()
            })
          }
          answers["GetModelAlias \(label)"] = await status {
            try await f.registry.getModelAlias(.with { $0.tenantID = tenant; $0.model = ref; $0.alias = "production" })
          }
          answers["DeleteModelAlias \(label)"] = await status {
            try await f.registry.deleteModelAlias(.with { $0.tenantID = tenant; $0.model = ref; $0.alias = "production"; $0.idempotencyKey = key() })
          }
        }
        answers["GetModelVersion id only"] = await status {
          try await f.registry.getModelVersion(.with { $0.tenantID = tenant; $0.version = .with { $0.id = version.id } })
        }
        answers["DeleteModelVersion id only"] = await status {
          try await f.registry.deleteModelVersion(.with { $0.tenantID = tenant; $0.version = .with { $0.id = version.id }; $0.idempotencyKey = key() })
        }
        return answers
      }

      let globex = await everyCall(as: "globex")
      #expect(globex.count == 26)
      for (call, answer) in globex.sorted(by: { $0.key < $1.key }) {
        #expect(answer?.code == .notFound, "\(call): \(String(describing: answer))")
      }
      #expect(try await f.registry.listModels(.with { $0.tenantID = "globex"; $0.pageSize = 10 }).models.isEmpty)

      // acme's data and quota are as they were; globex took nothing.
      let after = try await f.registry.getModel(.with { $0.tenantID = "acme"; $0.model = Requests.ref(id: model.id) })
      #expect(after == before)
      let versions = try await f.registry.listModelVersions(.with { $0.tenantID = "acme"; $0.model = Requests.ref("llama"); $0.pageSize = 10 })
      #expect(versions.versions == [version])
      #expect(try await f.usage("acme", .models) == acmeModels)
      #expect(try await f.usage("acme", .storageBytes) == acmeStorage)
      #expect(try await f.usage("globex", .models) == QuotaUsage(0, 0))
      for table in ["models", "versions", "aliases"] { #expect(try await f.count(table, tenant: "globex") == 0) }

      // "Exactly like one that does not exist": once acme's model is gone, acme gets the very
      // answers globex got while it existed.
      _ = try await f.registry.deleteModelAlias(.with { $0.tenantID = "acme"; $0.model = Requests.ref("llama"); $0.alias = "production"; $0.idempotencyKey = "d1" })
      _ = try await f.registry.deleteModel(.with { $0.tenantID = "acme"; $0.model = Requests.ref("llama"); $0.force = true; $0.idempotencyKey = "d2" })
      let missing = await everyCall(as: "acme")
      for (call, answer) in globex.sorted(by: { $0.key < $1.key }) {
        #expect(missing[call]??.code == answer?.code, "\(call)")
        #expect(missing[call]??.message == answer?.message, "\(call)")
      }
    }
  }
}
