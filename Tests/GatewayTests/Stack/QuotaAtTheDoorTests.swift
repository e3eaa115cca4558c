import Foundation
import GRPCCore
import MaaSContracts
import MaaSTesting
import Testing

/// The seed's other two rules, over the real stack: requests over quota are rejected, and usage
/// statistics are exact.
@Suite("Quota is enforced at the door", .serialized, .timeLimit(.minutes(5)))
struct QuotaAtTheDoorTests {
  @Test("the 101st model is RESOURCE_EXHAUSTED naming the limit, and nothing is written")
  func modelLimit() async throws {
    try await withStack("stack_model_limit") { stack in
      let tenant = try await stack.tenant("tenant-a")
      try await withThrowingTaskGroup(of: Void.self) { group in
        for index in 0..<100 {
          group.addTask {
            _ = try await stack.gateway.createModel(
              .with {
                $0.name = "model-\(index)"
                $0.idempotencyKey = "m\(index)"
              }, metadata: tenant.credential)
          }
          if index % 8 == 7 { try await group.waitForAll() }
        }
        try await group.waitForAll()
      }
      let refused = await status {
        try await stack.gateway.createModel(.with { $0.name = "model-100"; $0.idempotencyKey = "m100" }, metadata: tenant.credential)
      }
      #expect(refused?.code == .resourceExhausted)
      #expect(refused?.message.contains("models: limit 100, used 100, asked 1") == true, "\(String(describing: refused))")
      let models = try await stack.usage(tenant, .models)
      #expect((models.used, models.reserved) == (100, 0))
      var names: Set<String> = []
      var token = ""
      var pages = 0
      repeat {
        let page = try await stack.gateway.listModels(.with { $0.pageSize = 30; $0.pageToken = token }, metadata: tenant.credential)
        names.formUnion(page.models.map(\.name))
        token = page.nextPageToken
        pages += 1
      } while !token.isEmpty
      #expect(names.count == 100)
      #expect(!names.contains("model-100"))
      // What the tenant is shown equals what was admitted: 100 models; and every call counted,
      // the refused 101st CreateModel too (it was spent at the door). GetUsage's own charge goes
      // alongside its read (the gateway overlaps them), so the report may or may not include it.
      let usage = try await stack.gateway.getUsage(.init(), metadata: tenant.credential)
      let lines = Dictionary(uniqueKeysWithValues: usage.lines.map { ($0.resource, $0.used) })
      #expect(lines[.models] == 100)
      let calls = Int64(100 + 1 + pages)
      #expect(lines[.apiCallsPerDay] == calls || lines[.apiCallsPerDay] == calls + 1, "\(pages) pages: \(lines)")
    }
  }

  @Test("a version that passes the storage limit is RESOURCE_EXHAUSTED naming the limit; deleting gives storage back")
  func storageLimit() async throws {
    try await withStack("stack_storage_limit") { stack in
      let tenant = try await stack.tenant("tenant-a", limits: [.storageBytes: 1_000])
      _ = try await stack.gateway.createModel(.with { $0.name = "alpha"; $0.idempotencyKey = "m" }, metadata: tenant.credential)
      func version(_ name: String, size: Int64) async -> (code: RPCError.Code, message: String)? {
        await status {
          try await stack.gateway.createModelVersion(
            .with {
              $0.model = .with { $0.name = "alpha" }
              $0.version = name
              $0.artifact = .with {
                $0.uri = "s3://bucket/alpha/\(name)"
                $0.sha256 = validSHA256
                $0.sizeBytes = size
              }
              $0.idempotencyKey = "v-\(name)-\(size)"
            }, metadata: tenant.credential)
        }
      }
      #expect(await version("1.0.0", size: 600) == nil)
      let refused = await version("2.0.0", size: 401)
      #expect(refused?.code == .resourceExhausted)
      #expect(refused?.message.contains("storage_bytes: limit 1000, used 600, asked 401") == true, "\(String(describing: refused))")
      #expect(try await stack.usage(tenant, .storageBytes).used == 600)
      _ = try await stack.gateway.deleteModelVersion(
        .with {
          $0.model = .with { $0.name = "alpha" }
          $0.version = .with { $0.version = "1.0.0" }
          $0.idempotencyKey = "delete"
        }, metadata: tenant.credential)
      #expect(try await stack.usage(tenant, .storageBytes).used == 0)
      #expect(await version("2.0.0", size: 1_000) == nil)
    }
  }

