import MaaSRuntime

/// The text fields of every request of registry.proto.
enum RegistryWireSchemas {
  typealias R = ResourceWireSchemas

  static let createModel = WireSchema([
    1: .string("tenant_id"), 2: .string("name"), 3: .string("description"), 4: .stringMap("labels"),
    5: .string("idempotency_key"),
  ])
  static let getModel = WireSchema([1: .string("tenant_id"), 2: .message("model", R.modelRef)])
  static let listModels = WireSchema([
    1: .string("tenant_id"), 3: .string("page_token"), 4: .string("name_prefix"), 5: .stringMap("label_selector"),
  ])
  static let updateModel = WireSchema([
    1: .string("tenant_id"), 2: .message("model", R.modelRef), 3: .message("update", R.model),
    4: .message("update_mask", R.fieldMask), 5: .string("idempotency_key"),
  ])
  static let deleteModel = WireSchema([1: .string("tenant_id"), 2: .message("model", R.modelRef), 4: .string("idempotency_key")])
  static let createVersion = WireSchema([
    1: .string("tenant_id"), 2: .message("model", R.modelRef), 3: .string("version"), 4: .message("artifact", R.artifact),
    5: .stringMap("labels"), 6: .string("idempotency_key"),
  ])
  static let getVersion = WireSchema([
    1: .string("tenant_id"), 2: .message("model", R.modelRef), 3: .message("version", R.versionRef),
  ])
  static let listVersions = WireSchema([
    1: .string("tenant_id"), 2: .message("model", R.modelRef), 4: .string("page_token"), 5: .stringMap("label_selector"),
  ])
  static let deleteVersion = WireSchema([
    1: .string("tenant_id"), 2: .message("model", R.modelRef), 3: .message("version", R.versionRef),
    4: .string("idempotency_key"),
  ])
  static let setAlias = WireSchema([
    1: .string("tenant_id"), 2: .message("model", R.modelRef), 3: .string("alias"), 4: .string("version"),
    5: .string("idempotency_key"),
  ])
  static let getAlias = WireSchema([1: .string("tenant_id"), 2: .message("model", R.modelRef), 3: .string("alias")])
  static let deleteAlias = WireSchema([
    1: .string("tenant_id"), 2: .message("model", R.modelRef), 3: .string("alias"), 4: .string("idempotency_key"),
  ])
}
