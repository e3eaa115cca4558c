import MaaSRuntime

/// A mutating request, validated: what the idempotency records key and fingerprint.
///
/// Keys are scoped to the tenant and the method; the fingerprint covers everything else in the
/// request, so the same key with a different request is INVALID_ARGUMENT "idempotency_key".
public protocol RegistryCommand: Sendable {
  /// The RPC method's name, the scope of its keys ("CreateModel").
  static var method: String { get }
  var tenantID: String { get }
  var idempotencyKey: String { get }
  /// A digest of every field but the key.
  var fingerprint: String { get }
}

/// A validated CreateModel.
public struct CreateModelCommand: RegistryCommand, Hashable {
  public static let method = "CreateModel"
  public var tenantID: String
  public var name: String
  public var description: String
  public var labels: [String: String]
  public var idempotencyKey: String

  public static func validate(
    tenantID: String, name: String, description: String, labels: [String: String], idempotencyKey: String
  ) -> Result<CreateModelCommand, RegistryError> {
    var problems: [FieldViolation] = []
    RegistryFieldRules.tenantID(tenantID, into: &problems)
    RegistryFieldRules.modelName(name, field: "name", into: &problems)
    RegistryFieldRules.description(description, field: "description", into: &problems)
    RegistryFieldRules.labels(labels, field: "labels", into: &problems)
    RegistryFieldRules.idempotencyKey(idempotencyKey, into: &problems)
    return RegistryFieldRules.finish(problems) {
      CreateModelCommand(tenantID: tenantID, name: name, description: description, labels: labels, idempotencyKey: idempotencyKey)
    }
  }

  public var fingerprint: String {
    var canonical = Canonical()
    canonical.add(name)
    canonical.add(description)
    canonical.add(labels)
    return canonical.fingerprint
  }
}

/// A validated GetModel.
public struct ModelQuery: Sendable, Hashable {
  public var tenantID: String
  public var model: ModelRef

  /// - Parameter model: nil when the request sets neither `id` nor `name`.
  public static func validate(tenantID: String, model: ModelRef?) -> Result<ModelQuery, RegistryError> {
    var problems: [FieldViolation] = []
    RegistryFieldRules.tenantID(tenantID, into: &problems)
    RegistryFieldRules.modelRef(model, into: &problems)
    return RegistryFieldRules.finish(problems) { ModelQuery(tenantID: tenantID, model: model!) }
  }
}

/// A validated ListModels: its filters, and where the page starts.
public struct ListModelsQuery: Sendable, Hashable {
  public var tenantID: String
  public var pageSize: Int
  /// The last model of the previous page; nil for the first page.
  public var after: ModelCursor?
  public var namePrefix: String
  public var labelSelector: [String: String]
  /// nil matches every state.
  public var state: ModelState?
  /// What the next page token is bound to.
  public var listing: PageTokens.Listing

  /// - Parameters:
  ///   - state: `.success(nil)` for UNSPECIFIED, `.failure` for a number this build does not know.
  public static func validate(
    tenantID: String, pageSize: Int32, pageToken: String, namePrefix: String, labelSelector: [String: String],
    state: ModelState??, tokens: PageTokens
  ) -> Result<ListModelsQuery, RegistryError> {
    var problems: [FieldViolation] = []
    RegistryFieldRules.tenantID(tenantID, into: &problems)
    RegistryFieldRules.pageSize(pageSize, into: &problems)
    RegistryFieldRules.namePrefix(namePrefix, into: &problems)
    RegistryFieldRules.labels(labelSelector, field: "label_selector", into: &problems)
    let resolvedState: ModelState?
    switch state {
    case .some(let known): resolvedState = known
    case .none:
      resolvedState = nil
      problems.append(FieldViolation("state", .unknownState))
    }
    let listing = PageTokens.Listing.models(
      tenant: tenantID, namePrefix: namePrefix, labels: labelSelector, state: resolvedState)
    var after: ModelCursor?
    if !pageToken.isEmpty {
      after = tokens.modelCursor(pageToken, in: listing)
      if after == nil { problems.append(FieldViolation("page_token", .foreignPageToken)) }
    }
    return RegistryFieldRules.finish(problems) {
      ListModelsQuery(
        tenantID: tenantID, pageSize: Int(pageSize), after: after, namePrefix: namePrefix,
        labelSelector: labelSelector, state: resolvedState, listing: listing)
    }
  }
}

