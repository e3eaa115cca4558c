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
  public static func summarize(
    _ fleet: Fleet, gpuModel: String = "", selector: [String: String] = [:], at now: Date, grace: Duration
  ) -> [GPUCapacity] {
    var byModel: [String: GPUCapacity] = [:]
    for node in fleet.sortedNodes where node.matches(selector: selector) {
      let ready = node.state(at: now, grace: grace) == .ready
      for (model, gpus) in Dictionary(grouping: node.gpus, by: \.model) where gpuModel.isEmpty || model == gpuModel {
        var entry = byModel[model] ?? GPUCapacity(gpuModel: model)
        if ready {
          entry.nodes += 1
          entry.totalGPUs += gpus.count
          entry.allocatedGPUs += gpus.filter { !$0.isFree }.count
          entry.totalMemoryBytes += gpus.reduce(0) { $0 + $1.memoryBytes }
          entry.allocatedMemoryBytes += gpus.reduce(0) { $0 + ($1.exclusive ? $1.memoryBytes : $1.allocatedMemoryBytes) }
          entry.largestFreeBlock = max(entry.largestFreeBlock, gpus.filter(\.isFree).count)
        } else {
          entry.unschedulableGPUs += gpus.count
        }
        byModel[model] = entry
      }
    }
    return byModel.values.sorted { $0.gpuModel < $1.gpuModel }
  }
}
