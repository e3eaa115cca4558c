import Foundation
import MaaSRuntime
import Testing
@testable import Gateway

@Suite("Gateway configuration: MAAS_GATEWAY_* variables")
struct GatewaySettingsTests {
  func read(_ environment: [String: String]) -> (GatewaySettings, [ConfigurationProblem]) {
    var reader = EnvironmentReader(environment: environment)
    let settings = GatewaySettings.read(prefix: "MAAS_GATEWAY", from: &reader)
    return (settings, reader.problems)
  }

  @Test("nothing set: the documented defaults, no admin token, no JWT keys")
  func defaults() {
    let (settings, problems) = read([:])
    #expect(problems.isEmpty)
    #expect(settings == GatewaySettings())
    #expect(settings.adminToken == nil)
    #expect(!settings.jwt.acceptsTokens)
    #expect(settings.jwt.audience == "maas")
    #expect(settings.registryTarget == "127.0.0.1:50052")
    #expect(settings.quotaTarget == "127.0.0.1:50054")
    #expect(settings.upstream.defaultTimeout == .seconds(10))
    #expect(settings.apiKeyCacheTTL == .seconds(1))
    #expect(GatewayService.definition.defaultPort == 50051)
  }

  @Test("every variable is read")
  func everything() throws {
    let keyFile = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-settings-\(UUID()).pem")
    try TestKeys.trustedPublicKey.write(to: keyFile, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: keyFile) }
    let (settings, problems) = read([
      "MAAS_GATEWAY_ADMIN_TOKEN": "an-admin-token-long-enough",
      "MAAS_GATEWAY_JWT_HS256_SECRET": TestKeys.hs256Secret,
      "MAAS_GATEWAY_JWT_RS256_PUBLIC_KEY_FILE": keyFile.path,
      "MAAS_GATEWAY_JWT_AUDIENCE": "maas-prod",
      "MAAS_GATEWAY_JWT_LEEWAY_SECONDS": "30",
      "MAAS_GATEWAY_REGISTRY_TARGET": "dns:///maas-registry:50052",
      "MAAS_GATEWAY_QUOTA_TARGET": "maas-quota:50054",
      "MAAS_GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "2.5",
      "MAAS_GATEWAY_UPSTREAM_MAX_TIMEOUT_SECONDS": "120",
      "MAAS_GATEWAY_API_KEY_CACHE_SECONDS": "0",
    ])
    #expect(problems.isEmpty)
    #expect(settings.adminToken == "an-admin-token-long-enough")
    #expect(settings.jwt.hs256Secret == Array(TestKeys.hs256Secret.utf8))
    #expect(settings.jwt.rs256PublicKeyPEM == TestKeys.trustedPublicKey)
    #expect(settings.jwt.audience == "maas-prod")
    #expect(settings.jwt.leeway == .seconds(30))
    #expect(settings.registryTarget == "dns:///maas-registry:50052")
    #expect(settings.quotaTarget == "maas-quota:50054")
    #expect(settings.upstream.defaultTimeout == .milliseconds(2500))
    #expect(settings.upstream.maxTimeout == .seconds(120))
    #expect(settings.apiKeyCacheTTL == .zero)
  }

  @Test("every bad value is reported at once, and refused secrets are never repeated")
  func problems() {
    let (_, problems) = read([
      "MAAS_GATEWAY_ADMIN_TOKEN": "short-secret",
      "MAAS_GATEWAY_JWT_HS256_SECRET": "also-too-short",
      "MAAS_GATEWAY_JWT_RS256_PUBLIC_KEY_FILE": "/nonexistent/key.pem",
      "MAAS_GATEWAY_JWT_LEEWAY_SECONDS": "3600",
      "MAAS_GATEWAY_REGISTRY_TARGET": "registry without port",
      "MAAS_GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "0",
      "MAAS_GATEWAY_API_KEY_CACHE_SECONDS": "60",
    ])
    #expect(problems.map(\.variable) == [
      "MAAS_GATEWAY_ADMIN_TOKEN", "MAAS_GATEWAY_JWT_HS256_SECRET", "MAAS_GATEWAY_JWT_RS256_PUBLIC_KEY_FILE",
      "MAAS_GATEWAY_JWT_LEEWAY_SECONDS", "MAAS_GATEWAY_REGISTRY_TARGET", "MAAS_GATEWAY_UPSTREAM_TIMEOUT_SECONDS",
      "MAAS_GATEWAY_API_KEY_CACHE_SECONDS",
    ])
    let text = ConfigurationError(problems: problems).description
    #expect(!text.contains("short-secret"))
    #expect(!text.contains("also-too-short"))
  }

  @Test("an upstream bound shorter than the bound of calls without a deadline is refused")
  func maxTimeoutBelowDefault() {
    let (_, problems) = read([
      "MAAS_GATEWAY_UPSTREAM_TIMEOUT_SECONDS": "30",
      "MAAS_GATEWAY_UPSTREAM_MAX_TIMEOUT_SECONDS": "20",
    ])
    #expect(problems.map(\.variable) == ["MAAS_GATEWAY_UPSTREAM_MAX_TIMEOUT_SECONDS"])
    #expect(problems.first?.reason.contains("MAAS_GATEWAY_UPSTREAM_TIMEOUT_SECONDS") == true)
  }

  @Test("a key file that is not an RSA public key is refused")
  func badKeyFile() throws {
    let keyFile = FileManager.default.temporaryDirectory.appendingPathComponent("gateway-settings-\(UUID()).pem")
    try "not a key".write(to: keyFile, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: keyFile) }
    let (_, problems) = read(["MAAS_GATEWAY_JWT_RS256_PUBLIC_KEY_FILE": keyFile.path])
    #expect(problems.map(\.variable) == ["MAAS_GATEWAY_JWT_RS256_PUBLIC_KEY_FILE"])
  }
}
