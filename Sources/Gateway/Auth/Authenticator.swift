import Foundation
public import GRPCCore
public import Logging

/// Turns a call's `authorization` metadata into the tenant it proves, or refuses it.
///
/// - API keys (`maas_<prefix>_<secret>`): the key's record is found by its prefix (in
///   `keyCache` when it was read less than its TTL ago, else in the directory), the digest of
///   the whole key compared in constant time, then revocation and expiry checked; the key's
///   last use is recorded at most once a minute. Without a cache a revoked key stops working
///   with the next call; with one, see `ApiKeyCache` (at once when revoked through the same
///   cache, within its TTL otherwise).
/// - JWTs: checked by `JWTVerifier`; the `tenant_id` they claim must be a tenant the gateway
///   knows (asked of the directory, or of `knownTenants` when it said so less than its TTL ago).
public struct Authenticator: Sendable {
  let directory: any CredentialDirectory
  let jwt: JWTVerifier?
  let keyCache: ApiKeyCache?
  let knownTenants: KnownTenants?
  let clock: any GatewayClock
  let logger: Logger
  let metrics: AuthenticationMetrics?

  /// - Parameters:
  ///   - jwt: nil to refuse every JWT.
  ///   - keyCache: where API-key records read from `directory` are kept for a short time; nil
  ///     reads every call's record from the directory.
  ///   - knownTenants: where the tenants of verified JWTs are remembered for a short time; nil
  ///     asks the directory on every call.
  ///   - metrics: where each call's credential and outcome are counted; nil counts nothing.
  public init(
    directory: any CredentialDirectory, jwt: JWTVerifier?, keyCache: ApiKeyCache? = nil, knownTenants: KnownTenants? = nil,
    clock: any GatewayClock = SystemGatewayClock(), logger: Logger, metrics: AuthenticationMetrics? = nil
  ) {
    self.directory = directory
    self.jwt = jwt
    self.keyCache = keyCache
    self.knownTenants = knownTenants
    self.clock = clock
    self.logger = logger
    self.metrics = metrics
  }

  /// The tenant the call's credential proves.
  ///
  /// - Parameter recordUse: whether a key's last use is recorded (not for a tenant credential
  ///   presented to the Admin service, which refuses it anyway).
  /// - Throws: `AuthenticationError` for a missing or bad credential; the directory's own errors
  ///   when it cannot be asked (the caller must then refuse the call too).
  public func authenticate(_ metadata: Metadata, recordUse: Bool = true) async throws -> AuthenticatedTenant {
    let values = metadata[stringValues: "authorization"].map { $0 }
    let parsed = BearerCredential.parse(authorization: values)
    let credential = try? parsed.get()
    do {
      let tenant = try await self.authenticate(try parsed.get(), recordUse: recordUse)
      self.metrics?.authenticated(credential, outcome: "ok")
      return tenant
    } catch {
      self.metrics?.authenticated(credential, outcome: (error as? AuthenticationError)?.reason ?? "unavailable")
      throw error
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
    // does not tell a known prefix from an unknown one either (except that a key whose record is
    // cached answers sooner; prefixes are not secrets, listings show them).
    let presented = token.digest
    let stored = try await self.apiKeyCredential(prefix: token.prefix)
    let matches = presented.matches(stored?.digest ?? ApiKeyDigest(of: ""))
    guard let stored, matches else { throw AuthenticationError.unknownApiKey }
    if stored.revokeTime != nil { throw AuthenticationError.revokedApiKey }
    if let expiry = stored.expireTime, now >= expiry { throw AuthenticationError.expiredApiKey }
    if recordUse, self.useIsDue(stored, prefix: token.prefix, at: now) {
      do {
        try await self.directory.recordApiKeyUse(keyID: stored.keyID, tenantID: stored.tenantID, at: now)
      } catch {
        // Bookkeeping: a failed write must not fail a call whose credential was verified.
        self.logger.warning("could not record API key use", metadata: ["key_id": "\(stored.keyID)", "error": "\(error)"])
      }
    }
    return AuthenticatedTenant(tenantID: stored.tenantID, method: .apiKey(id: stored.keyID))
  }

  /// The record of the key with `prefix`: the cache's if fresh, else the directory's (then
  /// kept in the cache).
  private func apiKeyCredential(prefix: String) async throws -> StoredApiKeyCredential? {
    guard let cache = self.keyCache else { return try await self.directory.apiKeyCredential(prefix: prefix) }
    switch cache.lookup(prefix: prefix) {
    case .fresh(let credential):
      self.metrics?.lookedUp("fresh")
      return credential
    case .refresh(let credential, let ticket):
      self.metrics?.lookedUp("refresh")
      // Not a child of this call: the call goes on with the record, still inside its TTL.
      Task { [directory, logger] in
        do {
          if let read = try await directory.apiKeyCredential(prefix: prefix) {
            cache.store(read, prefix: prefix, ticket: ticket)
          } else {
            cache.refreshed(prefix: prefix, ticket: ticket, found: false)
          }
        } catch {
          logger.warning(
            "reading an API key's record again failed; its cached record serves until its TTL",
            metadata: ["prefix": "\(prefix)", "error": "\(error)"])
          cache.refreshed(prefix: prefix, ticket: ticket, found: true)
        }
      }
      return credential
    case .miss(let ticket):
      self.metrics?.lookedUp("miss")
      let credential = try await self.directory.apiKeyCredential(prefix: prefix)
      if let credential {
        cache.store(credential, prefix: prefix, ticket: ticket)
      } else {
        cache.storeAbsent(prefix: prefix, ticket: ticket)
      }
      return credential
    case .absent:
      self.metrics?.lookedUp("absent")
      return nil
    }
  }

  /// Whether the key's use at `now` is to be recorded: its last use is a minute old or more (as
  /// the cache knows it, when it has the key, which then answers yes once a minute only).
  private func useIsDue(_ stored: StoredApiKeyCredential, prefix: String, at now: Date) -> Bool {
    if let due = self.keyCache?.claimUseRecording(prefix: prefix, keyID: stored.keyID, at: now) { return due }
    return stored.lastUsedTime.map { now.timeIntervalSince($0) >= 60 } ?? true
  }

  func authenticate(jwt token: String) async throws -> AuthenticatedTenant {
    guard let jwt = self.jwt else { throw AuthenticationError.jwtNotAccepted }
    let verified = try await jwt.verify(token, now: self.clock.now()).get()
    if self.knownTenants?.contains(verified.tenantID) != true {
      guard try await self.directory.tenantExists(id: verified.tenantID) else { throw AuthenticationError.unknownTenant }
      self.knownTenants?.insert(verified.tenantID)
    }
    return AuthenticatedTenant(tenantID: verified.tenantID, method: .jwt(subject: verified.subject))
  }
}
