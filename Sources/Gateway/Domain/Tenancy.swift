public import Foundation

/// A customer of the platform, as the gateway keeps it.
public struct Tenant: Sendable, Hashable {
  /// Server-assigned, opaque, immutable: what JWTs claim and internal requests carry.
  public var id: String
  /// Unique, immutable (see `Validation.tenantName`).
  public var name: String
  public var displayName: String
  public var createTime: Date

  public init(id: String, name: String, displayName: String, createTime: Date) {
    self.id = id
    self.name = name
    self.displayName = displayName
    self.createTime = createTime
  }
}

/// An API key's record, without its secret (the gateway keeps only the digest).
public struct ApiKeyRecord: Sendable, Hashable {
  public var id: UUID
  public var tenantID: String
  /// `maas_<prefix>`, as listings show it.
  public var displayPrefix: String
  public var name: String
  public var createTime: Date
  /// nil: never expires.
  public var expireTime: Date?
  public var revokeTime: Date?
  /// Last successful authentication, kept to the minute.
  public var lastUsedTime: Date?

  public init(
    id: UUID, tenantID: String, displayPrefix: String, name: String, createTime: Date,
    expireTime: Date? = nil, revokeTime: Date? = nil, lastUsedTime: Date? = nil
  ) {
    self.id = id
    self.tenantID = tenantID
    self.displayPrefix = displayPrefix
    self.name = name
    self.createTime = createTime
    self.expireTime = expireTime
    self.revokeTime = revokeTime
    self.lastUsedTime = lastUsedTime
  }
}

/// What checking an API key needs, found by its prefix before the tenant is known.
public struct StoredApiKeyCredential: Sendable, Hashable {
  public var keyID: UUID
  public var tenantID: String
  public var digest: ApiKeyDigest
  public var expireTime: Date?
  public var revokeTime: Date?
  public var lastUsedTime: Date?

  public init(
    keyID: UUID, tenantID: String, digest: ApiKeyDigest, expireTime: Date?, revokeTime: Date?, lastUsedTime: Date?
  ) {
    self.keyID = keyID
    self.tenantID = tenantID
    self.digest = digest
    self.expireTime = expireTime
    self.revokeTime = revokeTime
    self.lastUsedTime = lastUsedTime
  }
}

/// A key to insert: its record and the digest of its secret.
public struct NewApiKey: Sendable, Hashable {
  public var record: ApiKeyRecord
  /// The prefix without `maas_`: what verification looks the key up by.
  public var prefix: String
  public var digest: ApiKeyDigest
  /// The CreateApiKey idempotency key and the fingerprint of its request, if one was given.
  public var idempotency: IdempotencyStamp?

  public init(record: ApiKeyRecord, prefix: String, digest: ApiKeyDigest, idempotency: IdempotencyStamp?) {
    self.record = record
    self.prefix = prefix
    self.digest = digest
    self.idempotency = idempotency
  }
}

/// An idempotency key with the fingerprint of the request it came with: a retry with the same
/// key and fingerprint replays, the same key with another fingerprint is refused.
public struct IdempotencyStamp: Sendable, Hashable {
  public var key: String
  public var fingerprint: String

  public init(key: String, fingerprint: String) {
    self.key = key
    self.fingerprint = fingerprint
  }
}

/// Where a page of API keys starts: after this key in (create_time, id) descending order.
public struct ApiKeyCursor: Sendable, Hashable, Codable {
  public var createTime: Date
  public var id: UUID

  public init(createTime: Date, id: UUID) {
    self.createTime = createTime
    self.id = id
  }
}
