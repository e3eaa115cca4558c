import Crypto
import Foundation
import GRPCCore
import JWTKit
import Synchronization
import Testing
@testable import Gateway
import MaaSRuntime

/// Credentials in memory, for the authentication logic without a database.
final class InMemoryDirectory: CredentialDirectory {
  private let state = Mutex<(keys: [String: StoredApiKeyCredential], tenants: Set<String>, uses: [UUID: Date])>(([:], [], [:]))

  init(tenants: Set<String> = []) {
    state.withLock { $0.tenants = tenants }
  }

  func add(_ token: ApiKeyToken, tenant: String, expire: Date? = nil, revoked: Date? = nil) -> UUID {
    let id = UUID()
    state.withLock {
      $0.keys[token.prefix] = StoredApiKeyCredential(
        keyID: id, tenantID: tenant, digest: token.digest, expireTime: expire, revokeTime: revoked, lastUsedTime: nil)
    }
    return id
  }

  func lastUse(of id: UUID) -> Date? { state.withLock { $0.uses[id] } }

  func apiKeyCredential(prefix: String) async throws -> StoredApiKeyCredential? {
    state.withLock { state in
      state.keys[prefix].map { key in
        var key = key
        key.lastUsedTime = state.uses[key.keyID]
        return key
      }
    }
  }

  func tenantExists(id: String) async throws -> Bool { state.withLock { $0.tenants.contains(id) } }

  func recordApiKeyUse(keyID: UUID, tenantID: String, at time: Date) async throws {
    state.withLock { $0.uses[keyID] = time }
  }
}

@Suite("JWT bearer tokens: what is accepted and every reason for refusal")
struct JWTAuthenticationTests {
  let now = Date()
  let directory = InMemoryDirectory(tenants: ["tenant-a"])

  func authenticator(
    hs256: Bool = true, rs256: Bool = true, audience: String = "maas", clock: (any GatewayClock)? = nil
  ) throws -> Authenticator {
    let settings = JWTSettings(
      hs256Secret: hs256 ? Array(TestKeys.hs256Secret.utf8) : nil, rs256PublicKeyPEM: rs256 ? TestKeys.trustedPublicKey : nil,
      audience: audience)
    return Authenticator(
      directory: directory, jwt: try JWTVerifier(settings: settings), clock: clock ?? ManualClock(now), logger: quietLogger)
  }

  /// Why `token` is refused, or nil when accepted.
  func refusal(_ token: String, by authenticator: Authenticator) async -> AuthenticationError? {
    do {
      _ = try await authenticator.authenticate(.jwt(token))
      return nil
    } catch let error as AuthenticationError {
      return error
    } catch {
      Issue.record("unexpected error \(error)")
      return nil
    }
  }

  @Test("a valid HS256 token and a valid RS256 token authenticate as their tenant_id claim")
  func validTokens() async throws {
    let authenticator = try authenticator()
    for token in [
      try await TokenIssuer.hs256(.valid(tenant: "tenant-a", now: now)),
      try await TokenIssuer.rs256(.valid(tenant: "tenant-a", now: now)),
    ] {
      let tenant = try await authenticator.authenticate(.jwt(token))
      #expect(tenant == AuthenticatedTenant(tenantID: "tenant-a", method: .jwt(subject: "ci")))
    }
  }

  @Test("an audience list that includes the gateway's audience is accepted")
  func audienceList() async throws {
    var claims = TestClaims.valid(tenant: "tenant-a", now: now)
    claims.aud = AudienceClaim(value: ["other", "maas"])
    let tenant = try await authenticator().authenticate(.jwt(try await TokenIssuer.rs256(claims)))
    #expect(tenant.tenantID == "tenant-a")
  }

  @Test("an expired token is refused, and so is one not valid yet")
  func expiry() async throws {
    var expired = TestClaims.valid(tenant: "tenant-a", now: now)
    expired.exp = ExpirationClaim(value: now.addingTimeInterval(-1))
    #expect(await refusal(try await TokenIssuer.hs256(expired), by: try authenticator()) == .tokenExpired)
    #expect(await refusal(try await TokenIssuer.rs256(expired), by: try authenticator()) == .tokenExpired)

    var early = TestClaims.valid(tenant: "tenant-a", now: now)
    early.nbf = NotBeforeClaim(value: now.addingTimeInterval(60))
    #expect(await refusal(try await TokenIssuer.hs256(early), by: try authenticator()) == .tokenNotYetValid)

    // The same token is refused once the clock passes its exp.
    let clock = ManualClock(now)
    let token = try await TokenIssuer.hs256(.valid(tenant: "tenant-a", now: now))
    #expect(await refusal(token, by: try authenticator(clock: clock)) == nil)
    // exp travels in whole seconds, rounded either way: a second past it is past it for sure.
    clock.advance(by: 3601)
    #expect(await refusal(token, by: try authenticator(clock: clock)) == .tokenExpired)
  }

