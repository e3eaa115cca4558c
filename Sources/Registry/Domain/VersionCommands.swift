import MaaSRuntime

/// A validated CreateModelVersion.
public struct CreateVersionCommand: RegistryCommand, Hashable {
  public static let method = "CreateModelVersion"
  public var tenantID: String
  public var model: ModelRef
  public var version: String
  public var artifact: Artifact
  public var labels: [String: String]
  public var idempotencyKey: String

  /// - Parameter artifact: nil when the request leaves it unset.
  public static func validate(
    tenantID: String, model: ModelRef?, version: String, artifact: Artifact?, labels: [String: String],
    idempotencyKey: String
  ) -> Result<CreateVersionCommand, RegistryError> {
    var problems: [FieldViolation] = []
    RegistryFieldRules.tenantID(tenantID, into: &problems)
    RegistryFieldRules.modelRef(model, into: &problems)
    RegistryFieldRules.versionString(version, field: "version", into: &problems)
    RegistryFieldRules.artifact(artifact, into: &problems)
    RegistryFieldRules.labels(labels, field: "labels", into: &problems)
    RegistryFieldRules.idempotencyKey(idempotencyKey, into: &problems)
    return RegistryFieldRules.finish(problems) {
      CreateVersionCommand(
        tenantID: tenantID, model: model!, version: version, artifact: artifact!, labels: labels,
        idempotencyKey: idempotencyKey)
    }
  }

  public var fingerprint: String {
    var canonical = Canonical()
    canonical.add(model.description)
    canonical.add(version)
    canonical.add(artifact.uri)
    canonical.add(artifact.format)
    canonical.add(artifact.sizeBytes)
    canonical.add(artifact.sha256)
    canonical.add(labels)
    return canonical.fingerprint
  }
}

/// A validated GetModelVersion.
public struct VersionQuery: Sendable, Hashable {
  public var tenantID: String
  /// nil only when the version is named by id.
  public var model: ModelRef?
  public var version: VersionRef

  public static func validate(tenantID: String, model: ModelRef?, version: VersionRef?) -> Result<VersionQuery, RegistryError> {
    var problems: [FieldViolation] = []
    RegistryFieldRules.tenantID(tenantID, into: &problems)
    VersionRules.modelUnlessByID(model, version: version, into: &problems)
    RegistryFieldRules.versionRef(version, into: &problems)
    return RegistryFieldRules.finish(problems) { VersionQuery(tenantID: tenantID, model: model, version: version!) }
  }
}

/// A validated ListModelVersions.
public struct ListVersionsQuery: Sendable, Hashable {
  public var tenantID: String
  public var model: ModelRef
  public var pageSize: Int
  /// The last version of the previous page; nil for the first page.
  public var after: VersionCursor?
  public var labelSelector: [String: String]
  /// What the next page token is bound to.
  public var listing: PageTokens.Listing

  public static func validate(
    tenantID: String, model: ModelRef?, pageSize: Int32, pageToken: String, labelSelector: [String: String],
    tokens: PageTokens
  ) -> Result<ListVersionsQuery, RegistryError> {
    var problems: [FieldViolation] = []
    RegistryFieldRules.tenantID(tenantID, into: &problems)
    RegistryFieldRules.modelRef(model, into: &problems)
    RegistryFieldRules.pageSize(pageSize, into: &problems)
    RegistryFieldRules.labels(labelSelector, field: "label_selector", into: &problems)
    // Bound to the model as the request names it: a token for "by name" does not serve "by id".
    let listing = PageTokens.Listing.versions(tenant: tenantID, model: model ?? .id(""), labels: labelSelector)
    var after: VersionCursor?
    if !pageToken.isEmpty {
      after = tokens.versionCursor(pageToken, in: listing)
      if after == nil { problems.append(FieldViolation("page_token", .foreignPageToken)) }
    }
    return RegistryFieldRules.finish(problems) {
      ListVersionsQuery(
        tenantID: tenantID, model: model!, pageSize: Int(pageSize), after: after, labelSelector: labelSelector,
        listing: listing)
    }
  }
}

/// A validated DeleteModelVersion: the version by id or version string, never by alias.
public struct DeleteVersionCommand: RegistryCommand, Hashable {
  public static let method = "DeleteModelVersion"
  public var tenantID: String
  public var model: ModelRef?
  public var version: VersionRef
  public var idempotencyKey: String

