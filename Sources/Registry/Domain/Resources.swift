public import Foundation

/// Whether a model takes new versions.
public enum ModelState: Int, Sendable, Hashable, Codable, CaseIterable {
  /// The default for a new model.
  case active = 1
  /// Kept for the record: versions stay readable, no new ones.
  case archived = 2
}

/// A model of one tenant: a named family of versions.
public struct Model: Sendable, Hashable, Codable {
  public var id: String
  public var tenantID: String
  public var name: String
  public var description: String
  public var labels: [String: String]
  public var state: ModelState
  public var createdAt: Date
  public var updatedAt: Date
  /// Alias name -> version string.
  public var aliases: [String: String]

  public init(
    id: String, tenantID: String, name: String, description: String, labels: [String: String], state: ModelState,
    createdAt: Date, updatedAt: Date, aliases: [String: String]
  ) {
    self.id = id
    self.tenantID = tenantID
    self.name = name
    self.description = description
    self.labels = labels
    self.state = state
    self.createdAt = createdAt
    self.updatedAt = updatedAt
    self.aliases = aliases
  }
}

/// Where a version's weights live and how to check them; recorded, never fetched.
public struct Artifact: Sendable, Hashable, Codable {
  public var uri: String
  public var format: String
  public var sizeBytes: Int64
  public var sha256: String

  public init(uri: String, format: String, sizeBytes: Int64, sha256: String) {
    self.uri = uri
    self.format = format
    self.sizeBytes = sizeBytes
    self.sha256 = sha256
  }
}

/// One immutable version of a model.
public struct ModelVersion: Sendable, Hashable, Codable {
  public var id: String
  public var modelID: String
  public var version: String
  public var artifact: Artifact
  public var labels: [String: String]
  public var createdAt: Date

  public init(id: String, modelID: String, version: String, artifact: Artifact, labels: [String: String], createdAt: Date) {
    self.id = id
    self.modelID = modelID
    self.version = version
    self.artifact = artifact
    self.labels = labels
    self.createdAt = createdAt
  }
}

/// A name pointing at one version of a model.
public struct Alias: Sendable, Hashable, Codable {
  public var name: String
  public var version: String
  public var modelID: String
  public var versionID: String
  public var updatedAt: Date

  public init(name: String, version: String, modelID: String, versionID: String, updatedAt: Date) {
    self.name = name
    self.version = version
    self.modelID = modelID
    self.versionID = versionID
    self.updatedAt = updatedAt
  }
}

/// A model of the caller's tenant, by id or by name.
public enum ModelRef: Sendable, Hashable, Codable, CustomStringConvertible {
  case id(String)
  case name(String)

  public var description: String {
    switch self {
    case .id(let id): "id:\(id)"
    case .name(let name): "name:\(name)"
    }
  }
}

/// A version, by id, by version string or through an alias of its model.
public enum VersionRef: Sendable, Hashable, Codable, CustomStringConvertible {
  case id(String)
  case version(String)
  case alias(String)

  public var description: String {
    switch self {
    case .id(let id): "id:\(id)"
    case .version(let version): "version:\(version)"
    case .alias(let alias): "alias:\(alias)"
    }
  }
}

/// One page of a listing and where the next one starts (nil on the last page).
public struct Page<Item: Sendable, Cursor: Sendable>: Sendable {
  public var items: [Item]
  public var next: Cursor?

  public init(items: [Item], next: Cursor?) {
    self.items = items
    self.next = next
  }
}

/// Where a page of models ends: the last model's name and id (the listing's order).
public struct ModelCursor: Sendable, Hashable {
  public var name: String
  public var id: UUID

  public init(name: String, id: UUID) {
    self.name = name
    self.id = id
  }
}

/// Where a page of versions ends: the last version's create time (whole microseconds since the
/// Unix epoch, the database's precision) and id (the listing's order is newest first).
public struct VersionCursor: Sendable, Hashable {
  public var createMicros: Int64
  public var id: UUID

  public init(createMicros: Int64, id: UUID) {
    self.createMicros = createMicros
    self.id = id
  }

  public init(createdAt: Date, id: UUID) {
    self.init(createMicros: Int64((createdAt.timeIntervalSince1970 * 1_000_000).rounded()), id: id)
  }

  public var createdAt: Date { Date(timeIntervalSince1970: Double(createMicros) / 1_000_000) }
}

/// The time the registry stamps rows with; injected so tests control it.
public protocol RegistryClock: Sendable {
  /// The current instant.
  func now() -> Date
}

/// The system's wall clock, truncated to the database's microseconds so that what a call
/// answers equals what a later read returns.
public struct SystemRegistryClock: RegistryClock {
  public init() {}

  public func now() -> Date {
    let micros = (Date().timeIntervalSince1970 * 1_000_000).rounded(.down)
    return Date(timeIntervalSince1970: micros / 1_000_000)
  }
}
