public import GRPCCore
public import Logging
public import MaaSContracts
import Foundation
import SwiftProtobuf

/// `maas.scheduler.v1.Scheduler` over gRPC: validate, translate wire <-> domain, map errors.
/// The deployment RPCs and WatchDeployment belong to a later issue and answer UNIMPLEMENTED.
public struct SchedulerRPCService: Maas_Scheduler_V1_Scheduler.SimpleServiceProtocol {
  let store: SchedulerStore
  let tokens: SchedulerPageTokens
  let logger: Logger

  public init(store: SchedulerStore, tokens: SchedulerPageTokens, logger: Logger) {
    self.store = store
    self.tokens = tokens
    self.logger = logger
  }

  // MARK: - Inventory

  public func registerNode(request: Maas_Scheduler_V1_RegisterNodeRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_Node
  {
    try await answer(context) {
      guard request.hasNode else { throw SchedulerError.invalidRequest([FieldViolation("node", "is required")]) }
      let command = try RegisterNodeCommand.validate(
        name: request.node.name, labels: request.node.labels, gpus: request.node.gpus.map(GPU.init(proto:))
      ).get()
      return Maas_Scheduler_V1_Node(try await store.registerNode(command))
    }
  }

  public func heartbeat(request: Maas_Scheduler_V1_HeartbeatRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_HeartbeatResponse
  {
    try await answer(context) {
      try Self.requireNodeName(request.nodeName)
      let state = try await store.heartbeat(request.nodeName)
      // Heartbeat at a third of the grace period: two may be lost before the node is NOT_READY.
      let interval = store.heartbeatGrace / 3
      return .with {
        $0.state = .init(state)
        $0.heartbeatInterval = Google_Protobuf_Duration(seconds: max(1, interval.components.seconds))
      }
    }
  }

  public func cordonNode(request: Maas_Scheduler_V1_CordonNodeRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_Node
  {
    try await answer(context) {
      try Self.requireNodeName(request.nodeName)
      return Maas_Scheduler_V1_Node(try await store.setCordon(request.nodeName, cordoned: true, reason: request.reason))
    }
  }

  public func uncordonNode(request: Maas_Scheduler_V1_UncordonNodeRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_Node
  {
    try await answer(context) {
      try Self.requireNodeName(request.nodeName)
      return Maas_Scheduler_V1_Node(try await store.setCordon(request.nodeName, cordoned: false))
    }
  }

  public func drainNode(request: Maas_Scheduler_V1_DrainNodeRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_DrainNodeResponse
  {
    try await answer(context) {
      try Self.requireNodeName(request.nodeName)
      let (node, allocations) = try await store.drain(request.nodeName, reason: request.reason)
      return .with {
        $0.node = Maas_Scheduler_V1_Node(node)
        $0.allocations = allocations.map(Maas_Scheduler_V1_Allocation.init)
      }
    }
  }

  public func deleteNode(request: Maas_Scheduler_V1_DeleteNodeRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_DeleteNodeResponse
  {
    try await answer(context) {
      try Self.requireNodeName(request.nodeName)
      try await store.deleteNode(request.nodeName)
      return Maas_Scheduler_V1_DeleteNodeResponse()
    }
  }

  public func getNode(request: Maas_Scheduler_V1_GetNodeRequest, context: ServerContext) async throws -> Maas_Scheduler_V1_Node {
    try await answer(context) {
      try Self.requireNodeName(request.nodeName)
      return Maas_Scheduler_V1_Node(try await store.node(request.nodeName))
    }
  }

  public func listNodes(request: Maas_Scheduler_V1_ListNodesRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_ListNodesResponse
  {
    try await answer(context) {
      var problems = Self.pageSize(request.pageSize)
      problems += Rules.labels("label_selector", request.labelSelector)
      var after = ""
      let listing = SchedulerPageTokens.nodes(state: request.state.rawValue, gpuModel: request.gpuModel, labels: request.labelSelector)
      if !request.pageToken.isEmpty {
        if let position = tokens.nodePosition(request.pageToken, in: listing) {
          after = position
        } else {
          problems.append(FieldViolation("page_token", "is not an unaltered token of this listing with these filters"))
        }
      }
      if case .UNRECOGNIZED = request.state { problems.append(FieldViolation("state", "is not a node state")) }
      guard problems.isEmpty else { throw SchedulerError.invalidRequest(problems) }
      let limit = Int(request.pageSize)
      let nodes = try await store.listNodes(
        after: after, limit: limit, state: request.state.domain, selector: request.labelSelector, gpuModel: request.gpuModel)
      return .with {
        $0.nodes = nodes.map(Maas_Scheduler_V1_Node.init)
        if nodes.count == limit, let last = nodes.last {
          $0.nextPageToken = tokens.token(afterNode: last.node.name, in: listing)
        }
      }
    }
  }

  public func getCapacity(request: Maas_Scheduler_V1_GetCapacityRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_GetCapacityResponse
  {
    try await answer(context) {
      let problems = Rules.labels("label_selector", request.labelSelector)
      guard problems.isEmpty else { throw SchedulerError.invalidRequest(problems) }
      return .with {
        $0.capacity = store.capacity(gpuModel: request.gpuModel, selector: request.labelSelector).map(Maas_Scheduler_V1_GpuCapacity.init)
      }
    }
  }

  // MARK: - Placement

  public func schedule(request: Maas_Scheduler_V1_ScheduleRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_Allocation
  {
    try await answer(context) {
      let sharing = SharingMode(proto: request.gpu.sharing)
      var policyProblem: [FieldViolation] = []
      let policy = PlacementPolicy(proto: request.policy)
      if policy == nil && request.policy != .unspecified { policyProblem.append(FieldViolation("policy", "is not a placement policy")) }
      let gpu = request.hasGpu
        ? GPURequest(
          count: Int(request.gpu.count), gpuType: request.gpu.gpuType, minMemoryBytes: request.gpu.minMemoryBytes,
          sharing: sharing ?? .exclusive, migProfile: request.gpu.migProfile)
        : nil
      let validated = ScheduleCommand.validate(
        tenantID: request.tenantID, workloadID: request.workloadID, replicas: request.replicas, gpu: gpu,
        sharingGiven: sharing != nil, policy: policy, priority: request.priority, nodeSelector: request.nodeSelector)
      switch validated {
      case .failure(.invalidRequest(let problems)): throw SchedulerError.invalidRequest(problems + policyProblem)
      case .failure(let error): throw error
      case .success(let command):
        if !policyProblem.isEmpty { throw SchedulerError.invalidRequest(policyProblem) }
        return Maas_Scheduler_V1_Allocation(try await store.schedule(command))
      }
    }
  }

  public func release(request: Maas_Scheduler_V1_ReleaseRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_Allocation
  {
    try await answer(context) {
      var problems = Rules.tenant(request.tenantID)
      // Release is idempotent by the allocation's own state (a repeat returns the released
      // allocation), so the key is checked for shape but not stored.
      problems += Rules.key("idempotency_key", request.idempotencyKey)
      let ref = Self.ref(request.target)
      if case .failure(.invalidRequest(let more)) = ref { problems += more }
      guard problems.isEmpty else { throw SchedulerError.invalidRequest(problems) }
      return Maas_Scheduler_V1_Allocation(try await store.release(tenant: request.tenantID, try ref.get()))
    }
  }

  public func getAllocation(request: Maas_Scheduler_V1_GetAllocationRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_Allocation
  {
    try await answer(context) {
      var problems = Rules.tenant(request.tenantID)
      let target: Maas_Scheduler_V1_ReleaseRequest.OneOf_Target? =
        switch request.target {
        case .allocationID(let id): .allocationID(id)
        case .workloadID(let workload): .workloadID(workload)
        case nil: nil
        }
      let ref = Self.ref(target)
      if case .failure(.invalidRequest(let more)) = ref { problems += more }
      guard problems.isEmpty else { throw SchedulerError.invalidRequest(problems) }
      return Maas_Scheduler_V1_Allocation(try await store.allocation(tenant: request.tenantID, try ref.get()))
    }
  }

  public func listAllocations(request: Maas_Scheduler_V1_ListAllocationsRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_ListAllocationsResponse
  {
    try await answer(context) {
      var problems = Self.pageSize(request.pageSize)
      if request.tenantID.utf8.count > 128 { problems.append(FieldViolation("tenant_id", "at most 128 bytes")) }
      var after: (Date, UUID)?
      let listing = SchedulerPageTokens.allocations(
        tenant: request.tenantID, node: request.nodeName, state: request.state == .released ? .released : .active)
      if !request.pageToken.isEmpty {
        after = tokens.allocationCursor(request.pageToken, in: listing)
        if after == nil { problems.append(FieldViolation("page_token", "is not an unaltered token of this listing with these filters")) }
      }
      let state: AllocationState
      switch request.state {
      case .unspecified, .active: state = .active
      case .released: state = .released
      default:
        state = .active
        problems.append(FieldViolation("state", "is not an allocation state"))
      }
      guard problems.isEmpty else { throw SchedulerError.invalidRequest(problems) }
      let limit = Int(request.pageSize)
      let allocations = try await store.listAllocations(
        tenant: request.tenantID, node: request.nodeName, state: state, after: after, limit: limit)
      return .with {
        $0.allocations = allocations.map(Maas_Scheduler_V1_Allocation.init)
        if allocations.count == limit, let last = allocations.last {
          $0.nextPageToken = tokens.token(after: last, in: listing)
        }
      }
    }
  }

  // MARK: - Deployments: a later issue

  public func createDeployment(request: Maas_Scheduler_V1_CreateDeploymentRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_Deployment
  { throw Self.later }

  public func getDeployment(request: Maas_Scheduler_V1_GetDeploymentRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_Deployment
  { throw Self.later }

  public func listDeployments(request: Maas_Scheduler_V1_ListDeploymentsRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_ListDeploymentsResponse
  { throw Self.later }

  public func updateDeployment(request: Maas_Scheduler_V1_UpdateDeploymentRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_Deployment
  { throw Self.later }

  public func promoteDeployment(request: Maas_Scheduler_V1_PromoteDeploymentRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_Deployment
  { throw Self.later }

  public func rollbackDeployment(request: Maas_Scheduler_V1_RollbackDeploymentRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_Deployment
  { throw Self.later }

  public func scaleDeployment(request: Maas_Scheduler_V1_ScaleDeploymentRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_Deployment
  { throw Self.later }

  public func deleteDeployment(request: Maas_Scheduler_V1_DeleteDeploymentRequest, context: ServerContext) async throws
    -> Maas_Scheduler_V1_DeleteDeploymentResponse
  { throw Self.later }

  public func watchDeployment(
    request: Maas_Scheduler_V1_WatchDeploymentRequest, response: RPCWriter<Maas_Scheduler_V1_DeploymentEvent>,
    context: ServerContext
  ) async throws { throw Self.later }

  static let later = RPCError(code: .unimplemented, message: "deployments are not implemented yet")

  // MARK: - Helpers

  static func requireNodeName(_ name: String) throws {
    let problems = Rules.nodeName("node_name", name)
    if !problems.isEmpty { throw SchedulerError.invalidRequest(problems) }
  }

  static func pageSize(_ size: Int32) -> [FieldViolation] {
    size < 1 || size > 1000 ? [FieldViolation("page_size", "must be 1 to 1000 (got \(size))")] : []
  }

  static func ref(_ target: Maas_Scheduler_V1_ReleaseRequest.OneOf_Target?) -> Result<AllocationRef, SchedulerError> {
    switch target {
    case .allocationID(let id): Rules.allocation(id, workload: nil)
    case .workloadID(let workload): Rules.allocation(nil, workload: workload)
    case nil: Rules.allocation(nil, workload: nil)
    }
  }

  private func answer<Response>(_ context: ServerContext, _ body: () async throws -> Response) async throws -> Response {
    do {
      return try await body()
    } catch {
      throw SchedulerStatus.rpcError(for: error, method: context.descriptor.method, logger: logger)
    }
  }
}