  @Test("a token signed with another key is refused, HS256 and RS256 alike")
  func wrongKey() async throws {
    let claims = TestClaims.valid(tenant: "tenant-a", now: now)
    let forgedHMAC = try await TokenIssuer.hs256(claims, secret: "another-secret-of-at-least-32-bytes!!!!")
    let forgedRSA = try await TokenIssuer.rs256(claims, privateKey: TestKeys.untrustedPrivateKey)
    #expect(await refusal(forgedHMAC, by: try authenticator()) == .invalidSignature)
    #expect(await refusal(forgedRSA, by: try authenticator()) == .invalidSignature)
  }

  @Test("a token whose claims were altered after signing is refused")
  func tamperedPayload() async throws {
    let token = try await TokenIssuer.hs256(.valid(tenant: "tenant-a", now: now))
    let parts = token.split(separator: ".").map(String.init)
    let otherPayload = try TokenIssuer.unsigned(.valid(tenant: "tenant-b", now: now)).split(separator: ".")[1]
    let tampered = "\(parts[0]).\(otherPayload).\(parts[2])"
    #expect(await refusal(tampered, by: try authenticator()) == .invalidSignature)
  }

  @Test("alg none is refused, however it is spelled and whatever signature follows")
  func algNone() async throws {
    let claims = TestClaims.valid(tenant: "tenant-a", now: now)
    for alg in ["none", "None", "NONE"] {
      let token = try TokenIssuer.unsigned(claims, alg: alg)
      #expect(await refusal(token, by: try authenticator()) == .unsupportedAlgorithm(alg))
      let withSignature = token + "c2lnbmF0dXJl"
      #expect(await refusal(withSignature, by: try authenticator()) == .unsupportedAlgorithm(alg))
    }
  }

  @Test("an algorithm without a configured key is refused: no HMAC with the RSA public key as secret")
  func algorithmConfusion() async throws {
    let claims = TestClaims.valid(tenant: "tenant-a", now: now)
    let confused = try await TokenIssuer.hs256(claims, secret: TestKeys.trustedPublicKey)
    #expect(await refusal(confused, by: try authenticator(hs256: false)) == .unsupportedAlgorithm("HS256"))
    let rsa = try await TokenIssuer.rs256(claims)
    #expect(await refusal(rsa, by: try authenticator(rs256: false)) == .unsupportedAlgorithm("RS256"))
  }

