/// One bad field of a request.
public struct FieldViolation: Sendable, Hashable, Codable, CustomStringConvertible {
  public var field: String
  public var reason: String

  public init(_ field: String, _ reason: String) {
    self.field = field
    self.reason = reason
  }

  public var description: String { "\(field): \(reason)" }
}

/// Why the scheduler refused something. Handlers map `category` to a status; tests match cases,
/// never message text; `description` is the status message.
public enum SchedulerError: Error, Sendable, Hashable, CustomStringConvertible {
  /// The request is malformed, or asks for something no node could ever give (a GPU type no node
  /// has, more GPUs than any node holds): every problem, each naming its field.
  case invalidRequest([FieldViolation])
  /// It does not fit now: the reason, for example "8 x H100-80GB on one node requested; largest
  /// free block is 4".
  case capacityExhausted(String)
  /// No node of this name.
  case nodeNotFound(String)
  /// A GPU uuid registered on another node.
  case gpuTaken(uuid: String, node: String)
  /// Re-registration drops, or DeleteNode removes, GPUs that allocations hold.
  case gpusHeld([String])
  /// No allocation of the tenant matches (another tenant's answers exactly the same).
  case allocationNotFound(String)
  /// Schedule with a workload_id whose ACTIVE allocation was granted for a different request.
  case workloadTaken(String)
  /// The quota service refused CONCURRENT_GPUS; its message names the limit and the usage.
  case quotaExhausted(String)
  /// The quota service does not know the tenant.
  case quotaTenantUnknown(String)
  /// The quota service could not be reached or did not answer in time; nothing was placed.
  case quotaUnavailable(String)
  /// Concurrent placements kept taking the GPUs this one chose, past the retry budget.
  case contention(attempts: Int)
  /// The Schedule ran past the quota-intent grace (minutes), and the maintenance loop gave back
  /// what its quota key held: it writes nothing (see SchedulerStore+QuotaIntents.swift).
  case intentSettled

  public enum Category: Sendable, Hashable {
    case invalidArgument(field: String)
    case notFound
    case alreadyExists
    case failedPrecondition
    case resourceExhausted
    case unavailable
    case aborted
  }

  public var category: Category {
    switch self {
    case .invalidRequest(let violations): .invalidArgument(field: violations.first?.field ?? "request")
    case .nodeNotFound, .allocationNotFound: .notFound
    case .gpuTaken, .workloadTaken: .alreadyExists
    case .gpusHeld, .quotaTenantUnknown: .failedPrecondition
    case .capacityExhausted, .quotaExhausted: .resourceExhausted
    case .quotaUnavailable: .unavailable
    case .contention, .intentSettled: .aborted
    }
  }

  public var description: String {
    switch self {
    case .invalidRequest(let violations): violations.map(\.description).joined(separator: "; ")
    case .capacityExhausted(let reason): reason
    case .nodeNotFound(let name): "node_name: no node named \"\(name)\""
    case .gpuTaken(let uuid, let node): "GPU \(uuid) is registered on node \"\(node)\""
    case .gpusHeld(let uuids): "allocations hold GPUs \(uuids.joined(separator: ", ")): drain the node first"
    case .allocationNotFound(let what): "no allocation \(what)"
    case .workloadTaken(let workload):
      "workload_id \"\(workload)\" has an ACTIVE allocation for a different request; release it first"
    case .quotaExhausted(let message): message
    case .quotaTenantUnknown(let message): "the quota service does not know the tenant: \(message)"
    case .quotaUnavailable(let message): "the quota service is unavailable: \(message)"
    case .contention(let attempts): "concurrent placements took the chosen GPUs \(attempts) times; retry"
    case .intentSettled: "the Schedule took so long that its quota was given back; nothing was placed; retry"
    }
  }
}
