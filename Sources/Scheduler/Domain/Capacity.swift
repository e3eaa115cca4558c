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
  /// One pass over the nodes in whatever order the fleet keeps them (only the result is
  /// sorted), adding each node's GPUs up model by model in one reused buffer: it runs under the
  /// index's lock, so placements on this replica wait for it.
  public static func summarize(
    _ fleet: Fleet, gpuModel: String = "", selector: [String: String] = [:], at now: Date, grace: Duration
  ) -> [GPUCapacity] {
    struct Tally {
      var model: String
      var gpus = 0, allocated = 0, free = 0
      var memory: Int64 = 0, allocatedMemory: Int64 = 0
    }
    var byModel: [String: GPUCapacity] = [:]
    // One node's GPUs by model; a node carries one model or a few, so a linear search is cheaper
    // than hashing.
    var tallies: [Tally] = []
    for node in fleet.nodes.values where node.matches(selector: selector) {
      tallies.removeAll(keepingCapacity: true)
      for gpu in node.gpus where gpuModel.isEmpty || gpu.model == gpuModel {
        let index = tallies.lastIndex { $0.model == gpu.model } ?? {
          tallies.append(Tally(model: gpu.model))
          return tallies.count - 1
        }()
        tallies[index].gpus += 1
        tallies[index].memory += gpu.memoryBytes
        tallies[index].allocatedMemory += gpu.exclusive ? gpu.memoryBytes : gpu.allocatedMemoryBytes
        if gpu.isFree { tallies[index].free += 1 } else { tallies[index].allocated += 1 }
      }
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
