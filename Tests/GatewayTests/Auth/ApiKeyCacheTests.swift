import Foundation
import Synchronization
import Testing
@testable import Gateway

/// Keys and tenants in memory that count how often they are looked up and keys' use recorded.
final class CountingDirectory: CredentialDirectory {
  private struct State {
    var keys: [String: StoredApiKeyCredential] = [:]
    var tenants: Set<String> = []
    var lookups = 0
    var tenantQueries = 0
    var usesRecorded = 0
  }

  private let state = Mutex(State())

  init(tenants: Set<String> = []) {
    state.withLock { $0.tenants = tenants }
  }

  var lookups: Int { state.withLock { $0.lookups } }
  var tenantQueries: Int { state.withLock { $0.tenantQueries } }
  var usesRecorded: Int { state.withLock { $0.usesRecorded } }

  /// Deletes the tenant behind this gateway's back (as SQL by hand would).
  func removeTenant(_ id: String) {
    _ = state.withLock { $0.tenants.remove(id) }
  }

  @discardableResult
  func add(_ token: ApiKeyToken, tenant: String = "tenant-a", expire: Date? = nil) -> UUID {
    let id = UUID()
    state.withLock {
      $0.keys[token.prefix] = StoredApiKeyCredential(
        keyID: id, tenantID: tenant, digest: token.digest, expireTime: expire, revokeTime: nil, lastUsedTime: nil)
    }
    return id
  }

  /// Revokes the key behind this gateway's back (as another replica or SQL would).
  func revoke(_ token: ApiKeyToken, at time: Date) {
    state.withLock { $0.keys[token.prefix]?.revokeTime = time }
  }

  func apiKeyCredential(prefix: String) async throws -> StoredApiKeyCredential? {
    state.withLock { state in
      state.lookups += 1
      return state.keys[prefix]
    }
  }

  func tenantExists(id: String) async throws -> Bool {
    state.withLock { state in
      state.tenantQueries += 1
      return state.tenants.contains(id)
    }
  }

  func recordApiKeyUse(keyID: UUID, tenantID: String, at time: Date) async throws {
    state.withLock { state in
      state.usesRecorded += 1
      for (prefix, key) in state.keys where key.keyID == keyID { state.keys[prefix]?.lastUsedTime = time }
    }
  }
}

@Suite("The API key cache: one lookup per key per TTL, revocation through the same gateway at once")
struct ApiKeyCacheTests {
  let clock = ManualClock(Date(timeIntervalSince1970: 1_800_000_000))
  let directory = CountingDirectory()

  func authenticator(ttl: Duration = .seconds(1), capacity: Int = 100) -> (Authenticator, ApiKeyCache) {
    let cache = ApiKeyCache(ttl: ttl, capacity: capacity, clock: clock)
    return (Authenticator(directory: directory, jwt: nil, keyCache: cache, clock: clock, logger: quietLogger), cache)
  }

  @Test("a key's record is read once per TTL: calls within it use the cached record, the first after it reads again")
  func oneLookupPerTTL() async throws {
    let (authenticator, _) = authenticator()
    let token = ApiKeyToken.generate()
    let id = directory.add(token)
    for _ in 0..<5 {
      let caller = try await authenticator.authenticate(.apiKey(token))
      #expect(caller == AuthenticatedTenant(tenantID: "tenant-a", method: .apiKey(id: id)))
      clock.advance(by: 0.1)
    }
    #expect(directory.lookups == 1)
    clock.advance(by: 0.5)
    _ = try await authenticator.authenticate(.apiKey(token))
    #expect(directory.lookups == 2)
  }

  @Test("a cached record still refuses a wrong secret under its prefix, and an expiry that passes while it is cached")
  func cachedRecordIsStillChecked() async throws {
    let (authenticator, _) = authenticator(ttl: .seconds(10))
    let token = ApiKeyToken.generate()
    directory.add(token, expire: clock.now().addingTimeInterval(5))
    _ = try await authenticator.authenticate(.apiKey(token))
    let forged = try #require(ApiKeyToken(parsing: String(token.text.prefix(14)) + ApiKeyToken.generate().secret))
    let wrongSecret = await thrownError { try await authenticator.authenticate(.apiKey(forged)) }
    #expect(wrongSecret as? AuthenticationError == .unknownApiKey)
    clock.advance(by: 6)
    let expired = await thrownError { try await authenticator.authenticate(.apiKey(token)) }
    #expect(expired as? AuthenticationError == .expiredApiKey)
    #expect(directory.lookups == 1)
  }

  @Test("a key revoked elsewhere is accepted until the TTL passes, then refused")
  func revokedElsewhere() async throws {
    let (authenticator, _) = authenticator()
    let token = ApiKeyToken.generate()
    directory.add(token)
    _ = try await authenticator.authenticate(.apiKey(token))
    directory.revoke(token, at: clock.now())
    clock.advance(by: 0.5)
    _ = try await authenticator.authenticate(.apiKey(token))
    clock.advance(by: 0.5)
    let refusal = await thrownError { try await authenticator.authenticate(.apiKey(token)) }
    #expect(refusal as? AuthenticationError == .revokedApiKey)
  }

