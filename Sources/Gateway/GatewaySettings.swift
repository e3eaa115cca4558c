import Foundation
import JWTKit
public import MaaSRuntime

/// The gateway's own configuration, beside the runtime's `MAAS_GATEWAY_*` server and database
/// variables.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MAAS_GATEWAY_ADMIN_TOKEN` | unset | the admin credential of the Admin service (at least 16 bytes); unset refuses every Admin call |
/// | `MAAS_GATEWAY_JWT_HS256_SECRET` | unset | HS256 shared secret (at least 32 bytes); unset refuses HS256 tokens |
/// | `MAAS_GATEWAY_JWT_RS256_PUBLIC_KEY_FILE` | unset | PEM file of the RS256 public key (RSA, at least 2048 bits); unset refuses RS256 tokens |
/// | `MAAS_GATEWAY_JWT_AUDIENCE` | `maas` | what a JWT's `aud` must include |
/// | `MAAS_GATEWAY_JWT_LEEWAY_SECONDS` | `0` | clock skew tolerated on `exp` and `nbf` (at most 300) |
/// | `MAAS_GATEWAY_REGISTRY_TARGET` | `127.0.0.1:50052` | the model registry (`maas.registry.v1.ModelRegistry`) |
/// | `MAAS_GATEWAY_QUOTA_TARGET` | `127.0.0.1:50054` | the quota service (`maas.quota.v1.Quota`) |
/// | `MAAS_GATEWAY_UPSTREAM_TIMEOUT_SECONDS` | `10` | bound of a forwarded call whose caller sent no deadline |
/// | `MAAS_GATEWAY_UPSTREAM_MAX_TIMEOUT_SECONDS` | `60` | bound of every forwarded call, whatever the caller's deadline (at least the one above) |
/// | `MAAS_GATEWAY_API_KEY_CACHE_SECONDS` | `1` | how long a verified API key's record, and a JWT's tenant found to exist, are reused (0 to 10; 0: read every call); a key revoked through another replica is refused within this |
/// | `MAAS_GATEWAY_PAGE_TOKEN_SECRET` | built in | key of the Admin listings' page tokens' MAC; the same on every replica, at least 16 bytes |
public struct GatewaySettings: Sendable, Hashable {
  /// Used when `MAAS_GATEWAY_PAGE_TOKEN_SECRET` is unset: tokens still cannot cross listings or
  /// filters, but anyone who reads this source can mint one. Set a secret in production.
  public static let defaultPageTokenSecret = "maas-gateway-development-page-token-secret"

  public var adminToken: String?
  public var jwt: JWTSettings
  public var registryTarget: String
  public var quotaTarget: String
  public var upstream: UpstreamPolicy
  /// How long an API key's record read from the database is reused (`ApiKeyCache`); zero reads
  /// it for every call.
  public var apiKeyCacheTTL: Duration
  public var pageTokenSecret: String

  public init(
    adminToken: String? = nil, jwt: JWTSettings = JWTSettings(), registryTarget: String = "127.0.0.1:50052",
    quotaTarget: String = "127.0.0.1:50054", upstream: UpstreamPolicy = UpstreamPolicy(), apiKeyCacheTTL: Duration = .seconds(1),
    pageTokenSecret: String = GatewaySettings.defaultPageTokenSecret
  ) {
    self.adminToken = adminToken
    self.jwt = jwt
    self.registryTarget = registryTarget
    self.quotaTarget = quotaTarget
    self.upstream = upstream
    self.apiKeyCacheTTL = apiKeyCacheTTL
    self.pageTokenSecret = pageTokenSecret
  }

  public static let minimumAdminTokenLength = 16
  public static let minimumHS256SecretBytes = 32

