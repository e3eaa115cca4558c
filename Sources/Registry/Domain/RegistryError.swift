/// Why the registry refused something. Handlers map `category` to a status; tests match cases,
/// never message text; `description` is the status message.
///
/// Messages are built only from what the caller sent, never from what another tenant has, so a
/// resource of another tenant answers exactly like one that does not exist.
public enum RegistryError: Error, Sendable, Hashable, Codable, CustomStringConvertible {
  /// The request is malformed; every problem found, each naming its field.
  case invalidRequest([FieldViolation])
  /// No model of the tenant matches the reference.
  case modelNotFound(ModelRef)
  /// No version of the tenant matches the reference (within the model, when one was named).
  case versionNotFound(VersionRef)
  /// The model has no alias of this name.
  case aliasNotFound(String)
  /// CreateModel or a rename onto a name the tenant already uses.
  case modelNameTaken(String)
  /// CreateModelVersion with a version string the model already has.
  case versionTaken(String)
  /// CreateModelVersion with a version string that is one of the model's aliases (version strings
  /// and alias names share one namespace per model, so a VersionRef is never ambiguous).
  case versionIsAlias(String)
  /// CreateModelVersion on an ARCHIVED model.
  case modelArchived(String)
  /// DeleteModel without `force` on a model that still has versions.
  case modelHasVersions(Int)
  /// DeleteModelVersion of a version that these aliases point at.
  case versionAliased([String])
  /// SetModelAlias of a new alias on a model that has this many, the most it may have.
  case tooManyAliases(Int)
  /// CreateModelVersion on a model that has this many versions, the most it may have.
  case tooManyVersions(Int)
  /// The quota service refused the reservation; its message names the limit and the usage.
  case quotaExhausted(String)
  /// The quota service does not know the tenant (it was never registered with SetLimits).
  case quotaTenantUnknown(String)
  /// The quota service could not be reached or did not answer in time; nothing was written.
  case quotaUnavailable(String)

  /// How the edge should answer, without the domain knowing gRPC.
  public enum Category: Sendable, Hashable {
    case invalidArgument(field: String)
    case notFound(field: String)
    case alreadyExists(field: String)
    case failedPrecondition
    case resourceExhausted
    case unavailable
  }

  public var category: Category {
    switch self {
    case .invalidRequest(let violations): .invalidArgument(field: violations.first?.field ?? "request")
    case .modelNotFound: .notFound(field: "model")
    case .versionNotFound: .notFound(field: "version")
    case .aliasNotFound: .notFound(field: "alias")
    case .modelNameTaken: .alreadyExists(field: "name")
    case .versionTaken, .versionIsAlias: .alreadyExists(field: "version")
    case .modelArchived, .modelHasVersions, .versionAliased, .quotaTenantUnknown: .failedPrecondition
    case .quotaExhausted, .tooManyAliases, .tooManyVersions: .resourceExhausted
    case .quotaUnavailable: .unavailable
    }
  }