  @Test("a key invalidated after its revocation (what revoking through this gateway does) is refused at the next call")
  func revokedHere() async throws {
    let (authenticator, cache) = authenticator(ttl: .seconds(10))
    let token = ApiKeyToken.generate()
    let id = directory.add(token)
    _ = try await authenticator.authenticate(.apiKey(token))
    directory.revoke(token, at: clock.now())
    cache.invalidate(keyID: id)
    let refusal = await thrownError { try await authenticator.authenticate(.apiKey(token)) }
    #expect(refusal as? AuthenticationError == .revokedApiKey)
  }

  @Test("what a lookup in flight read before an invalidation is not kept")
  func lookupInFlightDuringInvalidation() throws {
    let cache = ApiKeyCache(ttl: .seconds(10), clock: clock)
    let token = ApiKeyToken.generate()
    let record = StoredApiKeyCredential(
      keyID: UUID(), tenantID: "tenant-a", digest: token.digest, expireTime: nil, revokeTime: nil, lastUsedTime: nil)
    guard case .miss(let ticket) = cache.lookup(prefix: token.prefix) else { Issue.record("a hit in an empty cache"); return }
    cache.invalidate(keyID: record.keyID)
    cache.store(record, prefix: token.prefix, ticket: ticket)
    guard case .miss(let next) = cache.lookup(prefix: token.prefix) else { Issue.record("a stale record was kept"); return }
    cache.store(record, prefix: token.prefix, ticket: next)
    guard case .fresh = cache.lookup(prefix: token.prefix) else { Issue.record("a record read after it was not kept"); return }
  }

  @Test("an unknown prefix is asked of the directory once per TTL, and refused every time")
  func unknownKeysAreRememberedAsAbsent() async throws {
    let (authenticator, cache) = authenticator()
    let stranger = ApiKeyToken.generate()
    for _ in 0..<3 {
      let refusal = await thrownError { try await authenticator.authenticate(.apiKey(stranger)) }
      #expect(refusal as? AuthenticationError == .unknownApiKey)
    }
    #expect(directory.lookups == 1)
    #expect(cache.count == 0 && cache.absentCount == 1)
    clock.advance(by: 1)
    _ = await thrownError { try await authenticator.authenticate(.apiKey(stranger)) }
    #expect(directory.lookups == 2)
  }

  @Test("a prefix remembered as absent is forgotten when a key is created under it")
  func createdKeyIsNotAbsent() async throws {
    let (authenticator, cache) = authenticator(ttl: .seconds(10))
    let token = ApiKeyToken.generate()
    _ = await thrownError { try await authenticator.authenticate(.apiKey(token)) }
    directory.add(token)
    cache.forgetAbsent(prefix: token.prefix)
    #expect(try await authenticator.authenticate(.apiKey(token)).tenantID == "tenant-a")
  }

  @Test("made-up prefixes beyond its capacity are all forgotten at once, and never push out a real key's record")
  func absentPrefixesAreBoundedApart() async throws {
    let (authenticator, cache) = authenticator(ttl: .seconds(10), capacity: 3)
    let token = ApiKeyToken.generate()
    directory.add(token)
    _ = try await authenticator.authenticate(.apiKey(token))
    for _ in 0..<3 { _ = await thrownError { try await authenticator.authenticate(.apiKey(ApiKeyToken.generate())) } }
    #expect(cache.absentCount == 3)
    _ = await thrownError { try await authenticator.authenticate(.apiKey(ApiKeyToken.generate())) }
    #expect(cache.absentCount == 1)
    #expect(cache.count == 1)
    let lookups = directory.lookups
    _ = try await authenticator.authenticate(.apiKey(token))
    #expect(directory.lookups == lookups, "the real key's record was pushed out")
  }

  @Test("a busy key's last use is recorded once a minute, not once per call, while its record is cached")
  func lastUseOncePerMinute() async throws {
    let (authenticator, _) = authenticator(ttl: .seconds(10))
    let token = ApiKeyToken.generate()
    directory.add(token)
    try await withThrowingTaskGroup(of: Void.self) { group in
      for _ in 0..<20 { group.addTask { _ = try await authenticator.authenticate(.apiKey(token)) } }
      try await group.waitForAll()
    }
    #expect(directory.usesRecorded == 1)
    clock.advance(by: 30)
    _ = try await authenticator.authenticate(.apiKey(token))
    #expect(directory.usesRecorded == 1)
    clock.advance(by: 31)
    _ = try await authenticator.authenticate(.apiKey(token))
    #expect(directory.usesRecorded == 2)
  }

