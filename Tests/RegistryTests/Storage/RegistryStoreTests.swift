import Foundation
import MaaSRuntime
import MaaSTesting
import Postgres
import Registry
import Synchronization
import Testing

@Suite("The registry store on a real Postgres", .serialized, .timeLimit(.minutes(5)))
struct RegistryStoreTests {
  @Test("model names are unique per tenant, and another tenant may use the same name")
  func modelNamesAreUniquePerTenant() async throws {
    try await withStore("registry_unique_names") { f in
      let first = try await f.store.createModel(try createModel("acme", "llama"))
      #expect(first.state == .active)
      #expect(first.createdAt == first.updatedAt)
      #expect(await registryError { try await f.store.createModel(try createModel("acme", "llama")) } == .modelNameTaken("llama"))
      let other = try await f.store.createModel(try createModel("globex", "llama"))
      #expect(other.id != first.id)
      // Byte-wise, case-sensitive: "Llama" is another name.
      _ = try await f.store.createModel(try createModel("acme", "Llama"))
      #expect(try await f.count("models", tenant: "acme") == 2)
      #expect(f.quota.inUse("acme", .models) == 2)
      #expect(f.quota.count(.held) == 0, "the refused create released its hold (or never took one)")
    }
  }

  @Test("version strings are unique per model, and another model may use the same one")
  func versionStringsAreUniquePerModel() async throws {
    try await withStore("registry_unique_versions") { f in
      _ = try await f.store.createModel(try createModel("acme", "a"))
      _ = try await f.store.createModel(try createModel("acme", "b"))
      _ = try await f.store.createVersion(try createVersion("acme", "a", "1.0", size: 100))
      #expect(await registryError { try await f.store.createVersion(try createVersion("acme", "a", "1.0")) } == .versionTaken("1.0"))
      _ = try await f.store.createVersion(try createVersion("acme", "b", "1.0", size: 50))
      #expect(f.quota.inUse("acme", .storageBytes) == 150)
      #expect(try await f.count("versions", tenant: "acme") == 2)
    }
  }

  @Test("pages keep a stable byte order and never skip or repeat a model while others are inserted")
  func paginationIsStableUnderInserts() async throws {
    try await withStore("registry_pagination") { f in
      var existing: Set<String> = []
      for index in 0..<25 {
        let name = String(format: "m%02d", index * 4)
        existing.insert(name)
        _ = try await f.store.createModel(try createModel("acme", name))
      }
      var seen: [String] = []
      var token = ""
      var inserted = 0
      repeat {
        let page = try await f.store.listModels(try listModels("acme", pageSize: 7, token: token))
        #expect(page.items.count <= 7)
        seen += page.items.map(\.name)
        token = page.next.map { testTokens.token(after: $0, in: try! listModels("acme").listing) } ?? ""
        // Insert before and after the cursor between pages.
        for name in ["m\(String(format: "%02d", inserted * 4 + 1))", "z\(inserted)", "A\(inserted)"] {
          _ = try await f.store.createModel(try createModel("acme", name))
        }
        inserted += 1
      } while !token.isEmpty
      #expect(seen == seen.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
      #expect(Set(seen).count == seen.count, "no model repeated")
      #expect(existing.isSubset(of: Set(seen)), "no model that existed throughout was skipped")
    }
  }

