import Foundation
import MaaSTesting
import GRPCCore
import MaaSContracts
import Registry
import SwiftProtobuf
import Testing

/// Bad input as clients send it, typed and as raw bytes.
@Suite("Bad input over gRPC", .serialized, .timeLimit(.minutes(5)))
struct BadInputTests {
  @Test("bad input on every field is INVALID_ARGUMENT naming the field, and nothing is written")
  func badInput() async throws {
    try await withService("registry_api_bad_input") { f in
      try await f.register("acme")
      _ = try await f.registry.createModel(Requests.createModel("acme", "llama"))
      let tenKB = String(repeating: "n", count: 10_240)
      func create(_ edit: (inout Maas_Registry_V1_CreateModelRequest) -> Void) -> Maas_Registry_V1_CreateModelRequest {
        var request = Requests.createModel("acme", "fresh")
        edit(&request)
        return request
      }
      func version(_ edit: (inout Maas_Registry_V1_CreateModelVersionRequest) -> Void) -> Maas_Registry_V1_CreateModelVersionRequest {
        var request = Requests.createVersion("acme", Requests.ref("llama"), "1", size: 1)
        edit(&request)
        return request
      }
      let models: [(Maas_Registry_V1_CreateModelRequest, String)] = [
        (create { $0.tenantID = "" }, "tenant_id: is required"),
        (create { $0.name = "" }, "name: is required"),
        (create { $0.name = tenKB }, "name: must be 1 to 128 characters"),
        (create { $0.name = "has space" }, "name: must use only [A-Za-z0-9._-]"),
        (create { $0.description_p = String(repeating: "d", count: 4097) }, "description: must be at most 4096 bytes"),
        (create { $0.labels = ["Bad": "x"] }, "labels: must have keys"),
        (create { $0.labels = ["ok": String(repeating: "v", count: 256)] }, "labels[ok]: must be at most 255 bytes"),
        (create { $0.idempotencyKey = "" }, "idempotency_key: is required"),
        (create { $0.idempotencyKey = tenKB }, "idempotency_key: must be at most 128 bytes"),
      ]
      for (request, message) in models {
        let failure = await status { try await f.registry.createModel(request) }
        #expect(failure?.code == .invalidArgument, "\(message)")
        #expect(failure?.message.hasPrefix(message) == true, "\(failure?.message ?? "success") for \(message)")
      }
      let versions: [(Maas_Registry_V1_CreateModelVersionRequest, String)] = [
        (version { $0.clearModel() }, "model: is required"),
        (version { $0.model = Requests.ref(tenKB) }, "model.name: must be 1 to 128 characters"),
        (version { $0.model = Requests.ref(id: "") }, "model.id: is required"),
        (version { $0.version = "" }, "version: is required"),
        (version { $0.version = tenKB }, "version: must be 1 to 64 characters"),
        (version { $0.clearArtifact() }, "artifact: is required"),
        (version { $0.artifact.uri = "" }, "artifact.uri: is required"),
        (version { $0.artifact.uri = "no-scheme" }, "artifact.uri: must be an absolute URI"),
        (version { $0.artifact.format = tenKB }, "artifact.format: must be at most 64 characters"),
        (version { $0.artifact.sizeBytes = -1 }, "artifact.size_bytes: must not be negative"),
        (version { $0.artifact.sizeBytes = .min }, "artifact.size_bytes: must not be negative"),
        (version { $0.artifact.sha256 = "abc" }, "artifact.sha256: must be exactly 64 lower-case hex digits"),
        (version { $0.artifact.sha256 = sha.uppercased() }, "artifact.sha256: must be exactly 64 lower-case hex digits"),
      ]
      for (request, message) in versions {
        let failure = await status { try await f.registry.createModelVersion(request) }
        #expect(failure?.code == .invalidArgument, "\(message)")
        #expect(failure?.message.hasPrefix(message) == true, "\(failure?.message ?? "success") for \(message)")
      }
      for size: Int32 in [0, -1, 1001, 1_000_000_000] {
        let failure = await status { try await f.registry.listModels(.with { $0.tenantID = "acme"; $0.pageSize = size }) }
        #expect(failure?.code == .invalidArgument)
        #expect(failure?.message == "page_size: must be 1 to 1000")
        let versionsFailure = await status {
          try await f.registry.listModelVersions(.with { $0.tenantID = "acme"; $0.model = Requests.ref("llama"); $0.pageSize = size })
        }
        #expect(versionsFailure?.message == "page_size: must be 1 to 1000")
      }
      for token in ["forged", "AAAA", tenKB, testTokens.token(after: ModelCursor(name: "a", id: UUID()), in: .models(tenant: "acme", namePrefix: "", labels: [:], state: nil)) + "x"] {
        let failure = await status { try await f.registry.listModels(.with { $0.tenantID = "acme"; $0.pageSize = 10; $0.pageToken = token }) }
        #expect(failure?.code == .invalidArgument)
        #expect(failure?.message.hasPrefix("page_token: ") == true)
      }
      let unknownState = await status { try await f.registry.listModels(.with { $0.tenantID = "acme"; $0.pageSize = 10; $0.state = .UNRECOGNIZED(7) }) }
      #expect(unknownState?.message.hasPrefix("state: ") == true)
      let mask = await status {
        try await f.registry.updateModel(.with {
          $0.tenantID = "acme"
          $0.model = Requests.ref("llama")
          $0.updateMask = Google_Protobuf_FieldMask(protoPaths: ["id"])
          $0.idempotencyKey = "u"
        })
      }
      #expect(mask?.code == .invalidArgument)
      #expect(mask?.message.hasPrefix("update_mask: ") == true)
      let throughAlias = await status {
        try await f.registry.deleteModelVersion(.with {
          $0.tenantID = "acme"; $0.model = Requests.ref("llama"); $0.version = .with { $0.alias = "production" }; $0.idempotencyKey = "d"
        })
      }
      #expect(throughAlias?.message == "version: must name the version by id or version string, not by alias")
      #expect(try await f.count("models", tenant: "acme") == 1)
      #expect(try await f.count("versions", tenant: "acme") == 0)
      #expect(try await f.usage("acme", .storageBytes) == QuotaUsage(0, 0))
    }
  }

