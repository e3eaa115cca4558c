public import GRPCCore
public import Logging
public import MaaSContracts
import MaaSRuntime
import SwiftProtobuf

/// `maas.registry.v1.ModelRegistry` over gRPC: the edge where requests become validated domain
/// commands, the store decides, and answers and errors become messages and statuses. Nothing
/// here decides anything about models.
public struct RegistryRPCService: Maas_Registry_V1_ModelRegistry.SimpleServiceProtocol {
  let store: RegistryStore
  let tokens: PageTokens
  let logger: Logger

  /// - Parameter tokens: seals and opens page tokens; every replica needs the same secret.
  public init(store: RegistryStore, tokens: PageTokens, logger: Logger) {
    self.store = store
    self.tokens = tokens
    self.logger = logger
  }

  public func createModel(request: Maas_Registry_V1_CreateModelRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_Model
  {
    try await answer(context) {
      let command = try CreateModelCommand.validate(
        tenantID: request.tenantID, name: request.name, description: request.description_p, labels: request.labels,
        idempotencyKey: request.idempotencyKey
      ).get()
      return Maas_Registry_V1_Model(try await store.createModel(command))
    }
  }

  public func getModel(request: Maas_Registry_V1_GetModelRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_Model
  {
    try await answer(context) {
      let query = try ModelQuery.validate(tenantID: request.tenantID, model: ModelRef(proto: request.modelIfSet)).get()
      return Maas_Registry_V1_Model(try await store.model(query))
    }
  }

  /// ListModels for callers in code: the served answer (`encodedListModels`), decoded.
  public func listModels(request: Maas_Registry_V1_ListModelsRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_ListModelsResponse
  {
    try await self.encodedListModels(request: request, context: context).decoded()
  }

  /// ListModels as served: the answer encoded, and encoded only once for a page the store keeps
  /// (so a page answered from the store's listing cache costs no encoding either; encoding 50
  /// models was an eighth of the registry's CPU per cached page).
  func encodedListModels(request: Maas_Registry_V1_ListModelsRequest, context: ServerContext) async throws
    -> EncodedMessage<Maas_Registry_V1_ListModelsResponse>
  {
    try await answer(context) {
      let query = try listModelsQuery(request)
      return try await store.listModels(query) { try EncodedMessage(encoding: listModelsResponse($0, query)) }
    }
  }

  private func listModelsQuery(_ request: Maas_Registry_V1_ListModelsRequest) throws -> ListModelsQuery {
    try ListModelsQuery.validate(
      tenantID: request.tenantID, pageSize: request.pageSize, pageToken: request.pageToken,
      namePrefix: request.namePrefix, labelSelector: request.labelSelector, state: ModelState.from(proto: request.state),
      tokens: tokens
    ).get()
  }

  private func listModelsResponse(_ page: Page<Model, ModelCursor>, _ query: ListModelsQuery) -> Maas_Registry_V1_ListModelsResponse {
    .with {
      $0.models = page.items.map(Maas_Registry_V1_Model.init)
      if let next = page.next { $0.nextPageToken = tokens.token(after: next, in: query.listing) }
    }
  }

  public func updateModel(request: Maas_Registry_V1_UpdateModelRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_Model
  {
    try await answer(context) {
      let update = UpdateModelCommand.Update(
        name: request.update.name, description: request.update.description_p, labels: request.update.labels,
        state: ModelState.from(proto: request.update.state))
      let command = try UpdateModelCommand.validate(
        tenantID: request.tenantID, model: ModelRef(proto: request.modelIfSet), update: update,
        updateMask: request.updateMask.paths, idempotencyKey: request.idempotencyKey
      ).get()
      return Maas_Registry_V1_Model(try await store.updateModel(command))
    }
  }

  public func deleteModel(request: Maas_Registry_V1_DeleteModelRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_DeleteModelResponse
  {
    try await answer(context) {
      let command = try DeleteModelCommand.validate(
        tenantID: request.tenantID, model: ModelRef(proto: request.modelIfSet), force: request.force,
        idempotencyKey: request.idempotencyKey
      ).get()
      try await store.deleteModel(command)
      return Maas_Registry_V1_DeleteModelResponse()
    }
  }

  public func createModelVersion(request: Maas_Registry_V1_CreateModelVersionRequest, context: ServerContext)
    async throws -> Maas_Registry_V1_ModelVersion
  {
    try await answer(context) {
      let command = try CreateVersionCommand.validate(
        tenantID: request.tenantID, model: ModelRef(proto: request.modelIfSet), version: request.version,
        artifact: request.hasArtifact ? Artifact(proto: request.artifact) : nil, labels: request.labels,
        idempotencyKey: request.idempotencyKey
      ).get()
      return Maas_Registry_V1_ModelVersion(try await store.createVersion(command))
    }
  }

  public func getModelVersion(request: Maas_Registry_V1_GetModelVersionRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_ModelVersion
  {
    try await answer(context) {
      let query = try VersionQuery.validate(
        tenantID: request.tenantID, model: ModelRef(proto: request.modelIfSet),
        version: VersionRef(proto: request.hasVersion ? request.version : nil)
      ).get()
      return Maas_Registry_V1_ModelVersion(try await store.version(query))
    }
  }

  public func listModelVersions(request: Maas_Registry_V1_ListModelVersionsRequest, context: ServerContext)
    async throws -> Maas_Registry_V1_ListModelVersionsResponse
  {
    try await answer(context) {
      let query = try ListVersionsQuery.validate(
        tenantID: request.tenantID, model: ModelRef(proto: request.modelIfSet), pageSize: request.pageSize,
        pageToken: request.pageToken, labelSelector: request.labelSelector, tokens: tokens
      ).get()
      let page = try await store.listVersions(query)
      return .with {
        $0.versions = page.items.map(Maas_Registry_V1_ModelVersion.init)
        if let next = page.next { $0.nextPageToken = tokens.token(after: next, in: query.listing) }
      }
    }
  }

  public func deleteModelVersion(request: Maas_Registry_V1_DeleteModelVersionRequest, context: ServerContext)
    async throws -> Maas_Registry_V1_DeleteModelVersionResponse
  {
    try await answer(context) {
      let command = try DeleteVersionCommand.validate(
        tenantID: request.tenantID, model: ModelRef(proto: request.modelIfSet),
        version: VersionRef(proto: request.hasVersion ? request.version : nil), idempotencyKey: request.idempotencyKey
      ).get()
      try await store.deleteVersion(command)
      return Maas_Registry_V1_DeleteModelVersionResponse()
    }
  }

  public func setModelAlias(request: Maas_Registry_V1_SetModelAliasRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_Alias
  {
    try await answer(context) {
      let command = try SetAliasCommand.validate(
        tenantID: request.tenantID, model: ModelRef(proto: request.modelIfSet), alias: request.alias,
        version: request.version, idempotencyKey: request.idempotencyKey
      ).get()
      return Maas_Registry_V1_Alias(try await store.setAlias(command))
    }
  }

  public func getModelAlias(request: Maas_Registry_V1_GetModelAliasRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_Alias
  {
    try await answer(context) {
      let query = try AliasQuery.validate(
        tenantID: request.tenantID, model: ModelRef(proto: request.modelIfSet), alias: request.alias
      ).get()
      return Maas_Registry_V1_Alias(try await store.alias(query))
    }
  }

  public func deleteModelAlias(request: Maas_Registry_V1_DeleteModelAliasRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_DeleteModelAliasResponse
  {
    try await answer(context) {
      let command = try DeleteAliasCommand.validate(
        tenantID: request.tenantID, model: ModelRef(proto: request.modelIfSet), alias: request.alias,
        idempotencyKey: request.idempotencyKey
      ).get()
      try await store.deleteAlias(command)
      return Maas_Registry_V1_DeleteModelAliasResponse()
    }
  }

  /// Runs a handler body and turns whatever it throws into the status the contract names.
  private func answer<Response>(_ context: ServerContext, _ body: () async throws -> Response) async throws -> Response {
    do {
      return try await body()
    } catch {
      throw RegistryStatus.rpcError(for: error, method: context.descriptor.method, logger: logger)
    }
  }
}

extension RegistryRPCService {
  /// The generated registration, with this module's coders: requests whose text is not UTF-8
  /// are refused naming the field (see `FieldNamingDeserializer`, in MaaSRuntime).
  public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
    typealias Methods = Maas_Registry_V1_ModelRegistry.Method
    typealias Schemas = RegistryWireSchemas
    router.registerUnary(Methods.CreateModel.descriptor, Schemas.createModel) { try await self.createModel(request: $0, context: $1) }
    router.registerUnary(Methods.GetModel.descriptor, Schemas.getModel) { try await self.getModel(request: $0, context: $1) }
    router.registerUnary(
      Methods.ListModels.descriptor, deserializer: FieldNamingDeserializer(schema: Schemas.listModels),
      serializer: EncodedMessageSerializer()
    ) { try await self.encodedListModels(request: $0, context: $1) }
    router.registerUnary(Methods.UpdateModel.descriptor, Schemas.updateModel) { try await self.updateModel(request: $0, context: $1) }
    router.registerUnary(Methods.DeleteModel.descriptor, Schemas.deleteModel) { try await self.deleteModel(request: $0, context: $1) }
    router.registerUnary(Methods.CreateModelVersion.descriptor, Schemas.createVersion) {
      try await self.createModelVersion(request: $0, context: $1)
    }
    router.registerUnary(Methods.GetModelVersion.descriptor, Schemas.getVersion) {
      try await self.getModelVersion(request: $0, context: $1)
    }
    router.registerUnary(Methods.ListModelVersions.descriptor, Schemas.listVersions) {
      try await self.listModelVersions(request: $0, context: $1)
    }
    router.registerUnary(Methods.DeleteModelVersion.descriptor, Schemas.deleteVersion) {
      try await self.deleteModelVersion(request: $0, context: $1)
    }
    router.registerUnary(Methods.SetModelAlias.descriptor, Schemas.setAlias) { try await self.setModelAlias(request: $0, context: $1) }
    router.registerUnary(Methods.GetModelAlias.descriptor, Schemas.getAlias) { try await self.getModelAlias(request: $0, context: $1) }
    router.registerUnary(Methods.DeleteModelAlias.descriptor, Schemas.deleteAlias) {
      try await self.deleteModelAlias(request: $0, context: $1)
    }
  }
}

extension Maas_Registry_V1_GetModelRequest { var modelIfSet: Maas_Registry_V1_ModelRef? { hasModel ? model : nil } }
extension Maas_Registry_V1_UpdateModelRequest { var modelIfSet: Maas_Registry_V1_ModelRef? { hasModel ? model : nil } }
extension Maas_Registry_V1_DeleteModelRequest { var modelIfSet: Maas_Registry_V1_ModelRef? { hasModel ? model : nil } }
extension Maas_Registry_V1_CreateModelVersionRequest { var modelIfSet: Maas_Registry_V1_ModelRef? { hasModel ? model : nil } }
extension Maas_Registry_V1_GetModelVersionRequest { var modelIfSet: Maas_Registry_V1_ModelRef? { hasModel ? model : nil } }
extension Maas_Registry_V1_ListModelVersionsRequest { var modelIfSet: Maas_Registry_V1_ModelRef? { hasModel ? model : nil } }
extension Maas_Registry_V1_DeleteModelVersionRequest { var modelIfSet: Maas_Registry_V1_ModelRef? { hasModel ? model : nil } }
extension Maas_Registry_V1_SetModelAliasRequest { var modelIfSet: Maas_Registry_V1_ModelRef? { hasModel ? model : nil } }
extension Maas_Registry_V1_GetModelAliasRequest { var modelIfSet: Maas_Registry_V1_ModelRef? { hasModel ? model : nil } }
extension Maas_Registry_V1_DeleteModelAliasRequest { var modelIfSet: Maas_Registry_V1_ModelRef? { hasModel ? model : nil } }