  @Test("at most its capacity is kept, lapsed entries going first")
  func bounded() async throws {
    let (authenticator, cache) = authenticator(ttl: .seconds(1), capacity: 3)
    let tokens = (0..<3).map { _ in ApiKeyToken.generate() }
    for token in tokens {
      directory.add(token)
      _ = try await authenticator.authenticate(.apiKey(token))
    }
    #expect(cache.count == 3)
    clock.advance(by: 2)
    let late = ApiKeyToken.generate()
    directory.add(late)
    _ = try await authenticator.authenticate(.apiKey(late))
    #expect(cache.count == 1)
    for _ in 0..<5 {
      let token = ApiKeyToken.generate()
      directory.add(token)
      _ = try await authenticator.authenticate(.apiKey(token))
    }
    #expect(cache.count == 3)
  }

  @Test("a clock that steps back does not make an entry last longer")
  func clockSteppingBack() async throws {
    let (authenticator, _) = authenticator()
    let token = ApiKeyToken.generate()
    directory.add(token)
    _ = try await authenticator.authenticate(.apiKey(token))
    clock.advance(by: -60)
    _ = try await authenticator.authenticate(.apiKey(token))
    #expect(directory.lookups == 2)
  }

  /// A cache with a 1 s TTL holding one key's record, read now.
  func cachedRecord() throws -> (ApiKeyCache, ApiKeyToken, StoredApiKeyCredential) {
    let cache = ApiKeyCache(ttl: .seconds(1), clock: clock)
    let token = ApiKeyToken.generate()
    let record = StoredApiKeyCredential(
      keyID: UUID(), tenantID: "tenant-a", digest: token.digest, expireTime: nil, revokeTime: nil, lastUsedTime: nil)
    guard case .miss(let ticket) = cache.lookup(prefix: token.prefix) else { throw CacheSetupError() }
    cache.store(record, prefix: token.prefix, ticket: ticket)
    return (cache, token, record)
  }

  struct CacheSetupError: Error {}

  @Test("past three quarters of its TTL one caller is asked to read the key again, every call goes on with the record, and the new read starts a new TTL")
  func refreshAhead() throws {
    let (cache, token, record) = try cachedRecord()
    clock.advance(by: 0.5)
    #expect(cache.lookup(prefix: token.prefix) == .fresh(record))
    clock.advance(by: 0.3)
    guard case .refresh(let used, let ticket) = cache.lookup(prefix: token.prefix) else { Issue.record("no refresh asked"); return }
    #expect(used == record)
    #expect(cache.lookup(prefix: token.prefix) == .fresh(record), "one refresh at a time")
    var renewed = record
    renewed.tenantID = "tenant-renewed"
    cache.store(renewed, prefix: token.prefix, ticket: ticket)
    clock.advance(by: 0.4)
    #expect(cache.lookup(prefix: token.prefix) == .fresh(renewed), "1.2 s after the first read, 0.4 s after the second")
  }

  @Test("a refresh that fails keeps the record for its TTL and lets a later caller try again; one that finds the key gone drops it")
  func refreshOutcomes() throws {
    let (cache, token, _) = try cachedRecord()
    clock.advance(by: 0.8)
    guard case .refresh(_, let failed) = cache.lookup(prefix: token.prefix) else { Issue.record("no refresh asked"); return }
    cache.refreshed(prefix: token.prefix, ticket: failed, found: true)
    guard case .refresh(_, let gone) = cache.lookup(prefix: token.prefix) else { Issue.record("no second try"); return }
    cache.refreshed(prefix: token.prefix, ticket: gone, found: false)
    guard case .miss = cache.lookup(prefix: token.prefix) else { Issue.record("a deleted key's record was kept"); return }
  }

  @Test("a busy key never waits for the directory: calls go on while one read in the background renews its record, and a revocation it reads is refused")
  func busyKeyIsRenewedInTheBackground() async throws {
    let (authenticator, _) = authenticator()
    let token = ApiKeyToken.generate()
    directory.add(token)
    _ = try await authenticator.authenticate(.apiKey(token))
    clock.advance(by: 0.8)
    _ = try await authenticator.authenticate(.apiKey(token))
    // The renewal runs apart from the call: wait for it (bounded), not for a time.
    for _ in 0..<500 where directory.lookups < 2 { try await Task.sleep(for: .milliseconds(10)) }
    #expect(directory.lookups == 2)
    clock.advance(by: 0.4)
    _ = try await authenticator.authenticate(.apiKey(token))
    #expect(directory.lookups == 2, "1.2 s after the first read the renewed record served")

    directory.revoke(token, at: clock.now())
    clock.advance(by: 0.4)
    _ = try await authenticator.authenticate(.apiKey(token))
    for _ in 0..<500 where directory.lookups < 3 { try await Task.sleep(for: .milliseconds(10)) }
    #expect(directory.lookups == 3)
    let refusal = await thrownError { try await authenticator.authenticate(.apiKey(token)) }
    #expect(refusal as? AuthenticationError == .revokedApiKey)
  }
}
