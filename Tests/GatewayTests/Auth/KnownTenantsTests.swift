import Foundation
import Testing
@testable import Gateway

@Suite("Known tenants: a JWT's tenant is read once per TTL, and only the directory's yes is kept")
struct KnownTenantsTests {
  let now = Date(timeIntervalSince1970: 1_800_000_000)
  let clock: ManualClock
  let directory = CountingDirectory(tenants: ["tenant-a"])

  init() { clock = ManualClock(now) }

  func authenticator(ttl: Duration = .seconds(1)) throws -> Authenticator {
    let settings = JWTSettings(hs256Secret: Array(TestKeys.hs256Secret.utf8), rs256PublicKeyPEM: nil, audience: "maas")
    return Authenticator(
      directory: directory, jwt: try JWTVerifier(settings: settings), knownTenants: KnownTenants(ttl: ttl, clock: clock),
      clock: clock, logger: quietLogger)
  }

  func token(for tenant: String) async throws -> String {
    try await TokenIssuer.hs256(.valid(tenant: tenant, now: now))
  }

  @Test("a busy JWT caller's tenant is read once, and again once the TTL has passed")
  func oneReadPerTTL() async throws {
    let authenticator = try authenticator()
    let token = try await token(for: "tenant-a")
    for _ in 0..<5 {
      #expect(try await authenticator.authenticate(.jwt(token)).tenantID == "tenant-a")
    }
    #expect(directory.tenantQueries == 1)

    clock.advance(by: 0.75)
    _ = try await authenticator.authenticate(.jwt(token))
    #expect(directory.tenantQueries == 1)
    clock.advance(by: 0.25)
    _ = try await authenticator.authenticate(.jwt(token))
    #expect(directory.tenantQueries == 2)
  }

  @Test("a tenant the directory does not know is asked about on every call, and refused on every call")
  func unknownTenantIsNotRemembered() async throws {
    let authenticator = try authenticator()
    let token = try await token(for: "tenant-zz")
    for _ in 0..<3 {
      await #expect(throws: AuthenticationError.unknownTenant) { try await authenticator.authenticate(.jwt(token)) }
    }
    #expect(directory.tenantQueries == 3)
  }

  @Test("a tenant deleted behind the gateway's back is accepted until its TTL passes, then refused")
  func deletedTenant() async throws {
    let authenticator = try authenticator()
    let token = try await token(for: "tenant-a")
    _ = try await authenticator.authenticate(.jwt(token))
    directory.removeTenant("tenant-a")
    clock.advance(by: 0.5)
    #expect(try await authenticator.authenticate(.jwt(token)).tenantID == "tenant-a")
    clock.advance(by: 0.5)
    await #expect(throws: AuthenticationError.unknownTenant) { try await authenticator.authenticate(.jwt(token)) }
  }

  @Test("a clock that steps back does not extend a tenant's time")
  func clockSteppingBack() {
    let known = KnownTenants(ttl: .seconds(1), clock: clock)
    known.insert("tenant-a")
    #expect(known.contains("tenant-a"))
    clock.advance(by: -5)
    #expect(!known.contains("tenant-a"))
  }

  @Test("when full, every tenant is forgotten at once, and the newest kept")
  func capacity() {
    let known = KnownTenants(ttl: .seconds(60), capacity: 2, clock: clock)
    known.insert("tenant-a")
    known.insert("tenant-b")
    known.insert("tenant-b")
    #expect(known.count == 2)
    known.insert("tenant-c")
    #expect(known.count == 1)
    #expect(!known.contains("tenant-a") && !known.contains("tenant-b") && known.contains("tenant-c"))
  }
}
