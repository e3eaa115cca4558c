public import Foundation
import Synchronization

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
  /// The most memory a GPU may register with, 1 TiB (the largest today carry under 300 GB). The
  /// index sums memory per node and per GPU model in Int64: this bound keeps those sums far from
  /// overflowing (a trap that would take every replica down on each load of the row).
  public static let maxMemoryBytes: Int64 = 1 << 40

  public var uuid: String
  public var model: String
  public var memoryBytes: Int64
  public var migProfiles: [MIGProfile]
  /// Compute slices in MIG mode; 0 without MIG.
  public var migSlices: Int

  public var allocatedMemoryBytes: Int64
  /// Compute slices held by MIG instances (a 3g instance counts 3).
  public var allocatedMIGSlices: Int
  /// Slice positions held by MIG instances, as `MIGLayout` blocks (a 3g instance holds 4).
  public var allocatedMIGMask: UInt64
  public var exclusive: Bool

  public init(
    uuid: String, model: String, memoryBytes: Int64, migProfiles: [MIGProfile] = [], migSlices: Int = 0,
    allocatedMemoryBytes: Int64 = 0, allocatedMIGSlices: Int = 0, allocatedMIGMask: UInt64 = 0, exclusive: Bool = false
  ) {
    self.uuid = uuid
    self.model = model
    self.memoryBytes = memoryBytes
    self.migProfiles = migProfiles
    self.migSlices = migSlices
    self.allocatedMemoryBytes = allocatedMemoryBytes
    self.allocatedMIGSlices = allocatedMIGSlices
    self.allocatedMIGMask = allocatedMIGMask
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

  /// Where a new instance of `profile` would start, or nil when it does not fit: MIG mode or
  /// free, a free position (`MIGLayout`), and the profile's memory.
  public func migStart(for profile: MIGProfile) -> Int? {
    guard migSlices > 0, isMIGOrFree, freeMemoryBytes >= profile.memoryBytes else { return nil }
    return MIGLayout.start(for: profile.slices, total: migSlices, occupied: allocatedMIGMask)
  }

  /// Whether the claim still fits: the re-check every commit makes against the locked rows.
  public func admits(_ claim: GPUClaim) -> Bool {
    if claim.exclusive { return isFree }
    if claim.migSlices > 0 {
      return isMIGOrFree && MIGLayout.isValid(start: claim.migStart, slices: claim.migSlices, total: migSlices)
        && allocatedMIGMask & claim.migMask == 0 && freeMIGSlices >= claim.migSlices && freeMemoryBytes >= claim.memoryBytes
    }
    return isSharedOrFree && freeMemoryBytes >= claim.memoryBytes
  }

  /// What allocations hold of it, as one value (its row's counters).
  public var usage: GPUUsage {
    get {
      GPUUsage(memoryBytes: allocatedMemoryBytes, migSlices: allocatedMIGSlices, migMask: allocatedMIGMask, exclusive: exclusive)
    }
    set {
      (allocatedMemoryBytes, allocatedMIGSlices, allocatedMIGMask, exclusive) =
        (newValue.memoryBytes, newValue.migSlices, newValue.migMask, newValue.exclusive)
    }
  }

  /// Applies (`sign` 1) or gives back (`sign` -1) a claim.
  public mutating func apply(_ claim: GPUClaim, sign: Int = 1) { usage.apply(claim, sign: sign) }
}

/// What one allocation holds of one GPU.
public struct GPUClaim: Sendable, Hashable, Codable {
  public var gpuUUID: String
  /// The whole GPU's memory for an exclusive claim.
  public var memoryBytes: Int64
  public var migSlices: Int
  /// MIG only: the instance's first slice position (`MIGLayout`).
  public var migStart: Int
  public var exclusive: Bool

  public init(gpuUUID: String, memoryBytes: Int64, migSlices: Int, migStart: Int = 0, exclusive: Bool) {
    self.gpuUUID = gpuUUID
    self.memoryBytes = memoryBytes
    self.migSlices = migSlices
    self.migStart = migStart
    self.exclusive = exclusive
  }