  @Test("the call past the daily API budget is RESOURCE_EXHAUSTED naming the limit, and GetQuota shows exactly what was admitted")
  func dailyBudget() async throws {
    try await withStack("stack_api_budget") { stack in
      let tenant = try await stack.tenant("tenant-a", limits: [.apiCallsPerDay: 10])
      var admitted = 0
      var refusals: [String] = []
      for index in 0..<15 {
        let call = await status {
          try await stack.gateway.listModels(.with { $0.pageSize = 10 }, metadata: tenant.credential)
        }
        if call == nil {
          admitted += 1
        } else {
          #expect(call?.code == .resourceExhausted, "call \(index): \(String(describing: call))")
          refusals.append(call?.message ?? "")
        }
      }
      #expect(admitted == 10)
      #expect(refusals.first?.hasPrefix("api_calls_per_day: limit 10, used 10, asked 1, resets ") == true, "\(refusals)")
      // GetQuota is itself a public call: it is refused too once the budget is spent, so the
      // figure is read from the quota service directly.
      #expect(try await stack.usage(tenant, .apiCallsPerDay).used == 10)
    }
  }

  @Test("of 40 concurrent calls against a budget of 25, exactly 25 are admitted and counted, the others RESOURCE_EXHAUSTED")
  func dailyBudgetUnderConcurrency() async throws {
    try await withStack("stack_api_budget_concurrent") { stack in
      let tenant = try await stack.tenant("tenant-a", limits: [.apiCallsPerDay: 25])
      let outcomes = try await withThrowingTaskGroup(of: RPCError.Code?.self) { group in
        for _ in 0..<40 {
          group.addTask {
            await status { try await stack.gateway.listModels(.with { $0.pageSize = 10 }, metadata: tenant.credential) }?.code
          }
        }
        return try await group.reduce(into: [RPCError.Code?]()) { $0.append($1) }
      }
      #expect(outcomes.filter { $0 == nil }.count == 25)
      #expect(outcomes.filter { $0 == .resourceExhausted }.count == 15)
      #expect(try await stack.usage(tenant, .apiCallsPerDay).used == 25)
    }
  }
}

