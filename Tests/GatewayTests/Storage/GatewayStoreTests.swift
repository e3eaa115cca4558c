import Foundation
import Postgres
import PostgresMigrations
import Testing
@testable import Gateway
import MaaSRuntime

/// The `gateway` schema on a real Postgres, as the service role sees it.
@Suite("Tenants and API keys in Postgres", .serialized, .timeLimit(.minutes(5)))
struct GatewayStoreTests {
  @Test("an API key is stored only as its SHA-256: the secret appears nowhere in the table")
  func keysStoredHashed() async throws {
    try await withGatewayDatabase("gateway_store_hashed") { db in
      let tenant = try await db.tenant("acme")
      let (record, token) = try await db.keyAdministration().createApiKey(tenantID: tenant.id, name: "ci")
      let key = try #require(token)
      #expect(record.displayPrefix == key.displayPrefix)

      let rows = try await db.owner.query("SELECT row_to_json(k)::text AS row FROM gateway.api_keys k")
      #expect(rows.count == 1)
      let row = try rows[0].decode(String.self, column: "row")
      #expect(!row.contains(key.secret))
      #expect(!row.contains(key.text))
      // Nor in any encoding of the secret's bytes: hex of the secret would be there too.
      let secretHex = Digest256.hex(Base64URL.decode(key.secret)!)
      #expect(!row.contains(secretHex))
      let stored = try await db.owner.query("SELECT secret_sha256, prefix FROM gateway.api_keys")
      #expect(Array(try stored[0].decode(Data.self, column: "secret_sha256")) == key.digest.bytes)
      #expect(try stored[0].decode(String.self, column: "prefix") == key.prefix)
    }
  }