  @Test("label selectors, name prefixes and states filter in the same query")
  func filters() async throws {
    try await withStore("registry_filters") { f in
      _ = try await f.store.createModel(try createModel("acme", "llama-7b", labels: ["team": "nlp", "env": "prod"]))
      _ = try await f.store.createModel(try createModel("acme", "llama-70b", labels: ["team": "nlp", "env": "dev"]))
      _ = try await f.store.createModel(try createModel("acme", "whisper", labels: ["team": "speech", "env": "prod"]))
      _ = try await f.store.createModel(try createModel("globex", "llama-7b", labels: ["team": "nlp", "env": "prod"]))
      func names(_ query: ListModelsQuery) async throws -> [String] {
        try await f.store.listModels(query).items.map(\.name)
      }
      #expect(try await names(listModels("acme", labels: ["team": "nlp"])) == ["llama-70b", "llama-7b"])
      #expect(try await names(listModels("acme", labels: ["team": "nlp", "env": "prod"])) == ["llama-7b"])
      #expect(try await names(listModels("acme", labels: ["env": "prod"])) == ["llama-7b", "whisper"])
      #expect(try await names(listModels("acme", labels: ["team": "NLP"])) == [])
      #expect(try await names(listModels("acme", prefix: "llama-7")) == ["llama-70b", "llama-7b"])
      #expect(try await names(listModels("acme", prefix: "llama_")) == [], "_ is not a wildcard")
      let archive = try UpdateModelCommand.validate(
        tenantID: "acme", model: .name("whisper"),
        update: .init(name: "", description: "", labels: [:], state: .some(.archived)), updateMask: ["state"],
        idempotencyKey: "archive"
      ).get()
      _ = try await f.store.updateModel(archive)
      #expect(try await names(listModels("acme", state: .archived)) == ["whisper"])
      #expect(try await names(listModels("acme", state: .active)) == ["llama-70b", "llama-7b"])
      #expect(try await names(listModels("acme")) == ["llama-70b", "llama-7b", "whisper"])
    }
  }

