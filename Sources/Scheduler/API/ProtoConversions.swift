import Foundation
import MaaSContracts
import SwiftProtobuf

extension GPU {
  init(proto: Maas_Scheduler_V1_Gpu) {
    self.init(
      uuid: proto.uuid, model: proto.model, memoryBytes: proto.memoryBytes,
      migProfiles: proto.migProfiles.map {
        MIGProfile(name: $0.name, memoryBytes: $0.memoryBytes, slices: Int($0.slices), maxInstances: Int($0.maxInstances))
      },
      migSlices: Int(proto.migSlices))
  }
}

extension Maas_Scheduler_V1_NodeState {
  init(_ state: NodeState) {
    switch state {
    case .ready: self = .ready
    case .cordoned: self = .cordoned
    case .draining: self = .draining
    case .notReady: self = .notReady
    }
  }

  var domain: NodeState? {
    switch self {
    case .ready: .ready
    case .cordoned: .cordoned
    case .draining: .draining
    case .notReady: .notReady
    default: nil
    }
  }
}

extension Maas_Scheduler_V1_Node {
  init(_ view: NodeView) {
    self = .with { node in
      node.name = view.node.name
      node.labels = view.node.labels
      node.state = .init(view.state)
      node.cordoned = view.node.cordoned
      node.lastHeartbeatTime = Google_Protobuf_Timestamp(date: view.node.lastHeartbeat)
      node.createTime = Google_Protobuf_Timestamp(date: view.node.createTime)
      node.gpus = view.node.gpus.map { gpu in
        .with {
          $0.uuid = gpu.uuid
          $0.model = gpu.model
          $0.memoryBytes = gpu.memoryBytes
          $0.migSlices = Int32(gpu.migSlices)
          $0.migProfiles = gpu.migProfiles.map { profile in
            .with {
              $0.name = profile.name
              $0.memoryBytes = profile.memoryBytes
              $0.slices = Int32(profile.slices)
              $0.maxInstances = Int32(profile.maxInstances)
            }
          }
          $0.allocatedMemoryBytes = gpu.exclusive ? gpu.memoryBytes : gpu.allocatedMemoryBytes
          $0.allocatedMigSlices = Int32(gpu.allocatedMIGSlices)
          $0.exclusive = gpu.exclusive
          $0.allocationIds = view.holders[gpu.uuid] ?? []
        }
      }
    }
  }
}

extension Maas_Scheduler_V1_GpuCapacity {
  init(_ capacity: GPUCapacity) {
    self = .with {
      $0.gpuModel = capacity.gpuModel
      $0.totalGpus = Int32(capacity.totalGPUs)
      $0.allocatedGpus = Int32(capacity.allocatedGPUs)
      $0.freeGpus = Int32(capacity.freeGPUs)
      $0.totalMemoryBytes = capacity.totalMemoryBytes
      $0.allocatedMemoryBytes = capacity.allocatedMemoryBytes
      $0.largestFreeBlock = Int32(capacity.largestFreeBlock)
      $0.nodes = Int32(capacity.nodes)
      $0.unschedulableGpus = Int32(capacity.unschedulableGPUs)
    }
  }
}

extension SharingMode {
  init?(proto: Maas_Scheduler_V1_SharingMode) {
    switch proto {
    case .exclusive: self = .exclusive
    case .shared: self = .shared
    case .mig: self = .mig
    default: return nil
    }
  }

  var proto: Maas_Scheduler_V1_SharingMode {
    switch self {
    case .exclusive: .exclusive
    case .shared: .shared
    case .mig: .mig
    }
  }
}

extension PlacementPolicy {
  /// nil for UNSPECIFIED (the default) and unknown values.
  init?(proto: Maas_Scheduler_V1_PlacementPolicy) {
    switch proto {
    case .binpack: self = .binpack
    case .spread: self = .spread
    case .leastLoaded: self = .leastLoaded
    default: return nil
    }
  }

  var proto: Maas_Scheduler_V1_PlacementPolicy {
    switch self {
    case .binpack: .binpack
    case .spread: .spread
    case .leastLoaded: .leastLoaded
    }
  }
}

extension Maas_Scheduler_V1_Allocation {
  init(_ allocation: Allocation) {
    self = .with {
      $0.id = allocation.id.uuidString.lowercased()
      $0.tenantID = allocation.tenantID
      $0.workloadID = allocation.workloadID
      $0.placements = allocation.placements.map { placement in
        .with {
          $0.replica = Int32(placement.replica)
          $0.node = placement.node
          $0.gpuUuids = placement.gpuUUIDs
          $0.memoryBytes = placement.memoryBytes
          $0.migProfile = placement.migProfile
          if let start = placement.migStart { $0.migStart = Int32(start) }
        }
      }
      let gpu = allocation.request.gpu
      $0.gpu = .with {
        $0.count = Int32(gpu.count)
        $0.gpuType = gpu.gpuType
        $0.minMemoryBytes = gpu.minMemoryBytes
        $0.sharing = gpu.sharing.proto
        $0.migProfile = gpu.migProfile
      }
      $0.policy = allocation.request.policy.proto
      $0.priority = Int32(allocation.priority)
      $0.state = allocation.state == .active ? .active : .released
      $0.createTime = Google_Protobuf_Timestamp(date: allocation.createTime)
      if let released = allocation.releaseTime { $0.releaseTime = Google_Protobuf_Timestamp(date: released) }
      $0.quotaReservationID = allocation.quotaReservationID
    }
  }
}