@Suite("Bad input through the gateway", .serialized, .timeLimit(.minutes(5)))
struct GatewayBadInputTests {
  @Test("every malformed field is INVALID_ARGUMENT naming it, and nothing is written")
  func badInput() async throws {
    try await withStack("stack_bad_input") { stack in
      let tenant = try await stack.tenant("tenant-a")
      let asTenant = tenant.credential
      _ = try await stack.gateway.createModel(.with { $0.name = "alpha"; $0.idempotencyKey = "m" }, metadata: asTenant)
      func createModel(_ name: String) async -> (code: RPCError.Code, message: String)? {
        await status { try await stack.gateway.createModel(.with { $0.name = name; $0.idempotencyKey = UUID().uuidString }, metadata: asTenant) }
      }
      func createVersion(_ edit: @escaping (inout Maas_Registry_V1_Artifact) -> Void) async -> (code: RPCError.Code, message: String)? {
        await status {
          try await stack.gateway.createModelVersion(
            .with {
              $0.model = .with { $0.name = "alpha" }
              $0.version = "1.0.0"
              var artifact = Maas_Registry_V1_Artifact.with {
                $0.uri = "s3://bucket/alpha"
                $0.sha256 = validSHA256
                $0.sizeBytes = 10
              }
              edit(&artifact)
              $0.artifact = artifact
              $0.idempotencyKey = UUID().uuidString
            }, metadata: asTenant)
        }
      }
      func list(pageSize: Int32, token: String = "") async -> (code: RPCError.Code, message: String)? {
        await status { try await stack.gateway.listModels(.with { $0.pageSize = pageSize; $0.pageToken = token }, metadata: asTenant) }
      }
      let cases: [(String, (code: RPCError.Code, message: String)?, String)] = [
        ("an empty name", await createModel(""), "name"),
        ("a 10 KB name", await createModel(String(repeating: "n", count: 10_240)), "name"),
        ("a negative size", await createVersion { $0.sizeBytes = -1 }, "artifact.size_bytes"),
        ("a malformed sha256", await createVersion { $0.sha256 = "xyz" }, "artifact.sha256"),
        ("an upper-case sha256", await createVersion { $0.sha256 = validSHA256.uppercased() }, "artifact.sha256"),
        ("a relative uri", await createVersion { $0.uri = "bucket/alpha" }, "artifact.uri"),
        ("page size 0", await list(pageSize: 0), "page_size"),
        ("page size 10^9", await list(pageSize: 1_000_000_000), "page_size"),
        ("a forged page token", await list(pageSize: 10, token: "bm90LWEtcmVhbC10b2tlbg"), "page_token"),
        ("a usage period from before the year 1",
          await status { try await stack.gateway.getUsage(.with { $0.periodStart = .with { $0.seconds = .min } }, metadata: asTenant) },
          "period_start"),
      ]
      for (what, answer, field) in cases {
        #expect(answer?.code == .invalidArgument, "\(what): \(String(describing: answer))")
        #expect(answer?.message.hasPrefix(field + ":") == true, "\(what): \(String(describing: answer))")
      }
      // Invalid UTF-8 cannot be built as a Swift String: those requests go as raw bytes.
      typealias Public = Maas_Gateway_V1_Gateway.Method
      typealias Admin = Maas_Gateway_V1_Admin.Method
      let bad = Wire.invalidUTF8
      let raw: [(MethodDescriptor, [UInt8], String, Metadata)] = [
        (Public.CreateModel.descriptor, Wire.field(1, bad) + Wire.field(4, "k"), "name", asTenant),
        (Public.CreateModel.descriptor, Wire.field(1, "beta") + Wire.field(3, Wire.field(1, "k") + Wire.field(2, bad)), "labels", asTenant),
        (Public.GetModel.descriptor, Wire.field(1, Wire.field(2, bad)), "model.name", asTenant),
        (Public.ListModels.descriptor, Wire.field(3, bad), "name_prefix", asTenant),
        (Public.CreateModelVersion.descriptor,
          Wire.field(1, Wire.field(2, "alpha")) + Wire.field(2, "1") + Wire.field(3, Wire.field(1, bad)), "artifact.uri", asTenant),
        (Public.GetModelVersion.descriptor, Wire.field(1, Wire.field(2, "alpha")) + Wire.field(2, Wire.field(3, bad)), "version.alias", asTenant),
        (Public.SetModelAlias.descriptor, Wire.field(1, Wire.field(2, "alpha")) + Wire.field(2, bad), "alias", asTenant),
        (Admin.CreateTenant.descriptor, Wire.field(1, bad), "name", stack.asAdmin),
        (Admin.CreateApiKey.descriptor, Wire.field(1, Array(tenant.id.utf8)) + Wire.field(2, bad), "name", stack.asAdmin),
      ]
      for (method, bytes, field, credential) in raw {
        let answer = await stack.client.rawStatus(method, bytes, metadata: credential)
        #expect(answer?.code == .invalidArgument, "\(method.method) \(field): \(String(describing: answer))")
        #expect(answer?.message == "\(field): is not valid UTF-8", "\(method.method): \(String(describing: answer))")
      }
      // Nothing above was written:
      let models = try await stack.gateway.listModels(.with { $0.pageSize = 10 }, metadata: asTenant)
      #expect(models.models.map(\.name) == ["alpha"])
      let versions = try await stack.gateway.listModelVersions(.with { $0.model = .with { $0.name = "alpha" }; $0.pageSize = 10 }, metadata: asTenant)
      #expect(versions.versions.isEmpty)
      #expect(try await stack.usage(tenant, .storageBytes).used == 0)
    }
  }
}

