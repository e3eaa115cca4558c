public import Foundation

/// Capacity of one GPU type across READY nodes, with the fragmentation measure.
public struct GPUCapacity: Sendable, Hashable {
  public var gpuModel: String
  public var totalGPUs = 0
  /// GPUs with any allocation on them (whole, shared or MIG).
  public var allocatedGPUs = 0
  public var totalMemoryBytes: Int64 = 0
  public var allocatedMemoryBytes: Int64 = 0
  /// The most wholly free GPUs of this type on any one READY node: the largest EXCLUSIVE replica
  /// that fits now.
  public var largestFreeBlock = 0
  public var nodes = 0
  /// GPUs of this type on nodes that are not READY.
  public var unschedulableGPUs = 0

  public init(gpuModel: String) { self.gpuModel = gpuModel }

  public var freeGPUs: Int { totalGPUs - allocatedGPUs }

  /// One entry per GPU type, ordered by type, over the nodes carrying `selector`.
  ///
  /// It runs under the index's lock, so placements on this replica wait for it. Without a
  /// selector it reads the fleet's running sums (`CapacityLedger`): O(GPU models + silent nodes).
  /// With one, it walks the nodes once in whatever order the fleet keeps them (only the result is
  /// sorted), counting each node's GPUs in one reused buffer.
  public static func summarize(
    _ fleet: Fleet, gpuModel: String = "", selector: [String: String] = [:], at now: Date, grace: Duration
  ) -> [GPUCapacity] {
    if selector.isEmpty { return fleet.capacity(gpuModel: gpuModel, at: now, grace: grace) }
    return scan(fleet, gpuModel: gpuModel, selector: selector, at: now, grace: grace)
  }

  /// `summarize` by a walk over the nodes the selector matches.
  static func scan(_ fleet: Fleet, gpuModel: String, selector: [String: String], at now: Date, grace: Duration) -> [GPUCapacity] {
    var byModel: [String: GPUCapacity] = [:]
    var tallies: [NodeTally] = []
    for node in fleet.nodes(matching: selector) {
      NodeTally.count(node, gpuModel: gpuModel, into: &tallies)
      let ready = node.state(at: now, grace: grace) == .ready
      for tally in tallies {
        var entry = byModel[tally.model] ?? GPUCapacity(gpuModel: tally.model)
        if ready {
          entry.nodes += 1
          entry.totalGPUs += tally.gpus
          entry.allocatedGPUs += tally.allocated
          entry.totalMemoryBytes += tally.memory
          entry.allocatedMemoryBytes += tally.allocatedMemory
          entry.largestFreeBlock = max(entry.largestFreeBlock, tally.free)
        } else {
          entry.unschedulableGPUs += tally.gpus
        }
        byModel[tally.model] = entry
      }
    }
    return byModel.values.sorted { $0.gpuModel < $1.gpuModel }
  }
}