  @Test("a key authenticates until it is revoked; revoking again returns it unchanged")
  func revoke() async throws {
    try await withGatewayDatabase("gateway_store_revoke") { db in
      let tenant = try await db.tenant("acme")
      let clock = ManualClock()
      let admin = db.keyAdministration(clock: clock)
      let (record, token) = try await admin.createApiKey(tenantID: tenant.id)
      let authenticator = Authenticator(directory: db.store, jwt: nil, clock: clock, logger: quietLogger)
      let caller = try await authenticator.authenticate(.apiKey(try #require(token)))
      #expect(caller == AuthenticatedTenant(tenantID: tenant.id, method: .apiKey(id: record.id)))

      let revoked = try await admin.revokeApiKey(tenantID: tenant.id, keyID: record.id.uuidString)
      let revokeTime = try #require(revoked.revokeTime)
      let refusal = await thrownError { try await authenticator.authenticate(.apiKey(token!)) }
      #expect(refusal as? AuthenticationError == .revokedApiKey)

      clock.advance(by: 120)
      let again = try await admin.revokeApiKey(tenantID: tenant.id, keyID: record.id.uuidString.lowercased())
      #expect(again.revokeTime == revokeTime)
      let otherID = UUID().uuidString
      let unknown = await thrownError { try await admin.revokeApiKey(tenantID: tenant.id, keyID: otherID) }
      #expect(unknown as? GatewayError == .apiKeyNotFound(otherID))
      let garbage = await thrownError { try await admin.revokeApiKey(tenantID: tenant.id, keyID: "not-a-uuid") }
      #expect(garbage as? GatewayError == .apiKeyNotFound("not-a-uuid"))
    }
  }

  @Test("a key with an expiry works until then and is refused after; an expiry in the past is refused")
  func expiry() async throws {
    try await withGatewayDatabase("gateway_store_expiry") { db in
      let tenant = try await db.tenant("acme")
      let clock = ManualClock()
      let admin = db.keyAdministration(clock: clock)
      let (record, token) = try await admin.createApiKey(tenantID: tenant.id, expireTime: clock.now().addingTimeInterval(3600))
      #expect(record.expireTime != nil)
      let authenticator = Authenticator(directory: db.store, jwt: nil, clock: clock, logger: quietLogger)
      #expect(try await authenticator.authenticate(.apiKey(token!)).tenantID == tenant.id)
      // Postgres keeps microseconds: a hair past the expiry, whichever way it was rounded.
      clock.advance(by: 3600.001)
      let refusal = await thrownError { try await authenticator.authenticate(.apiKey(token!)) }
      #expect(refusal as? AuthenticationError == .expiredApiKey)

      let past = await thrownError { try await admin.createApiKey(tenantID: tenant.id, expireTime: clock.now()) }
      #expect(past as? GatewayError == .invalidRequest([FieldViolation("expire_time", .inPast)]))
    }
  }

  @Test("row-level security shows the service role one tenant's rows, whatever the query forgets")
  func rowLevelSecurity() async throws {
    try await withGatewayDatabase("gateway_store_rls") { db in
      let acme = try await db.tenant("acme")
      let globex = try await db.tenant("globex")
      let admin = db.keyAdministration()
      let (acmeKey, _) = try await admin.createApiKey(tenantID: acme.id)
      let (globexKey, _) = try await admin.createApiKey(tenantID: globex.id)

      // No tenant filter at all: still one tenant's rows.
      let seen = try await db.app.transaction(tenant: acme.id) { tx in
        try await tx.query("SELECT key_id FROM gateway.api_keys").map { try $0.decode(UUID.self, column: "key_id") }
      }
      #expect(seen == [acmeKey.id])
      let tenants = try await db.app.transaction(tenant: acme.id) { tx in
        try await tx.query("SELECT name FROM gateway.tenants").map { try $0.decode(String.self, column: "name") }
      }
      #expect(tenants == ["acme"])
      let anonymous = try await db.app.query("SELECT count(*)::bigint FROM gateway.api_keys")
      #expect(try anonymous[0].decode(Int64.self, at: 0) == 0)

      // Writing another tenant's row is refused by the policy's check.
      let smuggled = await thrownError {
        try await db.app.transaction(tenant: acme.id) { tx in
          try await tx.execute(
            "INSERT INTO gateway.api_keys (key_id, tenant_id, prefix, secret_sha256, create_time) VALUES ($1, $2, 'zzzzzzzz', $3, now())",
            [UUID(), globex.id, Data(repeating: 0, count: 32)])
        }
      }
      #expect((smuggled as? PostgresError)?.sqlState == "42501")

      // Through the store: another tenant's key answers like one that does not exist.
      let crossRevoke = await thrownError { try await admin.revokeApiKey(tenantID: acme.id, keyID: globexKey.id.uuidString) }
      #expect(crossRevoke as? GatewayError == .apiKeyNotFound(globexKey.id.uuidString))
      let globexKeys = try await admin.listApiKeys(tenantID: globex.id, pageSize: 10, includeRevoked: true)
      #expect(globexKeys.keys.map(\.id) == [globexKey.id])
      #expect(globexKeys.keys[0].revokeTime == nil)

      // And the service role may not delete what it sees.
      let deletion = await thrownError {
        try await db.app.transaction(tenant: acme.id) { tx in try await tx.execute("DELETE FROM gateway.api_keys") }
      }
      #expect((deletion as? PostgresError)?.sqlState == "42501")
    }
  }

  @Test("keys are listed newest first, a page at a time, revoked ones only when asked for")
  func listKeys() async throws {
    try await withGatewayDatabase("gateway_store_list_keys") { db in
      let tenant = try await db.tenant("acme")
      let clock = ManualClock()
      let admin = db.keyAdministration(clock: clock)
      var created: [ApiKeyRecord] = []
      for index in 0..<5 {
        created.append(try await admin.createApiKey(tenantID: tenant.id, name: "key-\(index)").key)
        clock.advance(by: 1)
      }
      _ = try await admin.revokeApiKey(tenantID: tenant.id, keyID: created[3].id.uuidString)

      var names: [String] = []
      var token = ""
      repeat {
        let page = try await admin.listApiKeys(tenantID: tenant.id, pageSize: 2, pageToken: token, includeRevoked: true)
        #expect(page.keys.count <= 2)
        names += page.keys.map(\.name)
        token = page.nextPageToken
      } while !token.isEmpty
      #expect(names == ["key-4", "key-3", "key-2", "key-1", "key-0"])

      let active = try await admin.listApiKeys(tenantID: tenant.id, pageSize: 10)
      #expect(active.keys.map(\.name) == ["key-4", "key-2", "key-1", "key-0"])
      #expect(active.nextPageToken.isEmpty)

      // A token of the listing with revoked keys is not one of the listing without.
      let first = try await admin.listApiKeys(tenantID: tenant.id, pageSize: 1, includeRevoked: true)
      let mixed = await thrownError { try await admin.listApiKeys(tenantID: tenant.id, pageSize: 1, pageToken: first.nextPageToken) }
      #expect(mixed as? GatewayError == .invalidRequest([FieldViolation("page_token", .notFromThisListing)]))
      let bad = await thrownError { try await admin.listApiKeys(tenantID: tenant.id, pageSize: 0, pageToken: "%%%") }
      #expect(bad as? GatewayError == .invalidRequest([FieldViolation("page_size", .outOfRange(1...1000))]))
      let unknown = await thrownError { try await admin.listApiKeys(tenantID: "nobody", pageSize: 1) }
      #expect(unknown as? GatewayError == .tenantNotFound(field: "tenant_id", value: "nobody"))
    }
  }

  @Test("tenants have unique names and are listed by name, paged and filtered by prefix, across tenants")
  func tenants() async throws {
    try await withGatewayDatabase("gateway_store_tenants") { db in
      for name in ["delta", "acme", "acme-eu", "beta", "acme-us"] { try await db.tenant(name) }
      let duplicate = try await db.store.insertTenant(
        Tenant(id: "other-id", name: "acme", displayName: "", createTime: Date()), idempotency: nil)
      #expect(duplicate == .nameTaken)
      let admin = db.keyAdministration()
      #expect(try await admin.tenant(named: "beta").id == "tenant-beta")
      #expect(try await admin.tenant(id: "tenant-beta").name == "beta")
      let missing = await thrownError { try await admin.tenant(named: "zeta") }
      #expect(missing as? GatewayError == .tenantNotFound(field: "name", value: "zeta"))

      var names: [String] = []
      var token = ""
      repeat {
        let page = try await admin.listTenants(pageSize: 2, pageToken: token)
        names += page.tenants.map(\.name)
        token = page.nextPageToken
      } while !token.isEmpty
      #expect(names == ["acme", "acme-eu", "acme-us", "beta", "delta"])
      let acmes = try await admin.listTenants(pageSize: 10, namePrefix: "acme-")
      #expect(acmes.tenants.map(\.name) == ["acme-eu", "acme-us"])
    }
  }

  @Test("CreateApiKey retried with its idempotency key returns the same key without the secret")
  func idempotentKeyCreation() async throws {
    try await withGatewayDatabase("gateway_store_key_retry") { db in
      let tenant = try await db.tenant("acme")
      let admin = db.keyAdministration()
      let first = try await admin.createApiKey(tenantID: tenant.id, name: "ci", idempotencyKey: "k1")
      #expect(first.token != nil)
      let retry = try await admin.createApiKey(tenantID: tenant.id, name: "ci", idempotencyKey: "k1")
      #expect(retry.key == first.key)
      #expect(retry.token == nil)
      let other = await thrownError { try await admin.createApiKey(tenantID: tenant.id, name: "cd", idempotencyKey: "k1") }
      #expect(other as? GatewayError == .invalidRequest([FieldViolation("idempotency_key", .reusedForDifferentRequest)]))
      let count = try await db.owner.query("SELECT count(*)::bigint FROM gateway.api_keys")
      #expect(try count[0].decode(Int64.self, at: 0) == 1)
      let unknownTenant = await thrownError { try await admin.createApiKey(tenantID: "nobody") }
      #expect(unknownTenant as? GatewayError == .tenantNotFound(field: "tenant_id", value: "nobody"))
    }
  }

  @Test("a key's last use is written at most once a minute")
  func lastUse() async throws {
    try await withGatewayDatabase("gateway_store_last_use") { db in
      let tenant = try await db.tenant("acme")
      let start = Date(timeIntervalSince1970: 1_800_000_000)
      let clock = ManualClock(start)
      let (record, token) = try await db.keyAdministration(clock: clock).createApiKey(tenantID: tenant.id)
      let authenticator = Authenticator(directory: db.store, jwt: nil, clock: clock, logger: quietLogger)
      func lastUse() async throws -> Date? {
        try await db.owner.query("SELECT last_used_time FROM gateway.api_keys WHERE key_id = $1", [record.id])[0]
          .decode(Date?.self, column: "last_used_time")
      }
      #expect(try await lastUse() == nil)
      _ = try await authenticator.authenticate(.apiKey(token!))
      #expect(try await lastUse() == start)
      clock.advance(by: 59)
      _ = try await authenticator.authenticate(.apiKey(token!))
      #expect(try await lastUse() == start)
      clock.advance(by: 1)
      _ = try await authenticator.authenticate(.apiKey(token!))
      #expect(try await lastUse() == start.addingTimeInterval(60))
    }
  }

  @Test("the migrations apply once and re-applying them changes nothing")
  func migrations() async throws {
    try await withGatewayDatabase("gateway_store_migrations") { db in
      let report = try await Migrator(pool: db.owner, logger: quietLogger).apply(GatewaySchema.plan(serviceRole: "maas_app"))
      #expect(report.applied.isEmpty)
      #expect(report.version == 2)
    }
  }
}
