import Foundation
public import GRPCCore
public import Logging

/// Turns a call's `authorization` metadata into the tenant it proves, or refuses it.
///
/// - API keys (`maas_<prefix>_<secret>`): the key's record is found by its prefix, the digest of
///   the whole key compared in constant time, then revocation and expiry checked; the key's
///   last use is recorded at most once a minute. Nothing is cached, so a revoked key stops
///   working with the next call.
/// - JWTs: checked by `JWTVerifier`; the `tenant_id` they claim must be a tenant the gateway
///   knows.
public struct Authenticator: Sendable {
  let directory: any CredentialDirectory
  let jwt: JWTVerifier?
  let clock: any GatewayClock
  let logger: Logger

  /// - Parameter jwt: nil to refuse every JWT.
  public init(directory: any CredentialDirectory, jwt: JWTVerifier?, clock: any GatewayClock = SystemGatewayClock(), logger: Logger) {
    self.directory = directory
    self.jwt = jwt
    self.clock = clock
    self.logger = logger
  }

  /// The tenant the call's credential proves.
  ///
  /// - Parameter recordUse: whether a key's last use is recorded (not for a tenant credential
  ///   presented to the Admin service, which refuses it anyway).
  /// - Throws: `AuthenticationError` for a missing or bad credential; the directory's own errors
  ///   when it cannot be asked (the caller must then refuse the call too).
  public func authenticate(_ metadata: Metadata, recordUse: Bool = true) async throws -> AuthenticatedTenant {
    let values = metadata[stringValues: "authorization"].map { $0 }
    switch BearerCredential.parse(authorization: values) {
    case .failure(let error): throw error
    case .success(let credential): return try await self.authenticate(credential, recordUse: recordUse)
    }
  }

  /// The tenant `credential` proves. Throws as `authenticate(_:recordUse:)`.
  public func authenticate(_ credential: BearerCredential, recordUse: Bool = true) async throws -> AuthenticatedTenant {
    switch credential {
    case .apiKey(let token): try await self.authenticate(apiKey: token, recordUse: recordUse)
    case .jwt(let token): try await self.authenticate(jwt: token)
    }
  }

  func authenticate(apiKey token: ApiKeyToken, recordUse: Bool) async throws -> AuthenticatedTenant {
    let now = self.clock.now()
    // The digest is computed and compared whether or not the prefix is known, so the time taken
    // does not tell a known prefix from an unknown one either.
    let presented = token.digest
    let stored = try await self.directory.apiKeyCredential(prefix: token.prefix)
    let matches = presented.matches(stored?.digest ?? ApiKeyDigest(of: ""))
    guard let stored, matches else { throw AuthenticationError.unknownApiKey }
    if stored.revokeTime != nil { throw AuthenticationError.revokedApiKey }
    if let expiry = stored.expireTime, now >= expiry { throw AuthenticationError.expiredApiKey }
    if recordUse, stored.lastUsedTime.map({ now.timeIntervalSince($0) >= 60 }) ?? true {
      do {
        try await self.directory.recordApiKeyUse(keyID: stored.keyID, tenantID: stored.tenantID, at: now)
      } catch {
        // Bookkeeping: a failed write must not fail a call whose credential was verified.
        self.logger.warning("could not record API key use", metadata: ["key_id": "\(stored.keyID)", "error": "\(error)"])
      }
    }
    return AuthenticatedTenant(tenantID: stored.tenantID, method: .apiKey(id: stored.keyID))
  }

  func authenticate(jwt token: String) async throws -> AuthenticatedTenant {
    guard let jwt = self.jwt else { throw AuthenticationError.jwtNotAccepted }
    let verified = try await jwt.verify(token, now: self.clock.now()).get()
    guard try await self.directory.tenantExists(id: verified.tenantID) else { throw AuthenticationError.unknownTenant }
    return AuthenticatedTenant(tenantID: verified.tenantID, method: .jwt(subject: verified.subject))
  }
}