  @Test("row-level security holds tenants apart even for a query without a tenant filter")
  func rowLevelSecurity() async throws {
    try await withStore("registry_rls") { f in
      _ = try await f.store.createModel(try createModel("acme", "a1"))
      _ = try await f.store.createModel(try createModel("acme", "a2"))
      _ = try await f.store.createModel(try createModel("globex", "g1"))
      _ = try await f.store.createVersion(try createVersion("globex", "g1", "1"))
      let seen = try await f.app.transaction(tenant: "acme") { tx in
        try await tx.query("SELECT tenant_id, name FROM registry.models ORDER BY name").map { try $0.decode(String.self, column: "name") }
      }
      #expect(seen == ["a1", "a2"])
      let versions = try await f.app.transaction(tenant: "acme") { tx in
        try await tx.query("SELECT count(*) FROM registry.versions").first!.decode(Int.self, at: 0)
      }
      #expect(versions == 0)
      let noTenant = try await f.app.query("SELECT count(*) FROM registry.models")
      #expect(try noTenant[0].decode(Int.self, at: 0) == 0)
      // Writing another tenant's row is refused by the policy's WITH CHECK.
      await #expect(throws: PostgresError.self) {
        try await f.app.transaction(tenant: "acme") { tx in
          try await tx.execute(
            """
            INSERT INTO registry.models (tenant_id, id, name, description, labels, state, create_time, update_time)
            VALUES ('globex', gen_random_uuid(), 'sneaky', '', '{}', 1, now(), now())
            """)
        }
      }
      let updated = try await f.app.transaction(tenant: "acme") { tx in
        try await tx.execute("UPDATE registry.models SET description = 'pwned'")
      }
      #expect(updated == 2)
      let globex = try await f.store.model(try ModelQuery.validate(tenantID: "globex", model: .name("g1")).get())
      #expect(globex.description == "")
    }
  }

  @Test("a repeated call returns its first answer and changes nothing; the same key with another request is refused")
  func idempotency() async throws {
    try await withStore("registry_idempotency") { f in
      let first = try await f.store.createModel(try createModel("acme", "llama", key: "create-1"))
      let again = try await f.store.createModel(try createModel("acme", "llama", key: "create-1"))
      #expect(again == first)
      #expect(try await f.count("models", tenant: "acme") == 1)
      #expect(f.quota.inUse("acme", .models) == 1)
      let reused = await registryError { try await f.store.createModel(try createModel("acme", "other", key: "create-1")) }
      #expect(reused == .invalidRequest([FieldViolation("idempotency_key", .reusedForDifferentRequest)]))
      // A refusal is remembered too, even once it would no longer hold.
      #expect(await registryError { try await f.store.createModel(try createModel("acme", "llama", key: "dup")) } == .modelNameTaken("llama"))
      try await f.store.deleteModel(try DeleteModelCommand.validate(tenantID: "acme", model: .name("llama"), force: false, idempotencyKey: "d").get())
      #expect(await registryError { try await f.store.createModel(try createModel("acme", "llama", key: "dup")) } == .modelNameTaken("llama"))
      // Keys are per tenant and method.
      _ = try await f.store.createModel(try createModel("globex", "llama", key: "create-1"))
      _ = try await f.store.createVersion(try createVersion("globex", "llama", "1", key: "create-1"))
    }
  }

  @Test("a call whose connection died after its quota commit, while a retry with its key committed, answers the retry's model and gives its own quota back")
  func lostCommitBehindARetry() async throws {
    try await withStore("registry_lost_commit_retry") { f in
      let command = try createModel("acme", "llama", key: "lost")
      let retry = f.secondReplica()
      let admin = try PostgresPool(
        configuration: PostgresConfiguration(url: f.database.adminURL, minConnections: 0, maxConnections: 1), logger: quietLogger)
      let retried = Mutex<Result<Model, any Error>?>(nil)
      f.quota.afterNextCommit { _ in
        // The first call waits here with its transaction open: the only one of the service role.
        // Its server process goes (as a network cut would), then the client's retry, which its
        // claim on the key was holding back, runs to the end.
        let killed = try? await admin.query(
          """
          SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity
          WHERE datname = current_database() AND usename = 'maas_app' AND state = 'idle in transaction'
          """, [])
        #expect(killed?.count == 1)
        let outcome = await outcome { try await retry.createModel(command) }
        retried.withLock { $0 = outcome }
      }
      let answer = await outcome { try await f.store.createModel(command) }
      await admin.close()
      let retriedModel = try #require(try retried.withLock { $0 }?.get())
      #expect(try answer.get().id == retriedModel.id)
      #expect(try await f.count("models", tenant: "acme") == 1)
      #expect(f.quota.inUse("acme", .models) == 1, "the first call's committed unit was given back")
      #expect(f.quota.count(.committed) == 1)
    }
  }

  @Test("concurrent calls with the same key create one model and take one unit of quota")
  func concurrentSameKey() async throws {
    try await withStore("registry_concurrent_key") { f in
      let command = try createModel("acme", "llama", key: "race")
      let models = try await withThrowingTaskGroup(of: Model.self) { group in
        for _ in 0..<8 { group.addTask { try await f.store.createModel(command) } }
        return try await group.reduce(into: [Model]()) { $0.append($1) }
      }
      #expect(Set(models.map(\.id)).count == 1)
      #expect(try await f.count("models", tenant: "acme") == 1)
      #expect(f.quota.inUse("acme", .models) == 1)
      #expect(f.quota.count(.committed) == 1)
    }
  }

  @Test("over quota is RESOURCE_EXHAUSTED with the quota's message, and nothing is written or held")
  func overQuota() async throws {
    try await withStore("registry_over_quota") { f in
      f.quota.setLimit(.models, 1)
      f.quota.setLimit(.storageBytes, 1000)
      _ = try await f.store.createModel(try createModel("acme", "one"))
      let refused = await registryError { try await f.store.createModel(try createModel("acme", "two")) }
      #expect(refused == .quotaExhausted("models: limit 1, used 1, asked 1"))
      #expect(refused?.category == .resourceExhausted)
      _ = try await f.store.createVersion(try createVersion("acme", "one", "1", size: 600))
      let tooBig = await registryError { try await f.store.createVersion(try createVersion("acme", "one", "2", size: 500)) }
      #expect(tooBig == .quotaExhausted("storage_bytes: limit 1000, used 600, asked 500"))
      // An empty artifact takes no storage, so it fits whatever the usage.
      _ = try await f.store.createVersion(try createVersion("acme", "one", "empty", size: 0))
      #expect(try await f.count("models", tenant: "acme") == 1)
      #expect(try await f.count("versions", tenant: "acme") == 2)
      #expect(f.quota.count(.held) == 0)
      #expect(f.quota.inUse("acme", .storageBytes) == 600)
    }
  }

  @Test("quota unreachable is UNAVAILABLE, nothing is written or remembered, and a retry with the same key succeeds")
  func quotaUnavailable() async throws {
    try await withStore("registry_quota_down") { f in
      f.quota.setUnavailable(true)
      let down = await registryError { try await f.store.createModel(try createModel("acme", "llama", key: "k")) }
      #expect(down?.category == .unavailable)
      #expect(try await f.count("models", tenant: "acme") == 0)
      #expect(try await f.count("idempotency", tenant: "acme") == 0)
      f.quota.setUnavailable(false)
      f.quota.setFailCommits(true)
      let commitFailed = await registryError { try await f.store.createModel(try createModel("acme", "llama", key: "k")) }
      #expect(commitFailed?.category == .unavailable)
      #expect(try await f.count("models", tenant: "acme") == 0)
      #expect(f.quota.inUse("acme", .models) == 0, "the uncommitted hold was released")
      f.quota.setFailCommits(false)
      let model = try await f.store.createModel(try createModel("acme", "llama", key: "k"))
      #expect(model.name == "llama")
      #expect(f.quota.inUse("acme", .models) == 1)
    }
  }

  @Test("deleting gives quota back; a model with versions needs force, which deletes versions and aliases")
  func deleteReleasesQuota() async throws {
    try await withStore("registry_delete") { f in
      _ = try await f.store.createModel(try createModel("acme", "llama"))
      _ = try await f.store.createVersion(try createVersion("acme", "llama", "1", size: 100))
      _ = try await f.store.createVersion(try createVersion("acme", "llama", "2", size: 200))
      _ = try await f.store.setAlias(try SetAliasCommand.validate(
        tenantID: "acme", model: .name("llama"), alias: "prod", version: "2", idempotencyKey: "a").get())
      let plain = try DeleteModelCommand.validate(tenantID: "acme", model: .name("llama"), force: false, idempotencyKey: "d1").get()
      #expect(await registryError { try await f.store.deleteModel(plain) } == .modelHasVersions(2))
      let aliased = try DeleteVersionCommand.validate(tenantID: "acme", model: .name("llama"), version: .version("2"), idempotencyKey: "v2").get()
      #expect(await registryError { try await f.store.deleteVersion(aliased) } == .versionAliased(["prod"]))
      let one = try DeleteVersionCommand.validate(tenantID: "acme", model: .name("llama"), version: .version("1"), idempotencyKey: "v1").get()
      try await f.store.deleteVersion(one)
      #expect(f.quota.inUse("acme", .storageBytes) == 200)
      let force = try DeleteModelCommand.validate(tenantID: "acme", model: .name("llama"), force: true, idempotencyKey: "d2").get()
      try await f.store.deleteModel(force)
      #expect(f.quota.inUse("acme", .storageBytes) == 0)
      #expect(f.quota.inUse("acme", .models) == 0)
      for table in ["models", "versions", "aliases", "pending_releases"] { #expect(try await f.count(table, tenant: "acme") == 0, "\(table)") }
      // The replayed delete answers success again and releases nothing twice.
      try await f.store.deleteModel(force)
    }
  }

  @Test("a release that fails at delete time stays pending until the maintenance loop gives it back")
  func pendingReleases() async throws {
    try await withStore("registry_pending_releases") { f in
      _ = try await f.store.createModel(try createModel("acme", "llama"))
      f.quota.setUnavailable(true)
      try await f.store.deleteModel(try DeleteModelCommand.validate(tenantID: "acme", model: .name("llama"), force: false, idempotencyKey: "d").get())
      #expect(try await f.count("models", tenant: "acme") == 0)
      #expect(try await f.count("pending_releases", tenant: "acme") == 1)
      #expect(f.quota.inUse("acme", .models) == 1)
      #expect(try await f.store.releasePendingReservations(olderThan: .zero) == 0, "still down")
      f.quota.setUnavailable(false)
      #expect(try await f.store.releasePendingReservations(olderThan: .zero) == 1)
      #expect(f.quota.inUse("acme", .models) == 0)
      #expect(try await f.count("pending_releases", tenant: "acme") == 0)
    }
  }

  @Test("versions list newest first across pages, filtered by labels, and a missing model is NOT_FOUND")
  func versionListing() async throws {
    try await withStore("registry_versions_list") { f in
      _ = try await f.store.createModel(try createModel("acme", "llama"))
      _ = try await f.store.createModel(try createModel("acme", "empty"))
      var created: [String] = []
      for index in 0..<9 {
        let labels = index % 2 == 0 ? ["even": "yes"] : [:]
        created.append(try await f.store.createVersion(try createVersion("acme", "llama", "v\(index)", labels: labels)).version)
      }
      func list(_ model: ModelRef, size: Int32, token: String = "", labels: [String: String] = [:]) throws -> ListVersionsQuery {
        try ListVersionsQuery.validate(
          tenantID: "acme", model: model, pageSize: size, pageToken: token, labelSelector: labels, tokens: testTokens
        ).get()
      }
      var seen: [String] = []
      var query = try list(.name("llama"), size: 4)
      while true {
        let page = try await f.store.listVersions(query)
        seen += page.items.map(\.version)
        guard let next = page.next else { break }
        query = try list(.name("llama"), size: 4, token: testTokens.token(after: next, in: query.listing))
      }
      #expect(seen == created.reversed())
      let even = try await f.store.listVersions(try list(.name("llama"), size: 100, labels: ["even": "yes"]))
      #expect(even.items.map(\.version) == ["v8", "v6", "v4", "v2", "v0"])
      let none = try await f.store.listVersions(try list(.name("empty"), size: 10))
      #expect(none.items.isEmpty && none.next == nil)
      #expect(await registryError { try await f.store.listVersions(try list(.name("ghost"), size: 10)) } == .modelNotFound(.name("ghost")))
    }
  }

  @Test("aliases move, resolve, touch the model's update_time, and never shadow a version string")
  func aliases() async throws {
    try await withStore("registry_aliases") { f in
      let model = try await f.store.createModel(try createModel("acme", "llama"))
      let v1 = try await f.store.createVersion(try createVersion("acme", "llama", "1.0"))
      let v2 = try await f.store.createVersion(try createVersion("acme", "llama", "2.0"))
      func set(_ alias: String, _ version: String) throws -> SetAliasCommand {
        try SetAliasCommand.validate(tenantID: "acme", model: .name("llama"), alias: alias, version: version, idempotencyKey: UUID().uuidString).get()
      }
      let prod = try await f.store.setAlias(try set("production", "1.0"))
      #expect(prod.versionID == v1.id)
      let moved = try await f.store.setAlias(try set("production", "2.0"))
      #expect(moved.versionID == v2.id)
      let resolved = try await f.store.version(try VersionQuery.validate(tenantID: "acme", model: .name("llama"), version: .alias("production")).get())
      #expect(resolved == v2)
      let got = try await f.store.alias(try AliasQuery.validate(tenantID: "acme", model: .id(model.id), alias: "production").get())
      #expect(got == moved)
      let reread = try await f.store.model(try ModelQuery.validate(tenantID: "acme", model: .id(model.id)).get())
      #expect(reread.aliases == ["production": "2.0"])
      #expect(reread.updatedAt > model.updatedAt)
      #expect(await registryError { try await f.store.setAlias(try set("1.0", "2.0")) } == .invalidRequest([FieldViolation("alias", .namesAVersion)]))
      #expect(await registryError { try await f.store.setAlias(try set("canary", "9.9")) } == .versionNotFound(.version("9.9")))
      #expect(await registryError { try await f.store.createVersion(try createVersion("acme", "llama", "production")) } == .versionIsAlias("production"))
      try await f.store.deleteAlias(try DeleteAliasCommand.validate(tenantID: "acme", model: .name("llama"), alias: "production", idempotencyKey: "x").get())
      #expect(await registryError { try await f.store.alias(try AliasQuery.validate(tenantID: "acme", model: .name("llama"), alias: "production").get()) }
        == .aliasNotFound("production"))
      let after = try await f.store.model(try ModelQuery.validate(tenantID: "acme", model: .id(model.id)).get())
      #expect(after.aliases.isEmpty)
      #expect(after.updatedAt > reread.updatedAt)
    }
  }

  @Test("a model takes at most 100 aliases; past them a new one is RESOURCE_EXHAUSTED naming the limit, while moving one still works")
  func aliasesAreBounded() async throws {
    try await withStore("registry_alias_bound") { f in
      _ = try await f.store.createModel(try createModel("acme", "llama"))
      _ = try await f.store.createVersion(try createVersion("acme", "llama", "1.0"))
      _ = try await f.store.createVersion(try createVersion("acme", "llama", "2.0"))
      func set(_ alias: String, _ version: String) throws -> SetAliasCommand {
        try SetAliasCommand.validate(tenantID: "acme", model: .name("llama"), alias: alias, version: version, idempotencyKey: UUID().uuidString).get()
      }
      let limit = RegistryFieldRules.maxAliasesPerModel
      for index in 0..<limit { _ = try await f.store.setAlias(try set("a\(index)", "1.0")) }
      let refused = await registryError { try await f.store.setAlias(try set("one-more", "1.0")) }
      #expect(refused == .tooManyAliases(limit))
      #expect(refused?.category == .resourceExhausted)
      #expect(refused?.description.hasPrefix("alias: the model has 100 aliases") == true)
      let moved = try await f.store.setAlias(try set("a7", "2.0"))
      #expect(moved.version == "2.0")
      try await f.store.deleteAlias(try DeleteAliasCommand.validate(tenantID: "acme", model: .name("llama"), alias: "a0", idempotencyKey: "x").get())
      _ = try await f.store.setAlias(try set("one-more", "1.0"))
      let model = try await f.store.model(try ModelQuery.validate(tenantID: "acme", model: .name("llama")).get())
      #expect(model.aliases.count == limit)
    }
  }

  @Test("a model takes at most 1,000 versions, empty ones included; past them a new one is RESOURCE_EXHAUSTED naming the limit, until one is deleted")
  func versionsAreBounded() async throws {
    try await withStore("registry_version_bound") { f in
      _ = try await f.store.createModel(try createModel("acme", "llama"))
      _ = try await f.store.createVersion(try createVersion("acme", "llama", "1.0"))
      let limit = RegistryFieldRules.maxVersionsPerModel
      // All but one written behind the store's back, copies of the first: a thousand calls would
      // only make the test slow.
      _ = try await f.owner.execute(
        """
        INSERT INTO registry.versions (tenant_id, id, model_id, version, artifact_uri, artifact_format, artifact_size_bytes,
          artifact_sha256, labels, reservation_id, create_time)
        SELECT tenant_id, gen_random_uuid(), model_id, 'bulk-' || n, artifact_uri, artifact_format, 0, artifact_sha256, labels,
               NULL, create_time
          FROM registry.versions, generate_series(1, $1::integer) n WHERE tenant_id = 'acme' AND version = '1.0'
        """, [Int32(limit - 2)])
      _ = try await f.store.createVersion(try createVersion("acme", "llama", "last"))
      #expect(try await f.count("versions", tenant: "acme") == limit)

      let refused = await registryError { try await f.store.createVersion(try createVersion("acme", "llama", "one-more")) }
      #expect(refused == .tooManyVersions(limit))
      #expect(refused?.category == .resourceExhausted)
      #expect(refused?.description.hasPrefix("version: the model has 1000 versions") == true)
      // Another model has a bound of its own.
      _ = try await f.store.createModel(try createModel("acme", "mistral"))
      _ = try await f.store.createVersion(try createVersion("acme", "mistral", "one-more"))

      try await f.store.deleteVersion(
        try DeleteVersionCommand.validate(tenantID: "acme", model: .name("llama"), version: .version("bulk-1"), idempotencyKey: "d1").get())
      _ = try await f.store.createVersion(try createVersion("acme", "llama", "one-more"))
    }
  }

  @Test("an archived model keeps its versions readable but takes no new ones")
  func archivedModels() async throws {
    try await withStore("registry_archived") { f in
      _ = try await f.store.createModel(try createModel("acme", "llama"))
      let v1 = try await f.store.createVersion(try createVersion("acme", "llama", "1"))
      _ = try await f.store.updateModel(try UpdateModelCommand.validate(
        tenantID: "acme", model: .name("llama"), update: .init(name: "", description: "", labels: [:], state: .some(.archived)),
        updateMask: ["state"], idempotencyKey: "archive").get())
      #expect(await registryError { try await f.store.createVersion(try createVersion("acme", "llama", "2", size: 5)) } == .modelArchived("llama"))
      #expect(try await f.store.version(try VersionQuery.validate(tenantID: "acme", model: nil, version: .id(v1.id)).get()) == v1)
      #expect(f.quota.count(.held) == 0)
    }
  }

  @Test("renaming onto a taken name is ALREADY_EXISTS; a rename keeps the id, versions and aliases")
  func renames() async throws {
    try await withStore("registry_renames") { f in
      let llama = try await f.store.createModel(try createModel("acme", "llama"))
      _ = try await f.store.createModel(try createModel("acme", "taken"))
      _ = try await f.store.createVersion(try createVersion("acme", "llama", "1"))
      func rename(to name: String) throws -> UpdateModelCommand {
        try UpdateModelCommand.validate(
          tenantID: "acme", model: .id(llama.id), update: .init(name: name, description: "", labels: [:], state: nil),
          updateMask: ["name"], idempotencyKey: UUID().uuidString
        ).get()
      }
      #expect(await registryError { try await f.store.updateModel(try rename(to: "taken")) } == .modelNameTaken("taken"))
      let renamed = try await f.store.updateModel(try rename(to: "llama-2"))
      #expect(renamed.id == llama.id)
      #expect(renamed.createdAt == llama.createdAt)
      let version = try await f.store.version(try VersionQuery.validate(tenantID: "acme", model: .name("llama-2"), version: .version("1")).get())
      #expect(version.modelID == llama.id)
    }
  }
}

