import Foundation
import GRPCCore
import MaaSRuntime
import MaaSTesting
import Testing
@testable import Gateway

/// A credential store that cannot be asked.
private struct UnreachableDirectory: CredentialDirectory {
  struct Down: Error {}
  func apiKeyCredential(prefix: String) async throws -> StoredApiKeyCredential? { throw Down() }
  func tenantExists(id: String) async throws -> Bool { throw Down() }
  func recordApiKeyUse(keyID: UUID, tenantID: String, at time: Date) async throws { throw Down() }
}

@Suite("The gateway's authentication metrics")
struct AuthenticationMetricsTests {
  @Test("count each credential by kind and outcome, and each cached key lookup by what the cache had")
  func countsOutcomes() async throws {
    let metrics = ServerMetrics()
    let directory = InMemoryDirectory()
    let clock = ManualClock(Date())
    let authenticator = Authenticator(
      directory: directory, jwt: nil, keyCache: ApiKeyCache(ttl: .seconds(10), clock: clock), clock: clock,
      logger: quietLogger, metrics: AuthenticationMetrics(metrics))
    let key = ApiKeyToken.generate()
    _ = directory.add(key, tenant: "tenant-a")
    let revoked = ApiKeyToken.generate()
    _ = directory.add(revoked, tenant: "tenant-a", revoked: clock.now())

    _ = try await authenticator.authenticate(["authorization": "Bearer \(key.text)"])
    _ = try await authenticator.authenticate(["authorization": "Bearer \(key.text)"])
    for metadata: Metadata in [
      ["authorization": "Bearer \(revoked.text)"], [:], ["authorization": "Basic abc"], ["authorization": "Bearer a.b.c"],
    ] {
      _ = await thrownError { try await authenticator.authenticate(metadata) }
    }

    let seen = metricSamples(metrics.render())
    for (series, count) in [
      ("maas_gateway_authentications_total{credential=\"api_key\",outcome=\"ok\"}", 2.0),
      ("maas_gateway_authentications_total{credential=\"api_key\",outcome=\"revoked_api_key\"}", 1),
      ("maas_gateway_authentications_total{credential=\"none\",outcome=\"missing_credential\"}", 1),
      ("maas_gateway_authentications_total{credential=\"none\",outcome=\"malformed_credential\"}", 1),
      ("maas_gateway_authentications_total{credential=\"jwt\",outcome=\"jwt_not_accepted\"}", 1),
      // The first call and the revoked key's read their records; the second call found its fresh.
      ("maas_gateway_api_key_cache_lookups_total{result=\"miss\"}", 2),
      ("maas_gateway_api_key_cache_lookups_total{result=\"fresh\"}", 1),
      ("maas_gateway_api_key_cache_lookups_total{result=\"refresh\"}", 0),
    ] {
      #expect(seen[series] == count, "\(series)")
    }
  }

  @Test("count a credential the store could not be asked about as unavailable")
  func countsUnavailable() async throws {
    let metrics = ServerMetrics()
    let authenticator = Authenticator(
      directory: UnreachableDirectory(), jwt: nil, logger: quietLogger, metrics: AuthenticationMetrics(metrics))
    let error = await thrownError { try await authenticator.authenticate(["authorization": "Bearer \(ApiKeyToken.generate().text)"]) }
    #expect(error is UnreachableDirectory.Down)
    #expect(metricSamples(metrics.render())["maas_gateway_authentications_total{credential=\"api_key\",outcome=\"unavailable\"}"] == 1)
  }
}
