public import Foundation

public enum AllocationState: Int32, Sendable, Hashable, Codable {
  case active = 1
  case released = 2
}

/// The GPUs given to one workload: one placement per replica, all or none.
public struct Allocation: Sendable, Hashable {
  public var id: UUID
  public var tenantID: String
  public var workloadID: String
  public var request: PlacementRequest
  public var priority: Int
  public var placements: [ReplicaPlacement]
  public var state: AllocationState
  public var createTime: Date
  public var releaseTime: Date?
  public var quotaReservationID: String

  /// Whether `command` asks for what this allocation was granted for (Schedule's idempotency).
  public func grants(_ command: ScheduleCommand) -> Bool {
    request == command.request && priority == command.priority
  }
}

/// A node with what the inventory knows about it beyond placement: for answers.
public struct NodeView: Sendable, Hashable {
  public var node: Node
  public var state: NodeState
  /// Allocation ids holding each GPU, by GPU uuid.
  public var holders: [String: [String]]
}
