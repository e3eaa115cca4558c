public import Foundation
import MaaSRuntime

/// What a caller presented in `authorization: Bearer <credential>`, told apart by its shape: an
/// API key starts with `maas_`; a JWT is three base64url segments joined by dots. Anything else
/// is malformed.
public enum BearerCredential: Sendable, Hashable {
  case apiKey(ApiKeyToken)
  case jwt(String)

  /// The credential in the `authorization` values of a call.
  ///
  /// - Returns: `.failure(.missingCredential)` for no value; `.malformedCredential` for several
  ///   values (which one would count is ambiguous), a scheme other than Bearer, or a credential
  ///   of neither shape.
  public static func parse(authorization values: [String]) -> Result<BearerCredential, AuthenticationError> {
    guard let value = values.first else { return .failure(.missingCredential) }
    guard values.count == 1 else { return .failure(.malformedCredential("more than one authorization header")) }
    guard let bearer = self.bearerText(value) else {
      return .failure(.malformedCredential("authorization must be \"Bearer <credential>\""))
    }
    return self.parse(bearer: bearer)
  }

  /// The credential of an `authorization` value `Bearer <credential>` (the scheme in any case),
  /// or nil for another scheme or an empty credential.
  ///
  /// Byte-wise on purpose: it runs on every call, and Foundation's `trimmingCharacters(in:)` was
  /// 3% of the gateway's CPU per ListModels (profiled at 64 callers).
  static func bearerText(_ value: String) -> String? {
    let bytes = value.utf8
    func isBlank(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
    guard let schemeStart = bytes.firstIndex(where: { !isBlank($0) }) else { return nil }
    let schemeEnd = bytes[schemeStart...].firstIndex(where: isBlank) ?? bytes.endIndex
    let scheme = bytes[schemeStart..<schemeEnd]
    guard scheme.count == 6, zip(scheme, "bearer".utf8).allSatisfy({ $0 | 0x20 == $1 }) else { return nil }
    guard let start = bytes[schemeEnd...].firstIndex(where: { !isBlank($0) }),
      let last = bytes[start...].lastIndex(where: { !isBlank($0) })
    else { return nil }
    return String(value[start...last])
  }

  /// The credential after `Bearer `.
  public static func parse(bearer text: String) -> Result<BearerCredential, AuthenticationError> {
    if text.hasPrefix(ApiKeyToken.scheme) {
      guard let token = ApiKeyToken(parsing: text) else { return .failure(.malformedCredential("not a well-formed API key")) }
      return .success(.apiKey(token))
    }
    let segments = text.split(separator: ".", omittingEmptySubsequences: false)
    // The third segment (the signature) may be empty here: an unsigned token is refused by the
    // verifier with a clear reason rather than called malformed.
    guard segments.count == 3, !segments[0].isEmpty, !segments[1].isEmpty,
      segments.allSatisfy({ $0.utf8.allSatisfy(Base64URL.isSymbol) })
    else { return .failure(.malformedCredential("neither an API key nor a JWT")) }
    return .success(.jwt(text))
  }
}

/// Who a tenant credential proved the caller to be.
public struct AuthenticatedTenant: Sendable, Hashable {
  /// How the caller proved it.
  public enum Method: Sendable, Hashable {
    /// An API key, by its id.
    case apiKey(id: UUID)
    /// A JWT, with its `sub` claim if it had one.
    case jwt(subject: String?)
  }

  /// The tenant every forwarded request names: taken from the credential, never the request.
  public var tenantID: String
  public var method: Method

  public init(tenantID: String, method: Method) {
    self.tenantID = tenantID
    self.method = method
  }
}

/// Why a credential was refused: every case is UNAUTHENTICATED. Tests match cases; the
/// description is the status message, and never contains a secret.
public enum AuthenticationError: Error, Sendable, Hashable, CustomStringConvertible {
  case missingCredential
  case malformedCredential(String)
  /// No key with that prefix, or the secret does not match: the two answer alike, so a prefix
  /// (which is not secret) does not tell an attacker anything.
  case unknownApiKey
  case revokedApiKey
  case expiredApiKey
  /// JWTs are not configured (neither an HS256 secret nor an RS256 key).
  case jwtNotAccepted
  /// `alg` is `none`, or one the gateway has no key for.
  case unsupportedAlgorithm(String)
  case invalidSignature
  case malformedToken(String)
  case tokenExpired
  case tokenNotYetValid
  case missingClaim(String)
  case wrongAudience(expected: String)
  /// The credential names a tenant the gateway does not know.
  case unknownTenant

  public var description: String {
    switch self {
    case .missingCredential: "missing credential: send \"authorization: Bearer <API key or JWT>\""
    case .malformedCredential(let reason): "malformed credential: \(reason)"
    case .unknownApiKey: "invalid API key"
    case .revokedApiKey: "API key has been revoked"
    case .expiredApiKey: "API key has expired"
    case .jwtNotAccepted: "JWT bearer tokens are not accepted by this gateway"
    case .unsupportedAlgorithm(let alg): "JWT algorithm \"\(alg)\" is not accepted"
    case .invalidSignature: "JWT signature is invalid"
    case .malformedToken(let reason): "malformed JWT: \(reason)"
    case .tokenExpired: "JWT has expired"
    case .tokenNotYetValid: "JWT is not valid yet (nbf)"
    case .missingClaim(let claim): "JWT has no \(claim) claim"
    case .wrongAudience(let expected): "JWT audience does not include \"\(expected)\""
    case .unknownTenant: "credential names an unknown tenant"
    }
  }
}

extension AuthenticationError {
  /// The refusal as a metric label: one fixed word per case, whatever the case carries.
  public var reason: String {
    switch self {
    case .missingCredential: "missing_credential"
    case .malformedCredential: "malformed_credential"
    case .unknownApiKey: "unknown_api_key"
    case .revokedApiKey: "revoked_api_key"
    case .expiredApiKey: "expired_api_key"
    case .jwtNotAccepted: "jwt_not_accepted"
    case .unsupportedAlgorithm: "unsupported_algorithm"
    case .invalidSignature: "invalid_signature"
    case .malformedToken: "malformed_token"
    case .tokenExpired: "token_expired"
    case .tokenNotYetValid: "token_not_yet_valid"
    case .missingClaim: "missing_claim"
    case .wrongAudience: "wrong_audience"
    case .unknownTenant: "unknown_tenant"
    }
  }
}