@Suite("ListModels pages kept in memory on a real Postgres", .serialized, .timeLimit(.minutes(5)))
struct ListingCacheStoreTests {
  func names(_ store: RegistryStore, _ query: ListModelsQuery) async throws -> [String] {
    try await store.listModels(query).items.map(\.name)
  }

  @Test(
    "a page read again with nothing changed comes from memory, and every kind of change is seen at once; the metrics count both"
  )
  func everyChangeIsSeen() async throws {
    try await withStore("registry_listing_cache") { f in
      let metrics = ServerMetrics()
      RegistryMetrics.register(f.store, in: metrics)
      let all = try listModels("acme")
      _ = try await f.store.createModel(try createModel("acme", "llama"))
      #expect(try await names(f.store, all) == ["llama"])
      #expect(try await names(f.store, all) == ["llama"])
      #expect(f.store.listingCacheHits == 1)

      _ = try await f.store.createModel(try createModel("acme", "mistral"))
      #expect(try await names(f.store, all) == ["llama", "mistral"], "a new model")
      let rename = try UpdateModelCommand.validate(
        tenantID: "acme", model: .name("mistral"), update: .init(name: "mixtral", description: "", labels: [:], state: nil),
        updateMask: ["name"], idempotencyKey: "rename"
      ).get()
      _ = try await f.store.updateModel(rename)
      #expect(try await names(f.store, all) == ["llama", "mixtral"], "a renamed model")

      _ = try await f.store.createVersion(try createVersion("acme", "llama", "1.0"))
      _ = try await f.store.setAlias(
        try SetAliasCommand.validate(tenantID: "acme", model: .name("llama"), alias: "production", version: "1.0", idempotencyKey: "a")
          .get())
      #expect(try await f.store.listModels(all).items.first?.aliases == ["production": "1.0"], "a new alias")
      try await f.store.deleteAlias(
        try DeleteAliasCommand.validate(tenantID: "acme", model: .name("llama"), alias: "production", idempotencyKey: "d").get())
      #expect(try await f.store.listModels(all).items.first?.aliases == [:], "a deleted alias")

      try await f.store.deleteModel(try DeleteModelCommand.validate(tenantID: "acme", model: .name("llama"), force: true, idempotencyKey: "x").get())
      #expect(try await names(f.store, all) == ["mixtral"], "a deleted model")
      #expect(f.store.listingCacheHits == 1, "no page was answered from memory after a change")
      #expect(try await names(f.store, all) == ["mixtral"])
      #expect(f.store.listingCacheHits == 2)
      // Eight listings: two from memory, six read (the first, and one after each change).
      let samples = metricSamples(metrics.render())
      #expect(samples["maas_registry_list_pages_total{source=\"cache\"}"] == 2)
      #expect(samples["maas_registry_list_pages_total{source=\"database\"}"] == 6)
      #expect(samples["maas_registry_list_cache_models"] == 1)
      #expect((samples["maas_registry_list_cache_max_models"] ?? 0) > 0)
    }
  }

