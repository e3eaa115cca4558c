public import Foundation
import JWTKit
import MaaSRuntime

/// The keys and rules JWT bearer tokens are checked with.
public struct JWTSettings: Sendable, Hashable {
  /// The HS256 shared secret (at least 32 bytes), or nil to refuse HS256.
  public var hs256Secret: [UInt8]?
  /// The RS256 public key (PEM, at least 2048 bits), or nil to refuse RS256.
  public var rs256PublicKeyPEM: String?
  /// What `aud` must include.
  public var audience: String
  /// Clock skew tolerated on `exp` and `nbf`.
  public var leeway: Duration

  public init(hs256Secret: [UInt8]? = nil, rs256PublicKeyPEM: String? = nil, audience: String = "maas", leeway: Duration = .zero) {
    self.hs256Secret = hs256Secret
    self.rs256PublicKeyPEM = rs256PublicKeyPEM
    self.audience = audience
    self.leeway = leeway
  }

  /// Whether any key is configured; without one, every JWT is refused.
  public var acceptsTokens: Bool { self.hs256Secret != nil || self.rs256PublicKeyPEM != nil }
}

/// What a verified token says.
public struct VerifiedToken: Sendable, Hashable {
  public var tenantID: String
  public var subject: String?
}

/// Checks JWT bearer tokens with jwt-kit: the signature with the key of the token's algorithm,
/// then `exp` (required), `nbf` (if present), `aud` and `tenant_id` (required) against the
/// injected clock.
///
/// The algorithm is chosen by the gateway's configuration, not trusted from the token: the
/// header's `alg` must be HS256 or RS256 *and* have a key configured, and each algorithm has a
/// key collection of its own, so `alg: none`, an RS256 token checked as HMAC with the public key
/// as secret, or any other algorithm, is refused before a signature is looked at.
public final class JWTVerifier: Sendable {
  public let settings: JWTSettings
  /// jwt-kit's collections are actors, filled asynchronously; built once, on first use.
  private let collections: Task<[String: JWTKeyCollection], Never>

  /// - Throws: when the RS256 key is not an RSA public key PEM of at least 2048 bits.
  public init(settings: JWTSettings) throws {
    self.settings = settings
    let rsa = try settings.rs256PublicKeyPEM.map { try Insecure.RSA.PublicKey(pem: $0) }
    let secret = settings.hs256Secret
    self.collections = Task {
      var collections: [String: JWTKeyCollection] = [:]
      if let secret {
        collections["HS256"] = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
      }
      if let rsa {
        collections["RS256"] = await JWTKeyCollection().add(rsa: rsa, digestAlgorithm: .sha256)
      }
      return collections
    }
  }

  /// The token's tenant and subject, or why it is refused.
  public func verify(_ token: String, now: Date) async -> Result<VerifiedToken, AuthenticationError> {
    let segments = token.split(separator: ".", omittingEmptySubsequences: false)
    guard segments.count == 3, let headerData = Base64URL.decode(segments[0]),
      let header = try? JSONDecoder().decode(Header.self, from: Data(headerData))
    else { return .failure(.malformedToken("the header does not decode")) }
    guard let algorithm = header.alg else { return .failure(.malformedToken("the header has no alg")) }
    guard let keys = await self.collections.value[algorithm] else {
      return .failure(.unsupportedAlgorithm(algorithm))
    }

    let claims: Claims
    do {
      claims = try await keys.verify(token, as: Claims.self)
    } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
      return .failure(.invalidSignature)
    } catch {
      return .failure(.malformedToken("the token does not decode"))
    }

    let leeway = TimeInterval(self.settings.leeway.components.seconds)
    guard let expiry = claims.exp else { return .failure(.missingClaim("exp")) }
    guard now < expiry.value.addingTimeInterval(leeway) else { return .failure(.tokenExpired) }
    if let notBefore = claims.nbf, now.addingTimeInterval(leeway) < notBefore.value {
      return .failure(.tokenNotYetValid)
    }
    guard let audience = claims.aud else { return .failure(.missingClaim("aud")) }
    guard audience.value.contains(self.settings.audience) else {
      return .failure(.wrongAudience(expected: self.settings.audience))
    }
    guard let tenantID = claims.tenantID, !tenantID.isEmpty else { return .failure(.missingClaim("tenant_id")) }
    return .success(VerifiedToken(tenantID: tenantID, subject: claims.sub?.value))
  }

  struct Header: Decodable {
    var alg: String?
  }

  /// The claims the gateway reads. Each is optional here so that a missing one is named in the
  /// refusal instead of failing as an undecodable token; `verify(_:now:)` requires them.
  struct Claims: JWTPayload {
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var aud: AudienceClaim?
    var sub: SubjectClaim?
    var tenantID: String?

    enum CodingKeys: String, CodingKey {
      case exp, nbf, aud, sub
      case tenantID = "tenant_id"
    }

    /// Time and audience are checked by `JWTVerifier` against its injected clock.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
  }
}