  @Test("text that is not UTF-8 on the wire is INVALID_ARGUMENT naming the field, not a crash")
  func invalidUTF8() async throws {
    try await withService("registry_api_utf8") { f in
      try await f.register("acme")
      _ = try await f.registry.createModel(Requests.createModel("acme", "llama"))
      let bad = Wire.invalidUTF8
      let calls: [(MethodDescriptor, [UInt8], String)] = [
        (Registry.Method.CreateModel.descriptor, Wire.field(1, "acme") + Wire.field(2, bad) + Wire.field(5, "k"), "name"),
        (Registry.Method.CreateModel.descriptor, Wire.field(1, bad) + Wire.field(2, "x") + Wire.field(5, "k"), "tenant_id"),
        (Registry.Method.CreateModel.descriptor, Wire.field(1, "acme") + Wire.field(2, "x") + Wire.field(3, bad), "description"),
        (Registry.Method.CreateModel.descriptor, Wire.field(1, "acme") + Wire.field(4, Wire.field(1, "k") + Wire.field(2, bad)), "labels"),
        (Registry.Method.CreateModel.descriptor, Wire.field(1, "acme") + Wire.field(5, bad), "idempotency_key"),
        (Registry.Method.GetModel.descriptor, Wire.field(1, "acme") + Wire.field(2, Wire.field(2, bad)), "model.name"),
        (Registry.Method.CreateModelVersion.descriptor,
          Wire.field(1, "acme") + Wire.field(2, Wire.field(2, "llama")) + Wire.field(3, "1") + Wire.field(4, Wire.field(1, bad)),
          "artifact.uri"),
        (Registry.Method.GetModelVersion.descriptor,
          Wire.field(1, "acme") + Wire.field(2, Wire.field(2, "llama")) + Wire.field(3, Wire.field(3, bad)), "version.alias"),
        (Registry.Method.ListModels.descriptor, Wire.field(1, "acme") + Wire.field(3, bad), "page_token"),
        (Registry.Method.UpdateModel.descriptor, Wire.field(1, "acme") + Wire.field(4, Wire.field(1, bad)), "update_mask.paths"),
        (Registry.Method.SetModelAlias.descriptor, Wire.field(1, "acme") + Wire.field(3, bad), "alias"),
      ]
      for (method, bytes, field) in calls {
        let failure = await f.registryClient.rawStatus(method, bytes)
        #expect(failure?.code == .invalidArgument, "\(method.method) \(field)")
        #expect(failure?.message == "\(field): is not valid UTF-8", "\(method.method): \(failure?.message ?? "success")")
      }
      // Bytes that are no message at all are refused too, naming no field.
      let garbage = await f.registryClient.rawStatus(Registry.Method.CreateModel.descriptor, [0x0a, 0xff, 0xff, 0xff])
      #expect(garbage?.code == .invalidArgument)
      // And the service is still serving.
      #expect(try await f.registry.getModel(.with { $0.tenantID = "acme"; $0.model = Requests.ref("llama") }).name == "llama")
      #expect(try await f.count("models", tenant: "acme") == 1)
    }
  }
}
