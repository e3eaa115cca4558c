import Foundation
import MaaSTesting
import GRPCCore
import MaaSContracts
import Testing

/// The seed's first acceptance rule, over the real stack: a tenant sees and changes only its own
/// models. Tenant B tries every public call on tenant A's model, version and alias, by name and
/// by id; each answers exactly like something that does not exist, and nothing of A's changes.
@Suite("Tenants are isolated end to end", .serialized, .timeLimit(.minutes(5)))
struct TenantIsolationTests {
  @Test("tenant B gets NOT_FOUND for every call on tenant A's model, version and alias, and A's data is unchanged")
  func everyPublicCallIsolated() async throws {
    try await withStack("stack_isolation") { stack in
      let a = try await stack.tenant("tenant-a")
      let b = try await stack.tenant("tenant-b")
      let model = try await stack.gateway.createModel(
        .with {
          $0.name = "alpha"
          $0.labels = ["team": "a"]
          $0.idempotencyKey = "m"
        }, metadata: a.credential)
      let version = try await stack.gateway.createModelVersion(
        .with {
          $0.model = .with { $0.name = "alpha" }
          $0.version = "1.0.0"
          $0.artifact = .with {
            $0.uri = "s3://a/alpha/1.0.0"
            $0.sha256 = validSHA256
            $0.sizeBytes = 1_000
          }
          $0.idempotencyKey = "v"
        }, metadata: a.credential)
      _ = try await stack.gateway.setModelAlias(
        .with {
          $0.model = .with { $0.name = "alpha" }
          $0.alias = "production"
          $0.version = "1.0.0"
          $0.idempotencyKey = "alias"
        }, metadata: a.credential)
      let before = try await stack.gateway.getModel(.with { $0.model = .with { $0.id = model.id } }, metadata: a.credential)

      let refs: [(String, Maas_Registry_V1_ModelRef)] = [("by name", .with { $0.name = "alpha" }), ("by id", .with { $0.id = model.id })]
      let versionRefs: [Maas_Registry_V1_VersionRef] = [
        .with { $0.id = version.id }, .with { $0.version = "1.0.0" }, .with { $0.alias = "production" },
      ]
      let asB = b.credential
      for (how, ref) in refs {
        var attempts: [(String, () async throws -> Void)] = [
          ("GetModel", { _ = try await stack.gateway.getModel(.with { $0.model = ref }, metadata: asB) }),
          ("UpdateModel", {
            _ = try await stack.gateway.updateModel(
              .with {
                $0.model = ref
                $0.update = .with { $0.description_p = "taken over" }
                $0.updateMask = .with { $0.paths = ["description"] }
                $0.idempotencyKey = "u-\(how)"
              }, metadata: asB)
          }),
          ("CreateModelVersion", {
            _ = try await stack.gateway.createModelVersion(
              .with {
                $0.model = ref
                $0.version = "9.9.9"
                $0.artifact = .with {
                  $0.uri = "s3://b/evil"
                  $0.sha256 = validSHA256
                }
                $0.idempotencyKey = "cv-\(how)"
              }, metadata: asB)
          }),
          ("ListModelVersions", { _ = try await stack.gateway.listModelVersions(.with { $0.model = ref; $0.pageSize = 10 }, metadata: asB) }),
          ("SetModelAlias", {
            _ = try await stack.gateway.setModelAlias(
              .with {
                $0.model = ref
                $0.alias = "production"
                $0.version = "1.0.0"
                $0.idempotencyKey = "sa-\(how)"
              }, metadata: asB)
          }),
          ("GetModelAlias", { _ = try await stack.gateway.getModelAlias(.with { $0.model = ref; $0.alias = "production" }, metadata: asB) }),
          ("DeleteModelAlias", {
            _ = try await stack.gateway.deleteModelAlias(
              .with {
                $0.model = ref
                $0.alias = "production"
                $0.idempotencyKey = "da-\(how)"
              }, metadata: asB)
          }),
          ("DeleteModel", {
            _ = try await stack.gateway.deleteModel(
              .with {
                $0.model = ref
                $0.force = true
                $0.idempotencyKey = "dm-\(how)"
              }, metadata: asB)
          }),
        ]
        for (index, versionRef) in versionRefs.enumerated() {
          attempts.append(("GetModelVersion #\(index)", {
            _ = try await stack.gateway.getModelVersion(.with { $0.model = ref; $0.version = versionRef }, metadata: asB)
          }))
          // Deleting through an alias is refused for everyone (INVALID_ARGUMENT "version"), before
          // any lookup, so it says nothing about A's data either way.
          if case .alias = versionRef.ref { continue }
          attempts.append(("DeleteModelVersion #\(index)", {
            _ = try await stack.gateway.deleteModelVersion(
              .with {
                $0.model = ref
                $0.version = versionRef
                $0.idempotencyKey = "dv-\(how)-\(index)"
              }, metadata: asB)
          }))
        }
        for (name, attempt) in attempts {
          let answer = await status { try await attempt() }
          #expect(answer?.code == .notFound, "\(name) \(how) answered \(String(describing: answer))")
        }
      }
      // B's own model of the same name cannot reach A's version by id either.
      _ = try await stack.gateway.createModel(.with { $0.name = "alpha"; $0.idempotencyKey = "b-alpha" }, metadata: asB)
      let crossed = await status {
        try await stack.gateway.getModelVersion(
          .with {
            $0.model = .with { $0.name = "alpha" }
            $0.version = .with { $0.id = version.id }
          }, metadata: asB)
      }
      #expect(crossed?.code == .notFound)
      // Lists show B only its own.
      let listed = try await stack.gateway.listModels(.with { $0.pageSize = 100 }, metadata: asB)
      #expect(listed.models.map(\.name) == ["alpha"])
      #expect(listed.models.allSatisfy { $0.id != model.id })
      let filtered = try await stack.gateway.listModels(.with { $0.pageSize = 100; $0.labelSelector = ["team": "a"] }, metadata: asB)
      #expect(filtered.models.isEmpty)

      // Nothing of A's changed.
      let after = try await stack.gateway.getModel(.with { $0.model = .with { $0.id = model.id } }, metadata: a.credential)
      #expect(after == before)
      let versions = try await stack.gateway.listModelVersions(
        .with {
          $0.model = .with { $0.id = model.id }
          $0.pageSize = 10
        }, metadata: a.credential)
      #expect(versions.versions.map(\.id) == [version.id])
      #expect(after.aliases == ["production": "1.0.0"])
    }
  }

