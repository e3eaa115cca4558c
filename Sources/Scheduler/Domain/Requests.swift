/// How a replica uses its GPUs.
public enum SharingMode: String, Sendable, Hashable, Codable {
  /// Whole GPUs: `count` per replica, all on one node, held by nothing else.
  case exclusive
  /// `minMemoryBytes` of one GPU that other shared replicas may also use (time-slicing or MPS).
  case shared
  /// One MIG instance of `migProfile` per replica.
  case mig
}

/// How replicas are spread over nodes.
public enum PlacementPolicy: String, Sendable, Hashable, Codable {
  /// Fill partly used nodes and GPUs first: fewest nodes touched, least fragmentation left.
  case binpack
  /// Every replica on a different node.
  case spread
  /// Each replica on the suitable node with the lowest share of allocated GPU memory.
  case leastLoaded
}

/// What one replica needs.
public struct GPURequest: Sendable, Hashable, Codable {
  public var count: Int
  /// Empty accepts any type.
  public var gpuType: String
  public var minMemoryBytes: Int64
  public var sharing: SharingMode
  public var migProfile: String

  public init(count: Int = 1, gpuType: String = "", minMemoryBytes: Int64 = 0, sharing: SharingMode, migProfile: String = "") {
    self.count = count
    self.gpuType = gpuType
    self.minMemoryBytes = minMemoryBytes
    self.sharing = sharing
    self.migProfile = migProfile
  }

  /// The GPUs this request counts against the tenant's CONCURRENT_GPUS per replica: whole GPUs
  /// when exclusive; one per replica when shared or MIG, since each replica occupies a device
  /// (conservative: a tenant cannot hold more devices than its limit, whatever their size).
  public var concurrentGPUsPerReplica: Int { sharing == .exclusive ? count : 1 }
}

/// A request the placement engine can decide: validated field by field already.
public struct PlacementRequest: Sendable, Hashable, Codable {
  public var replicas: Int
  public var gpu: GPURequest
  public var policy: PlacementPolicy
  public var nodeSelector: [String: String]

  public init(replicas: Int, gpu: GPURequest, policy: PlacementPolicy = .leastLoaded, nodeSelector: [String: String] = [:]) {
    self.replicas = replicas
    self.gpu = gpu
    self.policy = policy
    self.nodeSelector = nodeSelector
  }
}

/// Where one replica runs, and what it holds there.
public struct ReplicaPlacement: Sendable, Hashable, Codable {
  public var replica: Int
  public var node: String
  public var gpuUUIDs: [String]
  /// Held on each GPU: the whole GPU's for exclusive, the request's for shared, the profile's for MIG.
  public var memoryBytes: Int64
  public var migProfile: String
  /// What the placement holds of each GPU, in `gpuUUIDs` order.
  public var claims: [GPUClaim]

  /// MIG only: where the instance starts on its GPU (`MIGLayout`).
  public var migStart: Int? { migProfile.isEmpty ? nil : claims.first?.migStart }

  public init(replica: Int, node: String, gpuUUIDs: [String], memoryBytes: Int64, migProfile: String = "", claims: [GPUClaim]) {
    self.replica = replica
    self.node = node
    self.gpuUUIDs = gpuUUIDs
    self.memoryBytes = memoryBytes
    self.migProfile = migProfile
    self.claims = claims
  }
}
