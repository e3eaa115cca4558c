public import Foundation

/// A MIG profile a GPU can be partitioned into.
public struct MIGProfile: Sendable, Hashable, Codable {
  public var name: String
  public var memoryBytes: Int64
  /// Compute slices one instance takes, out of `GPU.migSlices`.
  public var slices: Int
  public var maxInstances: Int

  public init(name: String, memoryBytes: Int64, slices: Int, maxInstances: Int) {
    self.name = name
    self.memoryBytes = memoryBytes
    self.slices = slices
    self.maxInstances = maxInstances
  }
}

/// One GPU as registered, and what allocations hold of it now.
///
/// A GPU is in at most one sharing mode at a time: held whole (`exclusive`), shared by memory
/// (`allocatedMemoryBytes` without slices), or partitioned (`allocatedMIGSlices` > 0). A GPU with
/// nothing allocated takes any mode.
public struct GPU: Sendable, Hashable {
  public var uuid: String
  public var model: String
  public var memoryBytes: Int64
  public var migProfiles: [MIGProfile]
  /// Compute slices in MIG mode; 0 without MIG.
  public var migSlices: Int

  public var allocatedMemoryBytes: Int64
  public var allocatedMIGSlices: Int
  public var exclusive: Bool

  public init(
    uuid: String, model: String, memoryBytes: Int64, migProfiles: [MIGProfile] = [], migSlices: Int = 0,
    allocatedMemoryBytes: Int64 = 0, allocatedMIGSlices: Int = 0, exclusive: Bool = false
  ) {
    self.uuid = uuid
    self.model = model
    self.memoryBytes = memoryBytes
    self.migProfiles = migProfiles
    self.migSlices = migSlices
    self.allocatedMemoryBytes = allocatedMemoryBytes
    self.allocatedMIGSlices = allocatedMIGSlices
    self.exclusive = exclusive
  }

  /// Nothing at all is allocated on it.
  public var isFree: Bool { !exclusive && allocatedMemoryBytes == 0 && allocatedMIGSlices == 0 }
  public var freeMemoryBytes: Int64 { exclusive ? 0 : memoryBytes - allocatedMemoryBytes }
  public var freeMIGSlices: Int { exclusive ? 0 : migSlices - allocatedMIGSlices }
  /// Shared by memory now (not MIG-partitioned, not held whole).
  var isSharedOrFree: Bool { !exclusive && allocatedMIGSlices == 0 }
  /// Partitioned now, or free.
  var isMIGOrFree: Bool { !exclusive && (allocatedMIGSlices > 0 || allocatedMemoryBytes == 0) }

  public func profile(named name: String) -> MIGProfile? { migProfiles.first { $0.name == name } }

  /// Whether the claim still fits: the re-check every commit makes against the locked rows.
  public func admits(_ claim: GPUClaim) -> Bool {
    if claim.exclusive { return isFree }
    if claim.migSlices > 0 { return isMIGOrFree && freeMIGSlices >= claim.migSlices && freeMemoryBytes >= claim.memoryBytes }
    return isSharedOrFree && freeMemoryBytes >= claim.memoryBytes
  }

  /// Applies (`sign` 1) or gives back (`sign` -1) a claim.
  public mutating func apply(_ claim: GPUClaim, sign: Int = 1) {
    if claim.exclusive {
      exclusive = sign > 0
      return
    }
    allocatedMemoryBytes += Int64(sign) * claim.memoryBytes
    allocatedMIGSlices += sign * claim.migSlices
  }
}

/// What one allocation holds of one GPU.
public struct GPUClaim: Sendable, Hashable, Codable {
  public var gpuUUID: String
  /// The whole GPU's memory for an exclusive claim.
  public var memoryBytes: Int64
  public var migSlices: Int
  public var exclusive: Bool

  public init(gpuUUID: String, memoryBytes: Int64, migSlices: Int, exclusive: Bool) {
    self.gpuUUID = gpuUUID
    self.memoryBytes = memoryBytes
    self.migSlices = migSlices
    self.exclusive = exclusive
  }
}

/// Whether a node takes new placements; precedence NOT_READY, DRAINING, CORDONED, READY.
public enum NodeState: String, Sendable, Hashable, Codable, CaseIterable {
  case ready, cordoned, draining, notReady
}

/// A machine with GPUs, as the scheduler knows it.
public struct Node: Sendable, Hashable {
  public var name: String
  public var labels: [String: String]
  public var gpus: [GPU]
  /// Set by CordonNode or DrainNode, cleared by UncordonNode.
  public var cordoned: Bool
  /// Set by DrainNode: the node reads DRAINING while allocations remain on it.
  public var draining: Bool
  public var lastHeartbeat: Date
  public var createTime: Date

  public init(
    name: String, labels: [String: String] = [:], gpus: [GPU], cordoned: Bool = false, draining: Bool = false,
    lastHeartbeat: Date, createTime: Date? = nil
  ) {
    self.name = name
    self.labels = labels
    self.gpus = gpus
    self.cordoned = cordoned
    self.draining = draining
    self.lastHeartbeat = lastHeartbeat
    self.createTime = createTime ?? lastHeartbeat
  }

  /// The state at `now`, for a fleet whose nodes must heartbeat within `grace`.
  public func state(at now: Date, grace: Duration) -> NodeState {
    if now.timeIntervalSince(lastHeartbeat) > grace.seconds { return .notReady }
    if draining && gpus.contains(where: { !$0.isFree }) { return .draining }
    if cordoned { return .cordoned }
    return .ready
  }

  public var allocatedMemoryBytes: Int64 { gpus.reduce(0) { $0 + ($1.exclusive ? $1.memoryBytes : $1.allocatedMemoryBytes) } }
  public var totalMemoryBytes: Int64 { gpus.reduce(0) { $0 + $1.memoryBytes } }
  /// Share of the node's GPU memory held by allocations: the LEAST_LOADED measure.
  var load: Double { totalMemoryBytes == 0 ? 1 : Double(allocatedMemoryBytes) / Double(totalMemoryBytes) }

  public func matches(selector: [String: String]) -> Bool { selector.allSatisfy { labels[$0.key] == $0.value } }
}

/// Every node the scheduler knows, by name: the in-memory model placement decides on.
public struct Fleet: Sendable, Hashable {
  public var nodes: [String: Node]

  public init(nodes: [Node] = []) {
    self.nodes = Dictionary(nodes.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
  }

  /// Nodes ordered by name: every tie in placement is broken by this order.
  public var sortedNodes: [Node] { nodes.values.sorted { $0.name < $1.name } }

  /// Applies (or with `sign` -1 gives back) claims on the GPUs of `node`. Unknown GPUs are
  /// skipped: the index refreshes from the database if it ever gets out of step.
  public mutating func apply(_ claims: [GPUClaim], on node: String, sign: Int = 1) {
    guard var entry = nodes[node] else { return }
    for claim in claims {
      if let index = entry.gpus.firstIndex(where: { $0.uuid == claim.gpuUUID }) { entry.gpus[index].apply(claim, sign: sign) }
    }
    nodes[node] = entry
  }
}

extension Duration {
  var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