  /// Reads the settings, reporting every problem to `reader`.
  public static func read(prefix: String, from reader: inout EnvironmentReader) -> GatewaySettings {
    let defaults = GatewaySettings()
    let adminToken = self.readSecret("\(prefix)_ADMIN_TOKEN", minimumBytes: self.minimumAdminTokenLength, from: &reader)
    let secret = self.readSecret("\(prefix)_JWT_HS256_SECRET", minimumBytes: self.minimumHS256SecretBytes, from: &reader)
    var publicKey: String?
    let keyFileVariable = "\(prefix)_JWT_RS256_PUBLIC_KEY_FILE"
    if let path = reader.readOptional(keyFileVariable, as: .nonEmptyString) {
      do {
        let pem = try String(contentsOfFile: path, encoding: .utf8)
        _ = try Insecure.RSA.PublicKey(pem: pem)
        publicKey = pem
      } catch {
        reader.report(ConfigurationProblem(
          variable: keyFileVariable, value: path, reason: "is not a readable PEM file of an RSA public key of at least 2048 bits (\(error))"))
      }
    }
    let audience = reader.read("\(prefix)_JWT_AUDIENCE", default: defaults.jwt.audience, as: .nonEmptyString)
    let leeway = reader.read("\(prefix)_JWT_LEEWAY_SECONDS", default: .zero, as: .seconds(in: 0...300))
    let registry = reader.read("\(prefix)_REGISTRY_TARGET", default: defaults.registryTarget, as: .grpcTarget)
    let quota = reader.read("\(prefix)_QUOTA_TARGET", default: defaults.quotaTarget, as: .grpcTarget)
    let timeout = reader.read(
      "\(prefix)_UPSTREAM_TIMEOUT_SECONDS", default: defaults.upstream.defaultTimeout, as: .seconds(in: 0.1...300))
    let maxTimeoutVariable = "\(prefix)_UPSTREAM_MAX_TIMEOUT_SECONDS"
    let maxTimeout = reader.read(maxTimeoutVariable, default: defaults.upstream.maxTimeout, as: .seconds(in: 0.1...3600))
    if maxTimeout < timeout {
      reader.report(ConfigurationProblem(
        variable: maxTimeoutVariable, value: "\(maxTimeout)", reason: "is shorter than \(prefix)_UPSTREAM_TIMEOUT_SECONDS (\(timeout)); it must be at least that"))
    }
    let keyCache = reader.read("\(prefix)_API_KEY_CACHE_SECONDS", default: defaults.apiKeyCacheTTL, as: .seconds(in: 0...10))
    let pageTokenSecret = PageTokenSealer.secret(prefix: prefix, fallback: defaults.pageTokenSecret, from: &reader)
    return GatewaySettings(
      adminToken: adminToken,
      jwt: JWTSettings(hs256Secret: secret.map { Array($0.utf8) }, rs256PublicKeyPEM: publicKey, audience: audience, leeway: leeway),
      registryTarget: registry, quotaTarget: quota, upstream: UpstreamPolicy(defaultTimeout: timeout, maxTimeout: maxTimeout), apiKeyCacheTTL: keyCache,
      pageTokenSecret: pageTokenSecret)
  }
}

extension GatewaySettings {
  /// A secret of at least `minimumBytes`, without surrounding whitespace. A refused secret is
  /// reported without its value, which the reader would otherwise quote into the log.
  static func readSecret(_ variable: String, minimumBytes: Int, from reader: inout EnvironmentReader) -> String? {
    guard let text = reader.readOptional(variable, as: .verbatim) else { return nil }
    guard text.utf8.count >= minimumBytes, text.trimmingCharacters(in: .whitespacesAndNewlines) == text else {
      reader.report(ConfigurationProblem(
        variable: variable, value: nil,
        reason: "must be a secret of at least \(minimumBytes) bytes without surrounding whitespace (value not shown)"))
      return nil
    }
    return text
  }
}

extension ConfigurationParser where Value == String {
  /// Any text, as it is: the caller checks it.
  static var verbatim: Self {
    Self(expectation: "text") { $0 }
  }
}
