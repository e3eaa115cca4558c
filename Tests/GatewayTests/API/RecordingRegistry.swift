import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import SwiftProtobuf
import Synchronization
@testable import Gateway

/// A stand-in for `maas-registry` that records what it is asked, so tests can check what the
/// gateway forwards: the tenant, every field, and (through `deadlines`) the timeout.
///
/// Answers: models echo the request with the tenant it named; a model named "missing" is
/// NOT_FOUND, "busy" FAILED_PRECONDITION, "down" UNAVAILABLE, as the real registry would say
/// them, and "slow" answers only after 4 seconds.
final class RecordingRegistry: Maas_Registry_V1_ModelRegistry.SimpleServiceProtocol {
  struct Received: @unchecked Sendable {
    var method: String
    var tenantID: String
    var message: any SwiftProtobuf.Message
  }

  private let received = Mutex<[Received]>([])
  private let timeouts = Mutex<[(method: String, timeout: Duration?)]>([])

  /// Every request, oldest first.
  var requests: [Received] { received.withLock { $0 } }

  /// The `grpc-timeout` of every call, oldest first (nil: none sent).
  var deadlines: [(method: String, timeout: Duration?)] { timeouts.withLock { $0 } }

  /// The service with the interceptor that records deadlines, ready to serve.
  var service: GuardedService {
    GuardedService(self, descriptor: Maas_Registry_V1_ModelRegistry.descriptor, interceptors: [DeadlineRecorder(registry: self)])
  }

  private func record(_ method: String, _ tenantID: String, _ message: any SwiftProtobuf.Message) {
    received.withLock { $0.append(Received(method: method, tenantID: tenantID, message: message)) }
  }

  fileprivate func recordTimeout(_ method: String, _ timeout: Duration?) {
    timeouts.withLock { $0.append((method, timeout)) }
  }

  private func model(_ ref: Maas_Registry_V1_ModelRef, tenant: String) throws -> Maas_Registry_V1_Model {
    switch ref.name {
    case "missing": throw RPCError(code: .notFound, message: "model: no model \"missing\"")
    case "busy": throw RPCError(code: .failedPrecondition, message: "model: has 2 versions; delete them or use force")
    case "down": throw RPCError(code: .unavailable, message: "the registry database at 10.0.0.7:5432 is unavailable")
    default: break
    }
    return .with {
      $0.id = "model-1"
      $0.tenantID = tenant
      $0.name = ref.name
      $0.state = .active
    }
  }

  func createModel(request: Maas_Registry_V1_CreateModelRequest, context: ServerContext) async throws -> Maas_Registry_V1_Model {
    record("CreateModel", request.tenantID, request)
    return .with {
      $0.id = "model-1"
      $0.tenantID = request.tenantID
      $0.name = request.name
      $0.description_p = request.description_p
      $0.labels = request.labels
      $0.state = .active
    }
  }

  func getModel(request: Maas_Registry_V1_GetModelRequest, context: ServerContext) async throws -> Maas_Registry_V1_Model {
    record("GetModel", request.tenantID, request)
    // Answers after the gateway's bounds in the tests: a service that hangs.
    if request.model.name == "slow" { try await Task.sleep(for: .seconds(4)) }
    return try model(request.model, tenant: request.tenantID)
  }

  func listModels(request: Maas_Registry_V1_ListModelsRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_ListModelsResponse
  {
    record("ListModels", request.tenantID, request)
    return .with {
      $0.models = [try! model(.with { $0.name = "first" }, tenant: request.tenantID)]
      $0.nextPageToken = "next"
    }
  }

  func updateModel(request: Maas_Registry_V1_UpdateModelRequest, context: ServerContext) async throws -> Maas_Registry_V1_Model {
    record("UpdateModel", request.tenantID, request)
    var model = try model(request.model, tenant: request.tenantID)
    model.description_p = request.update.description_p
    return model
  }

  func deleteModel(request: Maas_Registry_V1_DeleteModelRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_DeleteModelResponse
  {
    record("DeleteModel", request.tenantID, request)
    return Maas_Registry_V1_DeleteModelResponse()
  }

  func createModelVersion(request: Maas_Registry_V1_CreateModelVersionRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_ModelVersion
  {
    record("CreateModelVersion", request.tenantID, request)
    return .with {
      $0.id = "version-1"
      $0.modelID = "model-1"
      $0.version = request.version
      $0.artifact = request.artifact
    }
  }

  func getModelVersion(request: Maas_Registry_V1_GetModelVersionRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_ModelVersion
  {
    record("GetModelVersion", request.tenantID, request)
    return .with { $0.id = "version-1" }
  }

  func listModelVersions(request: Maas_Registry_V1_ListModelVersionsRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_ListModelVersionsResponse
  {
    record("ListModelVersions", request.tenantID, request)
    return Maas_Registry_V1_ListModelVersionsResponse()
  }

  func deleteModelVersion(request: Maas_Registry_V1_DeleteModelVersionRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_DeleteModelVersionResponse
  {
    record("DeleteModelVersion", request.tenantID, request)
    return Maas_Registry_V1_DeleteModelVersionResponse()
  }

  func setModelAlias(request: Maas_Registry_V1_SetModelAliasRequest, context: ServerContext) async throws -> Maas_Registry_V1_Alias {
    record("SetModelAlias", request.tenantID, request)
    return .with {
      $0.name = request.alias
      $0.version = request.version
    }
  }

  func getModelAlias(request: Maas_Registry_V1_GetModelAliasRequest, context: ServerContext) async throws -> Maas_Registry_V1_Alias {
    record("GetModelAlias", request.tenantID, request)
    return .with { $0.name = request.alias }
  }

  func deleteModelAlias(request: Maas_Registry_V1_DeleteModelAliasRequest, context: ServerContext) async throws
    -> Maas_Registry_V1_DeleteModelAliasResponse
  {
    record("DeleteModelAlias", request.tenantID, request)
    return Maas_Registry_V1_DeleteModelAliasResponse()
  }
}

/// Records each call's `grpc-timeout` before the registry stub answers it.
private struct DeadlineRecorder: ServerInterceptor {
  let registry: RecordingRegistry

  func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    let header = request.metadata[stringValues: "grpc-timeout"].first(where: { _ in true })
    registry.recordTimeout(context.descriptor.method, header.flatMap(CallTimeout.duration(parsing:)))
    return try await next(request, context)
  }
}
