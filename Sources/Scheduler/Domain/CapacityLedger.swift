import Foundation

/// One node's GPUs of one model, as capacity counts them.
struct NodeTally: Sendable {
  var model: String
  var gpus = 0
  var allocated = 0
  var free = 0
  var memory: Int64 = 0
  var allocatedMemory: Int64 = 0

  /// `node`'s GPUs by model (those of `gpuModel` only, unless it is empty), into `tallies`, which is
  /// emptied first and reused so that a walk over many nodes allocates once. A node carries one
  /// model or a few, so a linear search is cheaper than hashing.
  static func count(_ node: Node, gpuModel: String = "", into tallies: inout [NodeTally]) {
    tallies.removeAll(keepingCapacity: true)
    for gpu in node.gpus where gpuModel.isEmpty || gpu.model == gpuModel {
      let index =
        tallies.lastIndex { $0.model == gpu.model } ?? {
          tallies.append(NodeTally(model: gpu.model))
          return tallies.count - 1
        }()
      tallies[index].gpus += 1
      tallies[index].memory += gpu.memoryBytes
      tallies[index].allocatedMemory += gpu.exclusive ? gpu.memoryBytes : gpu.allocatedMemoryBytes
      if gpu.isFree { tallies[index].free += 1 } else { tallies[index].allocated += 1 }
    }
  }
}

/// GetCapacity's sums per GPU model, kept as nodes change (`Fleet.upsert` and `remove`), so that
/// a summary without a label selector reads O(models + silent nodes) rather than every node under
/// the index's lock, where placements on the replica wait for it.
///
/// Readiness has a part that changes with time alone: a node falls silent when its heartbeat ages
/// past the grace, with no event to update sums by. So the sums count each node as it would be
/// just after its last heartbeat (READY unless cordoned or draining), and a summary moves the
/// nodes silent at its `now` (which the fleet finds in heartbeat order, `Fleet.capacity`) from
/// the READY sums to the unschedulable ones.
struct CapacityLedger: Sendable {
  struct Sums: Sendable {
    var capacity: GPUCapacity
    /// READY nodes by how many GPUs of the model they have wholly free (the index): the largest
    /// free block is the highest count with a node.
    var nodesByFreeGPUs: [Int] = []

    init(model: String) { capacity = GPUCapacity(gpuModel: model) }

    /// Adds (`sign` 1) or takes out (-1) one node's tally.
    mutating func add(_ tally: NodeTally, ready: Bool, sign: Int) {
      guard ready else {
        capacity.unschedulableGPUs += sign * tally.gpus
        return
      }
      capacity.nodes += sign
      capacity.totalGPUs += sign * tally.gpus
      capacity.allocatedGPUs += sign * tally.allocated
      capacity.totalMemoryBytes += Int64(sign) * tally.memory
      capacity.allocatedMemoryBytes += Int64(sign) * tally.allocatedMemory
      if nodesByFreeGPUs.count <= tally.free { nodesByFreeGPUs += repeatElement(0, count: tally.free + 1 - nodesByFreeGPUs.count) }
      nodesByFreeGPUs[tally.free] += sign
    }

    var isEmpty: Bool { capacity.totalGPUs == 0 && capacity.unschedulableGPUs == 0 }

    /// The summary entry, its largest free block read off the counts.
    var entry: GPUCapacity {
      var entry = capacity
      entry.largestFreeBlock = nodesByFreeGPUs.lastIndex { $0 > 0 } ?? 0
      return entry
    }
  }

  private(set) var sums: [String: Sums] = [:]
  private var tallies: [NodeTally] = []

  /// Whether `node` counts as READY in the sums: its state just after its last heartbeat.
  static func readyWhenHeard(_ node: Node) -> Bool {
    node.state(at: node.lastHeartbeat, grace: .zero) == .ready
  }

  /// Takes `old` out of the sums and puts `new` in (either may be nil).
  mutating func replace(_ old: Node?, with new: Node?) {
    if let old { add(old, sign: -1) }
    if let new { add(new, sign: 1) }
  }

  private mutating func add(_ node: Node, sign: Int) {
    NodeTally.count(node, into: &tallies)
    let ready = Self.readyWhenHeard(node)
    for tally in tallies {
      sums[tally.model, default: Sums(model: tally.model)].add(tally, ready: ready, sign: sign)
      if sums[tally.model]?.isEmpty == true { sums[tally.model] = nil }
    }
  }

  /// The capacity per GPU model (of `gpuModel` only, unless it is empty), ordered by model, with
  /// the `silent` nodes counted as unschedulable.
  func summary(gpuModel: String, silent: [Node]) -> [GPUCapacity] {
    var current = gpuModel.isEmpty ? sums : sums.filter { $0.key == gpuModel }
    var tallies: [NodeTally] = []
    for node in silent where Self.readyWhenHeard(node) {
      NodeTally.count(node, gpuModel: gpuModel, into: &tallies)
      for tally in tallies {
        current[tally.model]?.add(tally, ready: true, sign: -1)
        current[tally.model]?.add(tally, ready: false, sign: 1)
      }
    }
    return current.values.map(\.entry).sorted { $0.gpuModel < $1.gpuModel }
  }
}