  @Test("a change committed through another replica is seen by the next listing of this one")
  func anotherReplicasChangeIsSeen() async throws {
    try await withStore("registry_listing_replicas") { f in
      let other = f.secondReplica()
      let all = try listModels("acme")
      _ = try await f.store.createModel(try createModel("acme", "llama"))
      #expect(try await names(f.store, all) == ["llama"])
      _ = try await other.createModel(try createModel("acme", "gemma"))
      #expect(try await names(f.store, all) == ["gemma", "llama"])
      #expect(f.store.listingCacheHits == 0)
    }
  }

  @Test("a listing asked for after a change sees it, even while other listings of the tenant share version reads")
  func sharedVersionReadsAreFresh() async throws {
    try await withStore("registry_listing_shared_reads") { f in
      let other = f.secondReplica()
      let all = try listModels("acme")
      _ = try await f.store.createModel(try createModel("acme", "m000"))
      // Readers that keep acme's version reads on this replica running, so that a listing asked
      // for after a change usually finds one that started before the change.
      let busy = (0..<4).map { _ in
        Task { [store = f.store] in
          while !Task.isCancelled { _ = try? await store.listModels(all) }
        }
      }
      defer { for reader in busy { reader.cancel() } }
      for round in 1...90 {  // 91 models: the default limit is 100
        let name = String(format: "m%03d", round)
        _ = try await other.createModel(try createModel("acme", name))
        #expect(try await names(f.store, all).last == name, "round \(round): the model created before the listing is on it")
      }
      #expect(f.store.listingCacheHits > 0, "the busy readers were answered from memory")
    }
  }