  @Test("a token for another audience, or none, is refused")
  func audience() async throws {
    var claims = TestClaims.valid(tenant: "tenant-a", now: now)
    claims.aud = AudienceClaim(value: ["billing"])
    #expect(await refusal(try await TokenIssuer.hs256(claims), by: try authenticator()) == .wrongAudience(expected: "maas"))
    #expect(
      await refusal(try await TokenIssuer.hs256(.valid(tenant: "tenant-a", now: now)), by: try authenticator(audience: "prod"))
        == .wrongAudience(expected: "prod"))
    claims.aud = nil
    #expect(await refusal(try await TokenIssuer.hs256(claims), by: try authenticator()) == .missingClaim("aud"))
  }

  @Test("a token without tenant_id or exp is refused, naming the claim")
  func missingClaims() async throws {
    var noTenant = TestClaims.valid(tenant: "tenant-a", now: now)
    noTenant.tenant_id = nil
    #expect(await refusal(try await TokenIssuer.rs256(noTenant), by: try authenticator()) == .missingClaim("tenant_id"))
    noTenant.tenant_id = ""
    #expect(await refusal(try await TokenIssuer.rs256(noTenant), by: try authenticator()) == .missingClaim("tenant_id"))
    var noExpiry = TestClaims.valid(tenant: "tenant-a", now: now)
    noExpiry.exp = nil
    #expect(await refusal(try await TokenIssuer.rs256(noExpiry), by: try authenticator()) == .missingClaim("exp"))
  }

  @Test("a valid token naming a tenant the gateway does not know is refused")
  func unknownTenant() async throws {
    let token = try await TokenIssuer.rs256(.valid(tenant: "tenant-zz", now: now))
    #expect(await refusal(token, by: try authenticator()) == .unknownTenant)
  }

  @Test("without any JWT key, tokens are refused and API keys still work")
  func noJWTKeys() async throws {
    let authenticator = Authenticator(directory: directory, jwt: nil, clock: ManualClock(now), logger: quietLogger)
    #expect(await refusal(try await TokenIssuer.hs256(.valid(tenant: "tenant-a", now: now)), by: authenticator) == .jwtNotAccepted)
    let key = ApiKeyToken.generate()
    _ = directory.add(key, tenant: "tenant-a")
    #expect(try await authenticator.authenticate(.apiKey(key)).tenantID == "tenant-a")
  }

  @Test("garbage in the JWT's segments is a malformed token; a payload is read only once its signature holds")
  func garbage() async throws {
    #expect(await refusal("e30.e30.e30", by: try authenticator()) == .malformedToken("the header has no alg"))
    #expect(await refusal("aGVsbG8.e30.e30", by: try authenticator()) == .malformedToken("the header does not decode"))
    let header = Base64URL.encode(Array(#"{"alg":"HS256"}"#.utf8))
    let notJSON = Base64URL.encode(Array("not json".utf8))
    // Unsigned garbage is refused for its signature, before its payload is looked at.
    #expect(await refusal("\(header).\(notJSON).c2ln", by: try authenticator()) == .invalidSignature)
    // Signed with the gateway's own key, a payload that is not JSON is a malformed token.
    let signature = HMAC<SHA256>.authenticationCode(
      for: Array("\(header).\(notJSON)".utf8), using: SymmetricKey(data: Array(TestKeys.hs256Secret.utf8)))
    let signed = await refusal("\(header).\(notJSON).\(Base64URL.encode(Array(signature)))", by: try authenticator())
    guard case .malformedToken = signed else {
      Issue.record("a signed payload that is not JSON: expected a malformed token, got \(String(describing: signed))")
      return
    }
  }
}

@Suite("API keys: verification against their records")
struct ApiKeyAuthenticationTests {
  let now = Date()

  @Test("a key authenticates as its tenant; its last use is recorded at most once a minute")
  func validKey() async throws {
    let directory = InMemoryDirectory()
    let clock = ManualClock(now)
    let authenticator = Authenticator(directory: directory, jwt: nil, clock: clock, logger: quietLogger)
    let token = ApiKeyToken.generate()
    let id = directory.add(token, tenant: "tenant-a")
    let tenant = try await authenticator.authenticate(["authorization": "Bearer \(token.text)"])
    #expect(tenant == AuthenticatedTenant(tenantID: "tenant-a", method: .apiKey(id: id)))
    #expect(directory.lastUse(of: id) == now)
    clock.advance(by: 30)
    _ = try await authenticator.authenticate(.apiKey(token))
    #expect(directory.lastUse(of: id) == now)
    clock.advance(by: 31)
    _ = try await authenticator.authenticate(.apiKey(token))
    #expect(directory.lastUse(of: id) == now.addingTimeInterval(61))
  }

  @Test("an unknown key, a wrong secret under a known prefix, a revoked key and an expired key are refused")
  func refusals() async throws {
    let directory = InMemoryDirectory()
    let clock = ManualClock(now)
    let authenticator = Authenticator(directory: directory, jwt: nil, clock: clock, logger: quietLogger)
    let known = ApiKeyToken.generate()
    _ = directory.add(known, tenant: "tenant-a")
    let revoked = ApiKeyToken.generate()
    _ = directory.add(revoked, tenant: "tenant-a", revoked: now.addingTimeInterval(-10))
    let expiring = ApiKeyToken.generate()
    _ = directory.add(expiring, tenant: "tenant-a", expire: now.addingTimeInterval(60))

    func refusal(_ token: ApiKeyToken) async -> AuthenticationError? {
      await thrownError { try await authenticator.authenticate(.apiKey(token)) } as? AuthenticationError
    }
    #expect(await refusal(ApiKeyToken.generate()) == .unknownApiKey)
    let wrongSecret = try #require(ApiKeyToken(parsing: known.displayPrefix + "_" + ApiKeyToken.generate().secret))
    #expect(await refusal(wrongSecret) == .unknownApiKey)
    #expect(await refusal(revoked) == .revokedApiKey)
    #expect(await refusal(expiring) == nil)
    clock.advance(by: 60)
    #expect(await refusal(expiring) == .expiredApiKey)
  }

  @Test("no authorization metadata is a missing credential")
  func missing() async {
    let authenticator = Authenticator(directory: InMemoryDirectory(), jwt: nil, logger: quietLogger)
    let error = await thrownError { try await authenticator.authenticate([:]) }
    #expect(error as? AuthenticationError == .missingCredential)
  }
}
