import GRPCCore
import MaaSContracts
import MaaSRuntime

/// The text fields of the requests of gateway.proto and admin.proto that carry any: what
/// `FieldNamingDeserializer` needs to answer "name: is not valid UTF-8" rather than SwiftProtobuf's
/// "Can't deserialize ...". GetQuota, GetUsage and the deployment calls (UNIMPLEMENTED) carry none
/// the gateway reads, and keep the generated registration.
enum GatewayWireSchemas {
  typealias R = ResourceWireSchemas

  static let listModels = WireSchema([2: .string("page_token"), 3: .string("name_prefix"), 4: .stringMap("label_selector")])
  static let getModel = WireSchema([1: .message("model", R.modelRef)])
  static let createModel = WireSchema([
    1: .string("name"), 2: .string("description"), 3: .stringMap("labels"), 4: .string("idempotency_key"),
  ])
  static let updateModel = WireSchema([
    1: .message("model", R.modelRef), 2: .message("update", R.model), 3: .message("update_mask", R.fieldMask),
    4: .string("idempotency_key"),
  ])
  static let deleteModel = WireSchema([1: .message("model", R.modelRef), 3: .string("idempotency_key")])
  static let createVersion = WireSchema([
    1: .message("model", R.modelRef), 2: .string("version"), 3: .message("artifact", R.artifact), 4: .stringMap("labels"),
    5: .string("idempotency_key"),
  ])
  static let getVersion = WireSchema([1: .message("model", R.modelRef), 2: .message("version", R.versionRef)])
  static let listVersions = WireSchema([
    1: .message("model", R.modelRef), 3: .string("page_token"), 4: .stringMap("label_selector"),
  ])
  static let deleteVersion = WireSchema([
    1: .message("model", R.modelRef), 2: .message("version", R.versionRef), 3: .string("idempotency_key"),
  ])
  static let setAlias = WireSchema([
    1: .message("model", R.modelRef), 2: .string("alias"), 3: .string("version"), 4: .string("idempotency_key"),
  ])
  static let getAlias = WireSchema([1: .message("model", R.modelRef), 2: .string("alias")])
  static let deleteAlias = WireSchema([1: .message("model", R.modelRef), 2: .string("alias"), 3: .string("idempotency_key")])

  static let createTenant = WireSchema([1: .string("name"), 2: .string("display_name"), 4: .string("idempotency_key")])
  static let getTenant = WireSchema([1: .string("id"), 2: .string("name")])
  static let listTenants = WireSchema([2: .string("page_token"), 3: .string("name_prefix")])
  static let setTenantQuota = WireSchema([1: .string("tenant_id"), 4: .string("idempotency_key")])
  static let createApiKey = WireSchema([1: .string("tenant_id"), 2: .string("name"), 4: .string("idempotency_key")])
  static let listApiKeys = WireSchema([1: .string("tenant_id"), 3: .string("page_token")])
  static let revokeApiKey = WireSchema([1: .string("tenant_id"), 2: .string("key_id"), 3: .string("idempotency_key")])
}
