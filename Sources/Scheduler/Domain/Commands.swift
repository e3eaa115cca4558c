public import Foundation

/// Schedule, validated field by field (every problem at once); what no node could give is
/// checked later against the fleet by `PlacementEngine`.
public struct ScheduleCommand: Sendable, Hashable {
  public static let maxReplicas = 1000

  public var tenantID: String
  public var workloadID: String
  public var request: PlacementRequest
  public var priority: Int

  public init(tenantID: String, workloadID: String, request: PlacementRequest, priority: Int = 0) {
    self.tenantID = tenantID
    self.workloadID = workloadID
    self.request = request
    self.priority = priority
  }

  /// The CONCURRENT_GPUS a Schedule of this request takes at the quota service.
  var quotaAmount: Int64 { Int64(request.replicas * request.gpu.concurrentGPUsPerReplica) }

  /// - Parameters: as the wire has them; `sharing` nil when unspecified, `policy` nil for the
  ///   default (LEAST_LOADED).
  public static func validate(
    tenantID: String, workloadID: String, replicas: Int32, gpu: GPURequest?, sharingGiven: Bool, policy: PlacementPolicy?,
    priority: Int32, nodeSelector: [String: String]
  ) -> Result<ScheduleCommand, SchedulerError> {
    var problems: [FieldViolation] = []
    problems += Rules.tenant(tenantID)
    problems += Rules.key("workload_id", workloadID)
    if replicas < 1 || replicas > Int32(maxReplicas) {
      problems.append(FieldViolation("replicas", "must be 1 to \(maxReplicas) (got \(replicas))"))
    }
    if priority < 0 || priority > 1000 { problems.append(FieldViolation("priority", "must be 0 to 1000 (got \(priority))")) }
    problems += Rules.labels("node_selector", nodeSelector)
    var request = gpu ?? GPURequest(sharing: .exclusive)
    if gpu == nil {
      problems.append(FieldViolation("gpu", "is required"))
    } else if !sharingGiven {
      problems.append(FieldViolation("gpu.sharing", "is required: EXCLUSIVE, SHARED or MIG"))
    } else {
      switch request.sharing {
      case .exclusive:
        if request.count < 1 || request.count > 64 { problems.append(FieldViolation("gpu.count", "must be 1 to 64 for EXCLUSIVE (got \(request.count))")) }
        if request.minMemoryBytes < 0 { problems.append(FieldViolation("gpu.min_memory_bytes", "must not be negative")) }
        if !request.migProfile.isEmpty { problems.append(FieldViolation("gpu.mig_profile", "is for MIG only")) }
      case .shared, .mig:
        if request.count == 0 { request.count = 1 }
        if request.count != 1 { problems.append(FieldViolation("gpu.count", "must be 1 (or 0) for \(request.sharing == .shared ? "SHARED" : "MIG") (got \(request.count))")) }
        if request.sharing == .shared && request.minMemoryBytes <= 0 {
          problems.append(FieldViolation("gpu.min_memory_bytes", "is required for SHARED: the memory each replica takes, > 0"))
        }
        if request.sharing == .shared && !request.migProfile.isEmpty { problems.append(FieldViolation("gpu.mig_profile", "is for MIG only")) }
        if request.sharing == .mig && request.migProfile.isEmpty { problems.append(FieldViolation("gpu.mig_profile", "is required for MIG")) }
      }
    }
    guard problems.isEmpty else { return .failure(.invalidRequest(problems)) }
    return .success(ScheduleCommand(
      tenantID: tenantID, workloadID: workloadID,
      request: PlacementRequest(replicas: Int(replicas), gpu: request, policy: policy ?? .leastLoaded, nodeSelector: nodeSelector),
      priority: Int(priority)))
  }
}

/// RegisterNode, validated: name, labels, GPUs (uuids unique within the request).
public struct RegisterNodeCommand: Sendable, Hashable {
  public var name: String
  public var labels: [String: String]
  public var gpus: [GPU]