  public var description: String {
    switch self {
    case .invalidRequest(let violations):
      return violations.map(\.description).joined(separator: "; ")
    case .modelNotFound(.id(let id)):
      return "model: no model with id \"\(id)\""
    case .modelNotFound(.name(let name)):
      return "model: no model named \"\(name)\""
    case .versionNotFound(.id(let id)):
      return "version: no version with id \"\(id)\""
    case .versionNotFound(.version(let version)):
      return "version: the model has no version \"\(version)\""
    case .versionNotFound(.alias(let alias)):
      return "version: the model has no alias \"\(alias)\""
    case .aliasNotFound(let alias):
      return "alias: the model has no alias \"\(alias)\""
    case .modelNameTaken(let name):
      return "name: a model named \"\(name)\" already exists"
    case .versionTaken(let version):
      return "version: the model already has version \"\(version)\""
    case .versionIsAlias(let version):
      return "version: \"\(version)\" is an alias of the model; version strings and aliases must differ"
    case .modelArchived(let name):
      return "model \"\(name)\" is archived and takes no new versions"
    case .modelHasVersions(let count):
      return "model: the model still has \(count) version\(count == 1 ? "" : "s"); delete them first or set force"
    case .versionAliased(let aliases):
      let names = aliases.map { "\"\($0)\"" }.joined(separator: ", ")
      return "version: alias\(aliases.count == 1 ? "" : "es") \(names) point\(aliases.count == 1 ? "s" : "") at this version; move or delete \(aliases.count == 1 ? "it" : "them") first"
    case .tooManyAliases(let limit):
      return "alias: the model has \(limit) aliases, the most a model may have; delete one or move an existing one"
    case .tooManyVersions(let limit):
      return "version: the model has \(limit) versions, the most a model may have; delete old ones first"
    case .quotaExhausted(let message):
      return message
    case .quotaTenantUnknown(let message):
      return "tenant_id: the quota service does not know the tenant (\(message))"
    case .quotaUnavailable(let message):
      return "the quota service is unavailable (\(message)); nothing was written, retry with the same idempotency key"
    }
  }
}

/// One problem with one request field.
public struct FieldViolation: Error, Sendable, Hashable, Codable, CustomStringConvertible {
  public enum Problem: Sendable, Hashable, Codable {
    case missing
    /// Outside `min...max` characters.
    case characterCount(min: Int, max: Int)
    case tooLong(maxBytes: Int)
    case tooManyCharacters(max: Int)
    /// Characters outside the field's alphabet; the text says which alphabet.
    case alphabet(String)
    case controlCharacters
    case tooMany(max: Int)
    case negative
    case tooLarge(max: Int64)
    case notSHA256
    case notAbsoluteURI
    case outOfRange(min: Int, max: Int)
    case unknownState
    case unknownMaskPath(String)
    /// A page token that was altered, or belongs to another tenant, listing or filters.
    case foreignPageToken
    case reusedForDifferentRequest
    /// DeleteModelVersion through an alias.
    case aliasNotAllowed
    /// SetModelAlias with an alias name that is a version string of the model.
    case namesAVersion
  }

  /// The proto field path, as the INVALID_ARGUMENT message names it (`artifact.sha256`).
  public var field: String
  public var problem: Problem

  public init(_ field: String, _ problem: Problem) {
    self.field = field
    self.problem = problem
  }

  public var description: String {
    let reason =
      switch problem {
      case .missing: "is required"
      case .characterCount(let min, let max): "must be \(min) to \(max) characters"
      case .tooLong(let max): "must be at most \(max) bytes"
      case .tooManyCharacters(let max): "must be at most \(max) characters"
      case .alphabet(let alphabet): "must \(alphabet)"
      case .controlCharacters: "must not contain control characters"
      case .tooMany(let max): "must have at most \(max) entries"
      case .negative: "must not be negative"
      case .tooLarge(let max): "must be at most \(max)"
      case .notSHA256: "must be exactly 64 lower-case hex digits"
      case .notAbsoluteURI: "must be an absolute URI with a scheme, such as s3://bucket/key"
      case .outOfRange(let min, let max): "must be \(min) to \(max)"
      case .unknownState: "must be MODEL_STATE_ACTIVE or MODEL_STATE_ARCHIVED"
      case .unknownMaskPath(let path):
        "has unknown path \"\(path.utf8.count <= 64 ? path : String(decoding: path.utf8.prefix(64), as: UTF8.self) + "...")\"; allowed: name, description, labels, state"
      case .foreignPageToken: "is not a page token of this listing (altered, or from another tenant or other filters)"
      case .reusedForDifferentRequest: "was already used for a different request"
      case .aliasNotAllowed: "must name the version by id or version string, not by alias"
      case .namesAVersion: "is a version string of the model; an alias must not be one"
      }
    return "\(field): \(reason)"
  }
}
