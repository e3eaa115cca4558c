import GRPCCore
import MaaSContracts
import GRPCShimTransport
import MaaSRuntime
import SwiftProtobuf

// The gateway's list answers are the registry's with the same field numbers and types
// (`maas.gateway.v1.ListModelsResponse` and `maas.registry.v1.ListModelsResponse` both hold
// `repeated maas.registry.v1.Model models = 1; string next_page_token = 2;`), so the bytes the
// registry sent are a valid gateway answer as they are (`EncodedMessage`, in MaaSRuntime).
// Decoding a page of 50 models into Swift values and encoding it again was a fifth of the
// gateway's CPU per ListModels (profiled at 64 callers). `PassThroughTests` checks that each pair
// of messages passed through reads the same either way.

// MARK: - The list methods, passed through

extension GatewayRPCService {
  /// ListModels as the registry answered it, still encoded.
  func forwardListModels(_ request: Maas_Gateway_V1_ListModelsRequest) async throws
    -> EncodedMessage<Maas_Gateway_V1_ListModelsResponse>
  {
    try await self.toRegistryChannel { tenantID, channel, timeout in
      try await channel.unary(
        Maas_Registry_V1_ListModelsRequest.with {
          $0.tenantID = tenantID
          $0.pageSize = request.pageSize
          $0.pageToken = request.pageToken
          $0.namePrefix = request.namePrefix
          $0.labelSelector = request.labelSelector
          $0.state = request.state
        }, metadata: timeout.metadata, descriptor: Maas_Registry_V1_ModelRegistry.Method.ListModels.descriptor,
        serializer: ProtobufMessageSerializer(), deserializer: EncodedMessageDeserializer<Maas_Registry_V1_ListModelsResponse>())
    }.reinterpreted(as: Maas_Gateway_V1_ListModelsResponse.self)
  }

  /// ListModelVersions as the registry answered it, still encoded.
  func forwardListModelVersions(_ request: Maas_Gateway_V1_ListModelVersionsRequest) async throws
    -> EncodedMessage<Maas_Gateway_V1_ListModelVersionsResponse>
  {
    try await self.toRegistryChannel { tenantID, channel, timeout in
      try await channel.unary(
        Maas_Registry_V1_ListModelVersionsRequest.with {
          $0.tenantID = tenantID
          if request.hasModel { $0.model = request.model }
          $0.pageSize = request.pageSize
          $0.pageToken = request.pageToken
          $0.labelSelector = request.labelSelector
        }, metadata: timeout.metadata, descriptor: Maas_Registry_V1_ModelRegistry.Method.ListModelVersions.descriptor,
        serializer: ProtobufMessageSerializer(),
        deserializer: EncodedMessageDeserializer<Maas_Registry_V1_ListModelVersionsResponse>())
    }.reinterpreted(as: Maas_Gateway_V1_ListModelVersionsResponse.self)
  }
}