  @Test("no credential, a revoked key, an expired JWT, a JWT signed with the wrong key and alg none are UNAUTHENTICATED")
  func badCredentials() async throws {
    try await withStack("stack_credentials") { stack in
      let a = try await stack.tenant("tenant-a")
      _ = try await stack.gateway.createModel(.with { $0.name = "alpha"; $0.idempotencyKey = "m" }, metadata: a.credential)
      let revoked = try await stack.tenant("tenant-r")
      _ = try await stack.admin.revokeApiKey(
        .with {
          $0.tenantID = revoked.id
          $0.keyID = revoked.keyID
          $0.idempotencyKey = "revoke"
        }, metadata: stack.asAdmin)
      var expired = TestClaims.valid(tenant: a.id)
      expired.exp = .init(value: Date().addingTimeInterval(-60))
      let credentials: [(String, Metadata)] = [
        ("no credential", [:]),
        ("a revoked key", revoked.credential),
        ("an expired JWT", GatewayHarness.bearer(try await TokenIssuer.hs256(expired))),
        ("a JWT signed with the wrong key",
         GatewayHarness.bearer(try await TokenIssuer.rs256(.valid(tenant: a.id), privateKey: TestKeys.untrustedPrivateKey))),
        ("a JWT with alg none", GatewayHarness.bearer(try TokenIssuer.unsigned(.valid(tenant: a.id)))),
      ]
      for (what, metadata) in credentials {
        let list = await status { try await stack.gateway.listModels(.with { $0.pageSize = 10 }, metadata: metadata) }
        #expect(list?.code == .unauthenticated, "\(what): \(String(describing: list))")
        let get = await status { try await stack.gateway.getModel(.with { $0.model = .with { $0.name = "alpha" } }, metadata: metadata) }
        #expect(get?.code == .unauthenticated, "\(what): \(String(describing: get))")
      }
      // A valid JWT of the same tenant works, so the refusals above were about the credentials.
      let jwt = GatewayHarness.bearer(try await TokenIssuer.rs256(.valid(tenant: a.id)))
      #expect(try await stack.gateway.listModels(.with { $0.pageSize = 10 }, metadata: jwt).models.map(\.name) == ["alpha"])
    }
  }
}

@Suite("A stock Python grpcio client through the gateway", .serialized, .timeLimit(.minutes(5)))
struct GatewayInteropTests {
  @Test("Python grpcio creates and lists models with an API key, and is refused without one")
  func pythonClient() async throws {
    try #require(PythonEnvironment.isSetUp, "run scripts/python-env (or make test) first")
    try await withStack("stack_python") { stack in
      let tenant = try await stack.tenant("tenant-py")
      let outcome = try await runToCompletion(
        PythonEnvironment.python, [PythonEnvironment.script("gateway_client.py"), stack.gatewayTarget, tenant.secret],
        environment: PythonEnvironment.environment, timeLimit: .seconds(120))
      #expect(outcome.succeeded, "\(outcome.standardOutput)\(outcome.standardError)")
      let checks = outcome.standardOutput.split(separator: "\n")
      #expect(checks == ["ok create_model", "ok list_models", "ok no_credential", "ok bad_page_size", "ok get_quota"])
    }
  }
}
