import GRPCCore
import MaaSContracts
import MaaSRuntime

/// `GatewayRPCService` as served: the generated registration, with every method whose request
/// carries text registered again (replacing the generated one) to decode with
/// `FieldNamingDeserializer`, so that text that is not UTF-8 is refused naming its field; and
/// ListModels and ListModelVersions answering with the registry's bytes (PassThrough.swift).
/// Interceptors see the same request types either way.
struct GatewayRoutes: RegistrableRPCService {
  let service: GatewayRPCService

  func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
    typealias Methods = Maas_Gateway_V1_Gateway.Method
    typealias Schemas = GatewayWireSchemas
    let service = self.service
    service.registerMethods(with: &router)
    router.registerUnary(
      Methods.ListModels.descriptor, deserializer: FieldNamingDeserializer(schema: Schemas.listModels),
      serializer: EncodedMessageSerializer()
    ) { request, _ in try await service.forwardListModels(request) }
    router.registerUnary(
      Methods.ListModelVersions.descriptor, deserializer: FieldNamingDeserializer(schema: Schemas.listVersions),
      serializer: EncodedMessageSerializer()
    ) { request, _ in try await service.forwardListModelVersions(request) }
    router.registerUnary(Methods.GetModel.descriptor, Schemas.getModel) { try await service.getModel(request: $0, context: $1) }
    router.registerUnary(Methods.CreateModel.descriptor, Schemas.createModel) { try await service.createModel(request: $0, context: $1) }
    router.registerUnary(Methods.UpdateModel.descriptor, Schemas.updateModel) { try await service.updateModel(request: $0, context: $1) }
    router.registerUnary(Methods.DeleteModel.descriptor, Schemas.deleteModel) { try await service.deleteModel(request: $0, context: $1) }
    router.registerUnary(Methods.CreateModelVersion.descriptor, Schemas.createVersion) {
      try await service.createModelVersion(request: $0, context: $1)
    }
    router.registerUnary(Methods.GetModelVersion.descriptor, Schemas.getVersion) {
      try await service.getModelVersion(request: $0, context: $1)
    }
    router.registerUnary(Methods.DeleteModelVersion.descriptor, Schemas.deleteVersion) {
      try await service.deleteModelVersion(request: $0, context: $1)
    }
    router.registerUnary(Methods.SetModelAlias.descriptor, Schemas.setAlias) { try await service.setModelAlias(request: $0, context: $1) }
    router.registerUnary(Methods.GetModelAlias.descriptor, Schemas.getAlias) { try await service.getModelAlias(request: $0, context: $1) }
    router.registerUnary(Methods.DeleteModelAlias.descriptor, Schemas.deleteAlias) {
      try await service.deleteModelAlias(request: $0, context: $1)
    }
  }
}

/// `AdminRPCService` as served: every method decoded with `FieldNamingDeserializer`.
struct AdminRoutes: RegistrableRPCService {
  let service: AdminRPCService

  func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
    typealias Methods = Maas_Gateway_V1_Admin.Method
    typealias Schemas = GatewayWireSchemas
    let service = self.service
    service.registerMethods(with: &router)
    router.registerUnary(Methods.CreateTenant.descriptor, Schemas.createTenant) { try await service.createTenant(request: $0, context: $1) }
    router.registerUnary(Methods.GetTenant.descriptor, Schemas.getTenant) { try await service.getTenant(request: $0, context: $1) }
    router.registerUnary(Methods.ListTenants.descriptor, Schemas.listTenants) { try await service.listTenants(request: $0, context: $1) }
    router.registerUnary(Methods.SetTenantQuota.descriptor, Schemas.setTenantQuota) {
      try await service.setTenantQuota(request: $0, context: $1)
    }
    router.registerUnary(Methods.CreateApiKey.descriptor, Schemas.createApiKey) { try await service.createApiKey(request: $0, context: $1) }
    router.registerUnary(Methods.ListApiKeys.descriptor, Schemas.listApiKeys) { try await service.listApiKeys(request: $0, context: $1) }
    router.registerUnary(Methods.RevokeApiKey.descriptor, Schemas.revokeApiKey) { try await service.revokeApiKey(request: $0, context: $1) }
  }
}