  /// The slice positions the claim holds; 0 for a claim that is not a MIG instance.
  public var migMask: UInt64 { migSlices > 0 ? MIGLayout.mask(start: migStart, slices: migSlices) : 0 }

  private enum CodingKeys: String, CodingKey { case gpuUUID, memoryBytes, migSlices, migStart, exclusive }

  // Allocations written before MIG positions were kept have no `migStart`; migration 6 writes it
  // into their stored claims, and a claim without one (not MIG) starts at 0.
  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    self.gpuUUID = try container.decode(String.self, forKey: .gpuUUID)
    self.memoryBytes = try container.decode(Int64.self, forKey: .memoryBytes)
    self.migSlices = try container.decode(Int.self, forKey: .migSlices)
    self.migStart = try container.decodeIfPresent(Int.self, forKey: .migStart) ?? 0
    self.exclusive = try container.decode(Bool.self, forKey: .exclusive)
  }
}

/// Whether a node takes new placements; precedence NOT_READY, DRAINING, CORDONED, READY.
public enum NodeState: String, Sendable, Hashable, Codable, CaseIterable {
  case ready, cordoned, draining, notReady

  /// The state at `now` of a node last heard from at `lastHeartbeat`, whose nodes must heartbeat
  /// within `grace`; `holding`: any of its GPUs has something allocated.
  public init(lastHeartbeat: Date, cordoned: Bool, draining: Bool, holding: Bool, at now: Date, grace: Duration) {
    if now.timeIntervalSince(lastHeartbeat) > grace.seconds {
      self = .notReady
    } else if draining && holding {
      self = .draining
    } else if cordoned {
      self = .cordoned
    } else {
      self = .ready
    }
  }
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
    NodeState(
      lastHeartbeat: lastHeartbeat, cordoned: cordoned, draining: draining, holding: gpus.contains { !$0.isFree }, at: now,
      grace: grace)
  }

  public var allocatedMemoryBytes: Int64 { gpus.reduce(0) { $0 + ($1.exclusive ? $1.memoryBytes : $1.allocatedMemoryBytes) } }
  public var totalMemoryBytes: Int64 { gpus.reduce(0) { $0 + $1.memoryBytes } }
  /// Share of the node's GPU memory held by allocations: the LEAST_LOADED measure.
  var load: Double { totalMemoryBytes == 0 ? 1 : Double(allocatedMemoryBytes) / Double(totalMemoryBytes) }

  public func matches(selector: [String: String]) -> Bool { selector.allSatisfy { labels[$0.key] == $0.value } }
}

/// Every node the scheduler knows, by name: the in-memory model placement decides on, with the
/// orders (`FleetOrders`) that let placement pick a node without looking at every one.
///
/// Every change goes through `upsert`, `remove`, `update` or `apply`, which keep the orders, the
/// GPU models' sizes, the capacity sums and the memo of fleet-wide checks in step with `nodes`.
public struct Fleet: Sendable, Hashable {
  public private(set) var nodes: [String: Node] = [:]
  private(set) var orders = FleetOrders()
  /// GPUs per memory size, by model, over every node whatever its state: which models a request
  /// matches, and whether all of a model's GPUs pass a memory floor.
  private(set) var models: [String: [Int64: Int]] = [:]
  /// `PlacementEngine.check` answers for this inventory; replaced (not emptied) when the inventory
  /// changes, so that a copy of the fleet keeps the answers that are right for it.
  private(set) var checks = CheckMemo()
  /// Nodes whose last heartbeat is older than this are left out of the orders: they are NOT_READY
  /// and stay so until they heartbeat again (see `leaveOutSilent`).
  private(set) var silentBefore = Date.distantPast
  /// GetCapacity's sums per GPU model.
  private(set) var capacityLedger = CapacityLedger()
  /// Every node by the time of its last heartbeat, oldest first: the silent ones are found
  /// without a walk over every node (`leaveOutSilent`, `capacity`).
  private var heartbeats = SortedSet<Heard>()
  /// Node names by label, `[key][value]`: a label selector's nodes are found without a walk over
  /// every node (GetCapacity with a selector runs under the index's lock, and placements wait).
  private var labelIndex: [String: [String: Set<String>]] = [:]