@Suite("maasctl against the real stack", .serialized, .timeLimit(.minutes(5)))
struct MaasctlTests {
  func maasctl(_ arguments: [String], stack: Stack, token: String?) async throws -> ProcessOutcome {
    var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("MAAS_") }
    environment["MAAS_GATEWAY"] = stack.gatewayTarget
    if let token { environment["MAAS_TOKEN"] = token }
    environment["MAAS_ADMIN_TOKEN"] = GatewayHarness.adminToken
    return try await runToCompletion(
      try builtProduct(named: "maasctl").path, arguments, environment: environment, timeLimit: .seconds(60))
  }

  @Test("maasctl creates, lists and shows models as tables and JSON, and says what went wrong with an exit status")
  func roundTrip() async throws {
    try await withStack("stack_maasctl") { stack in
      let tenant = try await stack.tenant("tenant-a")
      let created = try await maasctl(["models", "create", "llama", "--label", "team=research"], stack: stack, token: tenant.secret)
      #expect(created.succeeded, "\(created.standardError)")
      #expect(created.standardOutput.contains("llama"))
      #expect(created.standardOutput.contains("team=research"))

      let listed = try await maasctl(["models", "list", "--output", "json"], stack: stack, token: tenant.secret)
      #expect(listed.succeeded, "\(listed.standardError)")
      let json = try JSONSerialization.jsonObject(with: Data(listed.standardOutput.utf8)) as? [String: Any]
      let models = json?["models"] as? [[String: Any]]
      #expect(models?.map { $0["name"] as? String } == ["llama"])

      let missing = try await maasctl(["models", "get", "nope"], stack: stack, token: tenant.secret)
      #expect(missing.exited && missing.status == 1)
      #expect(missing.standardError.hasPrefix("maasctl: NOT_FOUND: model:"), "\(missing.standardError)")

      let anonymous = try await maasctl(["models", "list"], stack: stack, token: "maas_notakey_xxxx")
      #expect(anonymous.exited && anonymous.status == 1)
      #expect(anonymous.standardError.contains("UNAUTHENTICATED"), "\(anonymous.standardError)")

      let tenants = try await maasctl(["tenants", "list", "--output", "json"], stack: stack, token: nil)
      #expect(tenants.succeeded, "\(tenants.standardError)")
      #expect(tenants.standardOutput.contains(tenant.id))

      let usage = try await maasctl(["models", "list"], stack: stack, token: nil)
      #expect(usage.exited && usage.status == 64)

      // Flags whose values used to trap in maasctl are usage errors naming the flag.
      for timeout in ["nan", "inf", "1e17", "0"] {
        let bad = try await maasctl(["models", "list", "--timeout", timeout], stack: stack, token: tenant.secret)
        #expect(bad.exited && bad.status == 64, "--timeout \(timeout): \(bad.status) \(bad.standardError)")
        #expect(bad.standardError.contains("--timeout: must be more than 0"), "\(bad.standardError)")
      }
      let forever = try await maasctl(
        ["keys", "create", "--tenant", tenant.id, "--expires-in-days", "9223372036854775807"], stack: stack, token: nil)
      #expect(forever.exited && forever.status == 64, "\(forever.status) \(forever.standardError)")
      #expect(forever.standardError.contains("--expires-in-days: must be 1 to 36500"), "\(forever.standardError)")
    }
  }
}