  @Test("tenants have versions of their own: another tenant's pages are never served, nor moved by its changes")
  func tenantsAreKeptApart() async throws {
    try await withStore("registry_listing_tenants") { f in
      _ = try await f.store.createModel(try createModel("acme", "llama"))
      #expect(try await names(f.store, try listModels("acme")) == ["llama"])
      #expect(try await names(f.store, try listModels("globex")) == [])
      _ = try await f.store.createModel(try createModel("globex", "gemma"))
      #expect(try await names(f.store, try listModels("acme")) == ["llama"])
      #expect(f.store.listingCacheHits == 1, "globex's change left acme's version, and its kept page, as they were")
      #expect(try await names(f.store, try listModels("globex")) == ["gemma"])
    }
  }

  @Test("what a page was rendered into is kept with it: an unchanged page is not rendered again, a changed one is")
  func renderingIsKept() async throws {
    try await withStore("registry_listing_rendering") { f in
      let all = try listModels("acme")
      _ = try await f.store.createModel(try createModel("acme", "llama"))
      var renders = 0
      func rendered() async throws -> [String] {
        try await f.store.listModels(all) { page in
          renders += 1
          return page.items.map(\.name)
        }
      }
      #expect(try await rendered() == ["llama"])
      #expect(try await rendered() == ["llama"])
      #expect(renders == 1, "the kept page's rendering was answered")

      _ = try await f.store.createModel(try createModel("acme", "gemma"))
      #expect(try await rendered() == ["gemma", "llama"])
      #expect(renders == 2, "a changed catalogue is read and rendered again")

      #expect(try await f.store.listModels(all) { $0.items.count } == 2, "a rendering of another type is made for its caller")
      #expect(try await rendered() == ["gemma", "llama"])
      #expect(renders == 3, "only one rendering is kept per page")
      #expect(f.store.listingCacheHits == 3)
    }
  }

  @Test("with the cache off every page is read from the database")
  func cacheOff() async throws {
    try await withStore("registry_listing_off") { f in
      let uncached = RegistryStore(pool: f.app, quota: f.quota, logger: quietLogger, listingCacheModels: 0)
      _ = try await uncached.createModel(try createModel("acme", "llama"))
      #expect(try await names(uncached, try listModels("acme")) == ["llama"])
      #expect(try await names(uncached, try listModels("acme")) == ["llama"])
      #expect(uncached.listingCacheHits == 0)
    }
  }
}

/// What `body` returned or threw.
private func outcome<Value>(_ body: () async throws -> Value) async -> Result<Value, any Error> {
  do { return .success(try await body()) } catch { return .failure(error) }
}