  /// A node by the time of its last heartbeat.
  struct Heard: Comparable, Sendable {
    var time: Date
    var node: String

    static func < (left: Heard, right: Heard) -> Bool { (left.time, left.node) < (right.time, right.node) }
  }

  public init(nodes: [Node] = []) {
    for node in nodes { upsert(node) }
  }

  public static func == (left: Fleet, right: Fleet) -> Bool { left.nodes == right.nodes }
  public func hash(into hasher: inout Hasher) { hasher.combine(nodes) }

  /// Nodes ordered by name: every tie in placement is broken by this order.
  public var sortedNodes: [Node] { nodes.values.sorted { $0.name < $1.name } }

  /// Adds `node`, or replaces the node of that name.
  public mutating func upsert(_ node: Node) {
    let old = nodes.updateValue(node, forKey: node.name)
    orders.replace(old, with: node, silentBefore: silentBefore)
    capacityLedger.replace(old, with: node)
    if old?.lastHeartbeat != node.lastHeartbeat {
      if let old { heartbeats.remove(Heard(time: old.lastHeartbeat, node: old.name)) }
      heartbeats.insert(Heard(time: node.lastHeartbeat, node: node.name))
    }
    if old?.labels != node.labels { relabel(node.name, from: old?.labels ?? [:], to: node.labels) }
    if !(old.map { $0.sameInventory(as: node) } ?? false) { inventoryChanged(removing: old, adding: node) }
  }

  public mutating func remove(_ name: String) {
    guard let old = nodes.removeValue(forKey: name) else { return }
    orders.replace(old, with: nil, silentBefore: silentBefore)
    capacityLedger.replace(old, with: nil)
    heartbeats.remove(Heard(time: old.lastHeartbeat, node: old.name))
    relabel(old.name, from: old.labels, to: [:])
    inventoryChanged(removing: old, adding: nil)
  }

  /// The nodes whose labels include every pair of `selector` (every node for an empty one), in no
  /// particular order. Looks only at the nodes of the selector's least common pair.
  public func nodes(matching selector: [String: String]) -> [Node] {
    guard let fewest = namesOfLeastCommonPair(selector) else { return Array(nodes.values) }
    return fewest.compactMap { nodes[$0] }.filter { $0.matches(selector: selector) }
  }

  /// At most how many nodes carry `selector`: the nodes of its least common pair, found without
  /// a walk; nil for an empty selector (every node).
  func carryingBound(_ selector: [String: String]) -> Int? {
    namesOfLeastCommonPair(selector)?.count
  }

  private func namesOfLeastCommonPair(_ selector: [String: String]) -> Set<String>? {
    guard !selector.isEmpty else { return nil }
    var fewest: Set<String>?
    for (key, value) in selector {
      guard let names = labelIndex[key]?[value] else { return [] }
      if names.count < fewest?.count ?? .max { fewest = names }
    }
    return fewest
  }

  /// Changes the node named `name`, if there is one.
  public mutating func update(_ name: String, _ change: (inout Node) -> Void) {
    guard var node = nodes[name] else { return }
    change(&node)
    upsert(node)
  }

  /// Applies (or with `sign` -1 gives back) claims on the GPUs of `node`. Unknown GPUs are
  /// skipped: the index refreshes from the database if it ever gets out of step.
  public mutating func apply(_ claims: [GPUClaim], on node: String, sign: Int = 1) {
    update(node) { entry in
      for claim in claims {
        if let index = entry.gpus.firstIndex(where: { $0.uuid == claim.gpuUUID }) { entry.gpus[index].apply(claim, sign: sign) }
      }
    }
  }

