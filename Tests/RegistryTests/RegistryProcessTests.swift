import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import MaaSRuntime
import MaaSTesting
import Registry
import Testing

@Suite("The maas-registry executable and its configuration", .serialized, .timeLimit(.minutes(5)))
struct RegistryProcessTests {
  @Test("maas-registry migrates, serves health and the registry, reserves through a maas-quota process, and drains on SIGTERM")
  func servesWithTheQuotaProcess() async throws {
    let registryDatabase = try await PostgresFixture.shared().createDatabase(named: "registry_process_registry")
    let (quota, quotaTarget) = try await ServerProcess.quota(databaseNamed: "registry_process_quota")
    defer { quota.kill() }
    let registry = try ServerProcess(
      binary: try builtProduct(named: "maas-registry"), environmentPrefix: "MAAS_REGISTRY_",
      environment: [
        "MAAS_REGISTRY_DATABASE_URL": registryDatabase.appURL,
        "MAAS_REGISTRY_MIGRATION_DATABASE_URL": registryDatabase.ownerURL,
        "MAAS_REGISTRY_HOST": "127.0.0.1", "MAAS_REGISTRY_PORT": "0", "MAAS_REGISTRY_LOG_LEVEL": "warning",
        "MAAS_REGISTRY_QUOTA_TARGET": quotaTarget,
        "MAAS_REGISTRY_PAGE_TOKEN_SECRET": "a secret of the test's own, long enough",
      ])
    defer { registry.kill() }
    let registryPort = try await registry.listeningPort()

    try await withGRPCClient(transport: ShimClientTransport(target: quotaTarget)) { quotaClient in
      try await withGRPCClient(transport: ShimClientTransport(target: "127.0.0.1:\(registryPort)")) { client in
        let health = Grpc_Health_V1_Health.Client(wrapping: client)
        #expect(try await health.check(.with { $0.service = "maas.registry.v1.ModelRegistry" }).status == .serving)
        let quota = Maas_Quota_V1_Quota.Client(wrapping: quotaClient)
        _ = try await quota.setLimits(.with {
          $0.tenantID = "acme"
          $0.limits = [.with { $0.resource = .storageBytes; $0.value = 100 }]
          $0.idempotencyKey = "register"
        })
        let registry = Maas_Registry_V1_ModelRegistry.Client(wrapping: client)
        let model = try await registry.createModel(.with {
          $0.tenantID = "acme"
          $0.name = "llama"
          $0.idempotencyKey = "create"
        })
        #expect(model.state == .active)
        _ = try await registry.createModelVersion(.with {
          $0.tenantID = "acme"
          $0.model = .with { $0.id = model.id }
          $0.version = "1"
          $0.artifact = .with {
            $0.uri = "s3://weights/1"
            $0.sizeBytes = 100
            $0.sha256 = sha
          }
          $0.idempotencyKey = "v1"
        })
        let usage = try await quota.getQuota(.with { $0.tenantID = "acme" }).resources
        #expect(usage.first { $0.resource == .models }?.used == 1)
        #expect(usage.first { $0.resource == .storageBytes }?.used == 100)
      }
    }
    registry.signal(SIGTERM)
    #expect(try await registry.exitStatus() == .exited(0))
    quota.signal(SIGTERM)
    #expect(try await quota.exitStatus() == .exited(0))
  }

  @Test("maas-registry exits 2 naming every invalid variable, without printing the secret")
  func refusesInvalidConfiguration() async throws {
    let registry = try ServerProcess(
      binary: try builtProduct(named: "maas-registry"), environmentPrefix: "MAAS_REGISTRY_",
      environment: [
        "MAAS_REGISTRY_QUOTA_TARGET": "not a target",
        "MAAS_REGISTRY_QUOTA_TIMEOUT_SECONDS": "soon",
        "MAAS_REGISTRY_PAGE_TOKEN_SECRET": "hunter2",
        "MAAS_REGISTRY_IDEMPOTENCY_RETENTION_HOURS": "1",
      ])
    defer { registry.kill() }
    #expect(await registry.firstLine() == nil)
    #expect(try await registry.exitStatus() == .exited(2))
    let message = await registry.standardError()
    for variable in ["QUOTA_TARGET", "QUOTA_TIMEOUT_SECONDS", "PAGE_TOKEN_SECRET", "IDEMPOTENCY_RETENTION_HOURS"] {
      #expect(message.contains("MAAS_REGISTRY_\(variable)"), "\(variable) in \(message)")
    }
    #expect(!message.contains("hunter2"))
  }

  @Test("the settings default to the documented values")
  func defaults() throws {
    var reader = EnvironmentReader(environment: [:])
    let settings = RegistrySettings.read(prefix: "MAAS_REGISTRY", from: &reader)
    try reader.finish()
    #expect(settings == RegistrySettings())
    #expect(settings.quota.target == "127.0.0.1:50054")
    #expect(settings.quota.timeout == .seconds(5))
    #expect(RegistryService.definition.defaultPort == 50052)
    #expect(RegistryService.definition.program == "maas-registry")
  }

  @Test("every table has row-level security and every index a request uses leads with tenant_id")
  func schemaShape() async throws {
    try await withStore("registry_schema_shape") { f in
      let tables = try await f.owner.query(
        """
        SELECT c.relname, c.relrowsecurity FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'registry' AND c.relkind = 'r' AND c.relname <> 'schema_migrations' ORDER BY c.relname
        """)
      let names = try tables.map { try $0.decode(String.self, column: "relname") }
      #expect(names.contains("models") && names.contains("versions") && names.contains("aliases"))
      for row in tables {
        let table = try row.decode(String.self, column: "relname")
        #expect(try row.decode(Bool.self, column: "relrowsecurity"), "\(table)")
      }
      let indexes = try await f.owner.query(
        """
        SELECT i.relname AS index, a.attname AS first FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
        JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0]
        WHERE n.nspname = 'registry' AND t.relname IN ('models', 'versions', 'aliases', 'idempotency', 'pending_releases')
        """)
      #expect(indexes.count >= 8)
      // idempotency_age is the retention sweep's, which reads every tenant's rows by age.
      for row in indexes where try row.decode(String.self, column: "index") != "idempotency_age" {
        let index = try row.decode(String.self, column: "index")
        #expect(try row.decode(String.self, column: "first") == "tenant_id", "\(index)")
      }
    }
  }
}