  public static func validate(tenantID: String, model: ModelRef?, version: VersionRef?, idempotencyKey: String)
    -> Result<DeleteVersionCommand, RegistryError>
  {
    var problems: [FieldViolation] = []
    RegistryFieldRules.tenantID(tenantID, into: &problems)
    VersionRules.modelUnlessByID(model, version: version, into: &problems)
    if case .alias = version {
      problems.append(FieldViolation("version", .aliasNotAllowed))
    } else {
      RegistryFieldRules.versionRef(version, into: &problems)
    }
    RegistryFieldRules.idempotencyKey(idempotencyKey, into: &problems)
    return RegistryFieldRules.finish(problems) {
      DeleteVersionCommand(tenantID: tenantID, model: model, version: version!, idempotencyKey: idempotencyKey)
    }
  }

  public var fingerprint: String {
    var canonical = Canonical()
    canonical.add(model?.description ?? "")
    canonical.add(version.description)
    return canonical.fingerprint
  }
}

/// A validated SetModelAlias.
public struct SetAliasCommand: RegistryCommand, Hashable {
  public static let method = "SetModelAlias"
  public var tenantID: String
  public var model: ModelRef
  public var alias: String
  public var version: String
  public var idempotencyKey: String

  public static func validate(tenantID: String, model: ModelRef?, alias: String, version: String, idempotencyKey: String)
    -> Result<SetAliasCommand, RegistryError>
  {
    var problems: [FieldViolation] = []
    RegistryFieldRules.tenantID(tenantID, into: &problems)
    RegistryFieldRules.modelRef(model, into: &problems)
    RegistryFieldRules.versionString(alias, field: "alias", into: &problems)
    RegistryFieldRules.versionString(version, field: "version", into: &problems)
    if !alias.isEmpty, alias == version { problems.append(FieldViolation("alias", .namesAVersion)) }
    RegistryFieldRules.idempotencyKey(idempotencyKey, into: &problems)
    return RegistryFieldRules.finish(problems) {
      SetAliasCommand(tenantID: tenantID, model: model!, alias: alias, version: version, idempotencyKey: idempotencyKey)
    }
  }

  public var fingerprint: String {
    var canonical = Canonical()
    canonical.add(model.description)
    canonical.add(alias)
    canonical.add(version)
    return canonical.fingerprint
  }
}

/// A validated GetModelAlias.
public struct AliasQuery: Sendable, Hashable {
  public var tenantID: String
  public var model: ModelRef
  public var alias: String

  public static func validate(tenantID: String, model: ModelRef?, alias: String) -> Result<AliasQuery, RegistryError> {
    var problems: [FieldViolation] = []
    RegistryFieldRules.tenantID(tenantID, into: &problems)
    RegistryFieldRules.modelRef(model, into: &problems)
    RegistryFieldRules.versionString(alias, field: "alias", into: &problems)
    return RegistryFieldRules.finish(problems) { AliasQuery(tenantID: tenantID, model: model!, alias: alias) }
  }
}

/// A validated DeleteModelAlias.
public struct DeleteAliasCommand: RegistryCommand, Hashable {
  public static let method = "DeleteModelAlias"
  public var tenantID: String
  public var model: ModelRef
  public var alias: String
  public var idempotencyKey: String

  public static func validate(tenantID: String, model: ModelRef?, alias: String, idempotencyKey: String)
    -> Result<DeleteAliasCommand, RegistryError>
  {
    var problems: [FieldViolation] = []
    RegistryFieldRules.tenantID(tenantID, into: &problems)
    RegistryFieldRules.modelRef(model, into: &problems)
    RegistryFieldRules.versionString(alias, field: "alias", into: &problems)
    RegistryFieldRules.idempotencyKey(idempotencyKey, into: &problems)
    return RegistryFieldRules.finish(problems) {
      DeleteAliasCommand(tenantID: tenantID, model: model!, alias: alias, idempotencyKey: idempotencyKey)
    }
  }

  public var fingerprint: String {
    var canonical = Canonical()
    canonical.add(model.description)
    canonical.add(alias)
    return canonical.fingerprint
  }
}

enum VersionRules {
  /// GetModelVersionRequest.model: "Required unless `version` is given by id".
  static func modelUnlessByID(_ model: ModelRef?, version: VersionRef?, into problems: inout [FieldViolation]) {
    if model == nil, case .id = version { return }
    RegistryFieldRules.modelRef(model, into: &problems)
  }
}