  /// Takes the nodes that have not heartbeated since `cutoff` out of the orders, so that
  /// placement does not walk past them one by one: a rack that went dark stays out of every
  /// placement's way. A node is back in the orders with its next heartbeat (`upsert`). Placement
  /// still checks each node's state itself, so between two calls nothing depends on this.
  ///
  /// O(nodes that fell silent since the last call); the scheduler calls it with each periodic
  /// index reload, with `cutoff` = now minus the heartbeat grace (older heartbeats are NOT_READY at
  /// any later time).
  public mutating func leaveOutSilent(before cutoff: Date) {
    guard cutoff > silentBefore else { return }
    for node in nodesHeard(from: silentBefore, while: { $0 < cutoff }) {
      orders.replace(node, with: nil, silentBefore: silentBefore)
    }
    silentBefore = cutoff
  }

  /// GetCapacity without a label selector: the running sums, with the nodes silent at `now`
  /// counted as unschedulable. See `CapacityLedger`.
  func capacity(gpuModel: String, at now: Date, grace: Duration) -> [GPUCapacity] {
    let silent = nodesHeard(from: .distantPast, while: { now.timeIntervalSince($0) > grace.seconds })
    return capacityLedger.summary(gpuModel: gpuModel, silent: silent)
  }

  /// The nodes last heard from at or after `lower`, oldest first, for as long as their heartbeat's
  /// time meets `condition`.
  private func nodesHeard(from lower: Date, while condition: (Date) -> Bool) -> [Node] {
    var found: [Node] = []
    heartbeats.forEach(from: Heard(time: lower, node: "")) { heard in
      guard condition(heard.time) else { return false }
      if let node = nodes[heard.node] { found.append(node) }
      return true
    }
    return found
  }

  private mutating func relabel(_ name: String, from old: [String: String], to new: [String: String]) {
    for (key, value) in old where new[key] != value {
      labelIndex[key]?[value]?.remove(name)
      if labelIndex[key]?[value]?.isEmpty == true { labelIndex[key]?[value] = nil }
      if labelIndex[key]?.isEmpty == true { labelIndex[key] = nil }
    }
    for (key, value) in new where old[key] != value { labelIndex[key, default: [:]][value, default: []].insert(name) }
  }

  private mutating func inventoryChanged(removing old: Node?, adding new: Node?) {
    for gpu in old?.gpus ?? [] {
      models[gpu.model]?[gpu.memoryBytes, default: 0] -= 1
      if models[gpu.model]?[gpu.memoryBytes] == 0 { models[gpu.model]?[gpu.memoryBytes] = nil }
      if models[gpu.model]?.isEmpty == true { models[gpu.model] = nil }
    }
    for gpu in new?.gpus ?? [] { models[gpu.model, default: [:]][gpu.memoryBytes, default: 0] += 1 }
    checks = CheckMemo()
  }
}

/// Answers of `PlacementEngine.check` by request, for one inventory: the check reads every GPU
/// of the fleet, and its answer changes only when the inventory does.
final class CheckMemo: Sendable {
  private let answers = Mutex<[GPURequest: [FieldViolation]]>([:])

  /// Request shapes remembered at most; past it the memo starts over (shapes are few in practice,
  /// but a client could vary the memory floor without end).
  static let capacity = 1_024

  func answer(_ request: GPURequest, _ compute: () -> [FieldViolation]) -> [FieldViolation] {
    if let known = answers.withLock({ $0[request] }) { return known }
    let computed = compute()
    answers.withLock { answers in
      if answers.count >= Self.capacity { answers.removeAll() }
      answers[request] = computed
    }
    return computed
  }
}

extension Node {
  /// Same GPUs, as registered (what is allocated on them aside).
  func sameInventory(as other: Node) -> Bool {
    gpus.count == other.gpus.count
      && zip(gpus, other.gpus).allSatisfy { left, right in
        left.uuid == right.uuid && left.model == right.model && left.memoryBytes == right.memoryBytes
          && left.migSlices == right.migSlices && left.migProfiles == right.migProfiles
      }
  }
}

extension Duration {
  var seconds: Double { self / .seconds(1) }
}