/// The fields UpdateModel changes; nil leaves a field as it is.
public struct ModelChanges: Sendable, Hashable, Codable {
  public var name: String?
  public var description: String?
  public var labels: [String: String]?
  public var state: ModelState?

  public init(name: String? = nil, description: String? = nil, labels: [String: String]? = nil, state: ModelState? = nil) {
    self.name = name
    self.description = description
    self.labels = labels
    self.state = state
  }
}

/// A validated UpdateModel.
public struct UpdateModelCommand: RegistryCommand, Hashable {
  public static let method = "UpdateModel"
  public static let maskPaths: Set<String> = ["name", "description", "labels", "state"]
  public var tenantID: String
  public var model: ModelRef
  public var changes: ModelChanges
  public var idempotencyKey: String

  /// The new values as the request carries them; only those named in `updateMask` are read
  /// (and validated).
  public struct Update: Sendable {
    public var name: String
    public var description: String
    public var labels: [String: String]
    /// nil: a number this build does not know; `.some(nil)`: UNSPECIFIED.
    public var state: ModelState??

    public init(name: String, description: String, labels: [String: String], state: ModelState??) {
      self.name = name
      self.description = description
      self.labels = labels
      self.state = state
    }
  }

  public static func validate(
    tenantID: String, model: ModelRef?, update: Update, updateMask: [String], idempotencyKey: String
  ) -> Result<UpdateModelCommand, RegistryError> {
    var problems: [FieldViolation] = []
    RegistryFieldRules.tenantID(tenantID, into: &problems)
    RegistryFieldRules.modelRef(model, into: &problems)
    var changes = ModelChanges()
    if updateMask.isEmpty {
      problems.append(FieldViolation("update_mask", .missing))
    } else if let unknown = updateMask.first(where: { !maskPaths.contains($0) }) {
      problems.append(FieldViolation("update_mask", .unknownMaskPath(unknown)))
    } else {
      let paths = Set(updateMask)
      if paths.contains("name") {
        RegistryFieldRules.modelName(update.name, field: "update.name", into: &problems)
        changes.name = update.name
      }
      if paths.contains("description") {
        RegistryFieldRules.description(update.description, field: "update.description", into: &problems)
        changes.description = update.description
      }
      if paths.contains("labels") {
        RegistryFieldRules.labels(update.labels, field: "update.labels", into: &problems)
        changes.labels = update.labels
      }
      if paths.contains("state") {
        if case .some(.some(let state)) = update.state {
          changes.state = state
        } else {
          problems.append(FieldViolation("update.state", .unknownState))
        }
      }
    }
    RegistryFieldRules.idempotencyKey(idempotencyKey, into: &problems)
    return RegistryFieldRules.finish(problems) {
      UpdateModelCommand(tenantID: tenantID, model: model!, changes: changes, idempotencyKey: idempotencyKey)
    }
  }

  public var fingerprint: String {
    var canonical = Canonical()
    canonical.add(model.description)
    canonical.add(changes.name.map { "set:" + $0 } ?? "keep")
    canonical.add(changes.description.map { "set:" + $0 } ?? "keep")
    if let labels = changes.labels { canonical.add(labels) } else { canonical.add("keep") }
    canonical.add(changes.state.map { "set:\($0.rawValue)" } ?? "keep")
    return canonical.fingerprint
  }
}

/// A validated DeleteModel.
public struct DeleteModelCommand: RegistryCommand, Hashable {
  public static let method = "DeleteModel"
  public var tenantID: String
  public var model: ModelRef
  public var force: Bool
  public var idempotencyKey: String

  public static func validate(tenantID: String, model: ModelRef?, force: Bool, idempotencyKey: String)
    -> Result<DeleteModelCommand, RegistryError>
  {
    var problems: [FieldViolation] = []
    RegistryFieldRules.tenantID(tenantID, into: &problems)
    RegistryFieldRules.modelRef(model, into: &problems)
    RegistryFieldRules.idempotencyKey(idempotencyKey, into: &problems)
    return RegistryFieldRules.finish(problems) {
      DeleteModelCommand(tenantID: tenantID, model: model!, force: force, idempotencyKey: idempotencyKey)
    }
  }

  public var fingerprint: String {
    var canonical = Canonical()
    canonical.add(model.description)
    canonical.add(force)
    return canonical.fingerprint
  }
}