  public static func validate(name: String, labels: [String: String], gpus: [GPU]) -> Result<RegisterNodeCommand, SchedulerError> {
    var problems = Rules.nodeName("node.name", name)
    problems += Rules.labels("node.labels", labels)
    if gpus.isEmpty { problems.append(FieldViolation("node.gpus", "at least one GPU is required")) }
    if gpus.count > 64 { problems.append(FieldViolation("node.gpus", "at most 64 GPUs per node (got \(gpus.count))")) }
    var seen: [String: Int] = [:]
    for (index, gpu) in gpus.enumerated() {
      let field = "node.gpus[\(index)]"
      if gpu.uuid.isEmpty || gpu.uuid.utf8.count > 128 || Rules.hasControl(gpu.uuid) {
        problems.append(FieldViolation("\(field).uuid", "is required, 1 to 128 bytes, no control characters"))
      } else if let first = seen[gpu.uuid] {
        problems.append(FieldViolation("\(field).uuid", "\"\(gpu.uuid)\" repeats node.gpus[\(first)].uuid"))
      } else {
        seen[gpu.uuid] = index
      }
      if gpu.model.isEmpty || gpu.model.utf8.count > 64 || Rules.hasControl(gpu.model) {
        problems.append(FieldViolation("\(field).model", "is required, 1 to 64 bytes, no control characters"))
      }
      if gpu.memoryBytes <= 0 || gpu.memoryBytes > GPU.maxMemoryBytes {
        problems.append(FieldViolation("\(field).memory_bytes", "must be > 0 and at most \(GPU.maxMemoryBytes) (1 TiB)"))
      }
      if gpu.migSlices < 0 || gpu.migSlices > 64 { problems.append(FieldViolation("\(field).mig_slices", "must be 0 to 64")) }
      if !gpu.migProfiles.isEmpty && gpu.migSlices == 0 {
        problems.append(FieldViolation("\(field).mig_slices", "must be > 0 when MIG profiles are given"))
      }
      for (p, profile) in gpu.migProfiles.enumerated() {
        let pf = "\(field).mig_profiles[\(p)]"
        if profile.name.isEmpty || Rules.hasControl(profile.name) {
          problems.append(FieldViolation("\(pf).name", "is required, no control characters"))
        }
        if profile.slices < 1 || profile.slices > max(gpu.migSlices, 1) {
          problems.append(FieldViolation("\(pf).slices", "must be 1 to the GPU's mig_slices (\(gpu.migSlices))"))
        }
        if profile.memoryBytes <= 0 || profile.memoryBytes > gpu.memoryBytes {
          problems.append(FieldViolation("\(pf).memory_bytes", "must be > 0 and at most the GPU's memory"))
        }
      }
    }
    guard problems.isEmpty else { return .failure(.invalidRequest(problems)) }
    // Output-only fields are ignored: what is allocated comes from the scheduler's own records.
    let clean = gpus.map { GPU(uuid: $0.uuid, model: $0.model, memoryBytes: $0.memoryBytes, migProfiles: $0.migProfiles, migSlices: $0.migSlices) }
    return .success(RegisterNodeCommand(name: name, labels: labels, gpus: clean))
  }
}

/// Which allocation Release and GetAllocation mean.
public enum AllocationRef: Sendable, Hashable {
  case id(UUID)
  case workload(String)
}

enum Rules {
  static func tenant(_ tenantID: String) -> [FieldViolation] { key("tenant_id", tenantID) }

  static func key(_ field: String, _ value: String) -> [FieldViolation] {
    value.isEmpty || value.utf8.count > 128 || hasControl(value)
      ? [FieldViolation(field, "is required, 1 to 128 bytes, no control characters")] : []
  }

  /// Control characters (NUL above all, which Postgres text and jsonb cannot hold) in an id or
  /// label are a client's mistake: refused here by name rather than failing in the database.
  static func hasControl(_ value: String) -> Bool {
    value.unicodeScalars.contains { $0.properties.generalCategory == .control }
  }

  static func nodeName(_ field: String, _ name: String) -> [FieldViolation] {
    let allowed = name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2e || $0 == 0x2d }
    return name.isEmpty || name.utf8.count > 253 || !allowed ? [FieldViolation(field, "must be 1 to 253 characters from [a-z0-9.-]")] : []
  }

  static func labels(_ field: String, _ labels: [String: String]) -> [FieldViolation] {
    if labels.count > 64 { return [FieldViolation(field, "at most 64 labels")] }
    for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
      if key.isEmpty || key.utf8.count > 63 || value.utf8.count > 63 || hasControl(key) || hasControl(value) {
        return [FieldViolation("\(field)[\(key)]", "keys are 1 to 63 bytes, values at most 63, no control characters")]
      }
    }
    return []
  }

  static func allocation(_ id: String?, workload: String?) -> Result<AllocationRef, SchedulerError> {
    if let id {
      guard let uuid = UUID(uuidString: id) else {
        return .failure(.invalidRequest([FieldViolation("allocation_id", "is not an allocation id")]))
      }
      return .success(.id(uuid))
    }
    if let workload {
      let problems = key("workload_id", workload)
      return problems.isEmpty ? .success(.workload(workload)) : .failure(.invalidRequest(problems))
    }
    return .failure(.invalidRequest([FieldViolation("target", "allocation_id or workload_id is required")]))
  }
}
