public import Foundation

/// Decides where the replicas of a request go, over the fleet, in three phases:
///
/// 1. **Check against the fleet** (every node, whatever its state): a GPU type, MIG profile, GPU
///    count or memory that no node could ever give is INVALID_ARGUMENT, not a capacity problem.
/// 2. **Filter**: READY nodes (heartbeat within `heartbeatGrace`, not cordoned or draining)
///    carrying the node selector's labels and GPUs of the type.
/// 3. **Place** replica by replica on a working copy, scoring nodes by the policy; all replicas
///    or none. A replica that does not fit ends the attempt with the reason.
///
/// Pure: no clock, no I/O; every tie is broken by node name, then GPU order, so the same fleet and
/// request always give the same answer.
///
/// Three ways to the same answer: `placeByScan` walks every node, as the phases read;
/// `placeByOrders` walks the fleet's orders (`FleetOrders`) from the front and stops as soon as no
/// node further on could score better, so a placement on a fleet of 10,000 nodes looks at a
/// handful; and a request whose node selector few nodes carry (at most a quarter of the fleet)
/// runs phase 3 over just those (`selectiveCandidates`), where the orders would pass over the
/// others one by one. `place` takes the orders and falls back to the scan when no order serves
/// the request (BINPACK over several GPU models, or EXCLUSIVE with a memory floor some GPUs of the
/// model fall below) and for every refusal, so refusals and their reasons are the scan's own. The
/// check of phase 1 is remembered per request until the inventory changes.
public struct PlacementEngine: Sendable {
  public var heartbeatGrace: Duration

  public init(heartbeatGrace: Duration) {
    self.heartbeatGrace = heartbeatGrace
  }

  /// - Returns: one placement per replica, ordered by replica; or `.invalidRequest` (phase 1)
  ///   or `.capacityExhausted` saying why (phases 2 and 3).
  public func place(_ request: PlacementRequest, in fleet: Fleet, at now: Date) -> Result<[ReplicaPlacement], SchedulerError> {
    let violations = fleet.checks.answer(request.gpu) { Self.check(request.gpu, against: Array(fleet.nodes.values)) }
    guard violations.isEmpty else { return .failure(.invalidRequest(violations)) }
    if let carrying = selectiveCandidates(request, in: fleet, at: now) {
      // The orders would pass over the many nodes without the labels one by one.
      if case .success(let placements) = Self.choose(request, among: carrying) { return .success(placements) }
      return placeByScan(request, in: fleet, at: now)
    }
    if let placements = placeByOrders(request, in: fleet, at: now) { return .success(placements) }
    return placeByScan(request, in: fleet, at: now)
  }

  /// For a request whose node selector's least common label pair at most a quarter of the fleet
  /// carries (counted by the fleet's label index, before any node is looked at, so a selector
  /// most nodes carry costs nothing here): the nodes carrying the selector that are READY and
  /// have GPUs of the type, in name order, as `placeByScan` would pass them to phase 3. Nil for
  /// other requests.
  func selectiveCandidates(_ request: PlacementRequest, in fleet: Fleet, at now: Date) -> [Node]? {
    guard let bound = fleet.carryingBound(request.nodeSelector), bound * 4 <= fleet.nodes.count else { return nil }
    return fleet.nodes(matching: request.nodeSelector).filter { node in
      node.gpus.contains { Self.typeMatches($0, request.gpu) } && node.state(at: now, grace: heartbeatGrace) == .ready
    }.sorted { $0.name < $1.name }
  }

  /// The three phases over every node: the reference `placeByOrders` must agree with, and what
  /// answers every refusal.
  func placeByScan(_ request: PlacementRequest, in fleet: Fleet, at now: Date) -> Result<[ReplicaPlacement], SchedulerError> {
    let all = fleet.sortedNodes
    let violations = Self.check(request.gpu, against: all)
    guard violations.isEmpty else { return .failure(.invalidRequest(violations)) }

    let typed = all.filter { node in node.gpus.contains { Self.typeMatches($0, request.gpu) } }
    let selected = typed.filter { $0.matches(selector: request.nodeSelector) }
    let nodes = selected.filter { $0.state(at: now, grace: heartbeatGrace) == .ready }
    guard !nodes.isEmpty else {
      return .failure(.capacityExhausted(Self.noNodeReason(request, typed: typed, selected: selected, now: now, grace: heartbeatGrace)))
    }
    return Self.choose(request, among: nodes)
  }

  /// Phase 3 over `nodes` (READY, carrying the selector and the GPU type, in name order): for each
  /// replica the node with the best key, the first in name order on ties.
  static func choose(_ request: PlacementRequest, among nodes: [Node]) -> Result<[ReplicaPlacement], SchedulerError> {
    var nodes = nodes
    if request.policy == .spread {
      let roomy = nodes.filter { Self.fit(request.gpu, on: $0, policy: .spread) != nil }.count
      if roomy < request.replicas {
        return .failure(.capacityExhausted(
          "SPREAD puts each replica on its own node: \(request.replicas) replicas requested; "
            + "\(roomy) READY node\(roomy == 1 ? " has" : "s have") room for one (\(Self.describe(request.gpu)))"))
      }
    }

    var placements: [ReplicaPlacement] = []
    var touched: Set<String> = []
    for replica in 0..<request.replicas {
      var best: (index: Int, fit: Fit, key: Score)?
      for (index, node) in nodes.enumerated() {
        if request.policy == .spread && touched.contains(node.name) { continue }
        guard let fit = Self.fit(request.gpu, on: node, policy: request.policy) else { continue }
        let key = Self.score(request.policy, node: node, fit: fit, touched: touched.contains(node.name))
        // Nodes are in name order, so a strictly better key is needed to move off the first.
        if best == nil || key < best!.key { best = (index, fit, key) }
      }
      guard let chosen = best else {
        return .failure(.capacityExhausted(Self.exhaustedReason(request, replica: replica, nodes: nodes, touched: touched)))
      }
      var node = nodes[chosen.index]
      for claim in chosen.fit.claims {
        let gpu = node.gpus.firstIndex { $0.uuid == claim.gpuUUID }!
        node.gpus[gpu].apply(claim)
      }
      nodes[chosen.index] = node
      touched.insert(node.name)
      placements.append(ReplicaPlacement(
        replica: replica, node: node.name, gpuUUIDs: chosen.fit.claims.map(\.gpuUUID), memoryBytes: chosen.fit.memoryBytes,
        migProfile: request.gpu.sharing == .mig ? request.gpu.migProfile : "", claims: chosen.fit.claims))
    }
    return .success(placements)
  }

  // MARK: - Phase 1: what no node could ever give

  static func typeMatches(_ gpu: GPU, _ request: GPURequest) -> Bool {
    request.gpuType.isEmpty || gpu.model == request.gpuType
  }

  /// Every reason the request could never be placed on this fleet, even empty.
  static func check(_ request: GPURequest, against nodes: [Node]) -> [FieldViolation] {
    let gpus = nodes.flatMap(\.gpus).filter { typeMatches($0, request) }
    guard !gpus.isEmpty else {
      return [FieldViolation("gpu.gpu_type", request.gpuType.isEmpty ? "no node has any GPU" : "no node has GPUs of type \"\(request.gpuType)\"")]
    }
    let largest = gpus.map(\.memoryBytes).max()!
    switch request.sharing {
    case .exclusive:
      var problems: [FieldViolation] = []
      if request.minMemoryBytes > largest {
        problems.append(FieldViolation(
          "gpu.min_memory_bytes", "\(request.minMemoryBytes) exceeds the largest \(typeName(request)) GPU's memory (\(largest))"))
      }
      let most = nodes.map { node in node.gpus.filter { typeMatches($0, request) && $0.memoryBytes >= request.minMemoryBytes }.count }.max() ?? 0
      if request.count > most {
        problems.append(FieldViolation(
          "gpu.count", "\(request.count) x \(typeName(request)) on one node requested; the largest node has \(most)"))
      }
      return problems
    case .shared:
      if request.minMemoryBytes > largest {
        return [FieldViolation(
          "gpu.min_memory_bytes", "\(request.minMemoryBytes) exceeds the largest \(typeName(request)) GPU's memory (\(largest))")]
      }
      return []
    case .mig:
      if !gpus.contains(where: { $0.profile(named: request.migProfile) != nil && $0.migSlices > 0 }) {
        return [FieldViolation("gpu.mig_profile", "no \(typeName(request)) GPU supports MIG profile \"\(request.migProfile)\"")]
      }
      return []
    }
  }

  // MARK: - Phase 3: fitting one replica on one node

  struct Fit {
    var claims: [GPUClaim]
    var memoryBytes: Int64
    /// Free GPUs (exclusive) or the chosen GPU's free memory or slices (shared, MIG) left after.
    var leftover: Double
    /// The chosen GPU already held something (shared, MIG): packing onto it fragments nothing new.
    var partlyUsed: Bool
  }

  /// The GPUs one replica would take on `node`, or nil when it does not fit there.
  static func fit(_ request: GPURequest, on node: Node, policy: PlacementPolicy) -> Fit? {
    let gpus = node.gpus.filter { typeMatches($0, request) }
    switch request.sharing {
    case .exclusive:
      // All GPUs of a replica are of one model; the model with the fewest free GPUs that still
      // fit is chosen, keeping larger blocks whole.
      let free = gpus.filter { $0.isFree && $0.memoryBytes >= request.minMemoryBytes }
      let byModel = Dictionary(grouping: free, by: \.model).filter { $0.value.count >= request.count }
      guard let group = byModel.min(by: { ($0.value.count, $0.key) < ($1.value.count, $1.key) }) else { return nil }
      let taken = group.value.prefix(request.count)
      return Fit(
        claims: taken.map { GPUClaim(gpuUUID: $0.uuid, memoryBytes: $0.memoryBytes, migSlices: 0, exclusive: true) },
        memoryBytes: taken.map(\.memoryBytes).min()!, leftover: Double(free.count - request.count), partlyUsed: false)
    case .shared:
      let fitting = gpus.filter { $0.isSharedOrFree && $0.freeMemoryBytes >= request.minMemoryBytes }
      guard let gpu = pick(fitting, policy: policy, free: { Double($0.freeMemoryBytes) }) else { return nil }
      return Fit(
        claims: [GPUClaim(gpuUUID: gpu.uuid, memoryBytes: request.minMemoryBytes, migSlices: 0, exclusive: false)],
        memoryBytes: request.minMemoryBytes, leftover: Double(gpu.freeMemoryBytes - request.minMemoryBytes),
        partlyUsed: !gpu.isFree)
    case .mig:
      // Each GPU's free start is found once (a walk of its positions) and kept with it.
      let fitting = gpus.compactMap { gpu in
        gpu.profile(named: request.migProfile).flatMap { profile in gpu.migStart(for: profile).map { (gpu, profile, $0) } }
      }
      guard let gpu = pick(fitting.map(\.0), policy: policy, free: { Double($0.freeMIGSlices) }),
        let (_, profile, start) = fitting.first(where: { $0.0.uuid == gpu.uuid })
      else { return nil }
      return Fit(
        claims: [
          GPUClaim(gpuUUID: gpu.uuid, memoryBytes: profile.memoryBytes, migSlices: profile.slices, migStart: start, exclusive: false)
        ],
        memoryBytes: profile.memoryBytes, leftover: Double(gpu.freeMIGSlices - profile.slices), partlyUsed: !gpu.isFree)
    }
  }

  /// BINPACK: the partly used GPU with the least room that fits (best fit); otherwise the GPU with
  /// the most room (the least loaded), first in order on ties.
  static func pick(_ gpus: [GPU], policy: PlacementPolicy, free: (GPU) -> Double) -> GPU? {
    if policy == .binpack {
      return gpus.min { ($0.isFree ? 1 : 0, free($0)) < ($1.isFree ? 1 : 0, free($1)) }
    }
    return gpus.min { free($0) > free($1) }
  }

  /// Lower is better, compared lexicographically.
  static func score(_ policy: PlacementPolicy, node: Node, fit: Fit, touched: Bool) -> Score {
    switch policy {
    case .binpack:
      // Partly used GPUs first, then nodes this request already uses (fewest nodes touched),
      // then the tightest fit (least room left behind, so big blocks stay whole), then the
      // busiest node.
      Score(a: fit.partlyUsed ? 0 : 1, b: touched ? 0 : 1, c: fit.leftover, d: -node.load)
    case .spread, .leastLoaded:
      Score(a: node.load)
    }
  }

  // MARK: - Reasons

  static func typeName(_ request: GPURequest) -> String { request.gpuType.isEmpty ? "GPU" : request.gpuType }

  /// "H100-80GB GPUs", or "GPUs" when the request names no type (not "GPU GPUs").
  static func gpusOfType(_ request: GPURequest, plural: Bool) -> String {
    let noun = plural ? "GPUs" : "GPU"
    return request.gpuType.isEmpty ? noun : "\(request.gpuType) \(noun)"
  }

  static func describe(_ request: GPURequest) -> String {
    switch request.sharing {
    case .exclusive: "\(request.count) x \(typeName(request))"
    case .shared: "\(bytes(request.minMemoryBytes)) on one shared \(typeName(request))"
    case .mig: "one \(request.migProfile) instance on \(typeName(request))"
    }
  }

  static func bytes(_ value: Int64) -> String {
    let gib: Int64 = 1 << 30
    return value % gib == 0 ? "\(value / gib) GiB" : "\(value) bytes"
  }

  static func noNodeReason(_ request: PlacementRequest, typed: [Node], selected: [Node], now: Date, grace: Duration) -> String {
    let what = "no READY node has \(gpusOfType(request.gpu, plural: true))"
    if selected.isEmpty {
      return "\(what) matching node_selector \(request.nodeSelector.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))"
    }
    let states = Dictionary(grouping: selected, by: { $0.state(at: now, grace: grace) }).mapValues(\.count)
    let parts = [(NodeState.cordoned, "cordoned"), (.draining, "draining"), (.notReady, "not ready (missed heartbeats)")]
      .compactMap { state, name in states[state].map { "\($0) \(name)" } }
    return "\(what): \(parts.joined(separator: ", "))"
  }

  static func exhaustedReason(_ request: PlacementRequest, replica: Int, nodes: [Node], touched: Set<String>) -> String {
    let gpu = request.gpu
    let prefix = request.replicas > 1 ? "replica \(replica + 1) of \(request.replicas): " : ""
    let open = nodes.filter { request.policy != .spread || !touched.contains($0.name) }
    let gpus = open.flatMap(\.gpus).filter { typeMatches($0, gpu) }
    switch gpu.sharing {
    case .exclusive:
      let block = open.map { node in node.gpus.filter { typeMatches($0, gpu) && $0.isFree && $0.memoryBytes >= gpu.minMemoryBytes }.count }.max() ?? 0
      return "\(prefix)\(gpu.count) x \(typeName(gpu)) on one node requested; largest free block is \(block)"
    case .shared:
      let most = gpus.filter(\.isSharedOrFree).map(\.freeMemoryBytes).max() ?? 0
      return "\(prefix)\(bytes(gpu.minMemoryBytes)) on one shared \(typeName(gpu)) requested; the most free on any shareable GPU is \(bytes(most))"
    case .mig:
      let capable = gpus.filter { $0.profile(named: gpu.migProfile) != nil && $0.isMIGOrFree }
      let slices = capable.first?.profile(named: gpu.migProfile)?.slices ?? 0
      let most = capable.map(\.freeMIGSlices).max() ?? 0
      // Free slices enough, but not at a start the profile can take (MIGLayout), or short of memory.
      let why = most >= slices ? ", but no free position (or memory) fits the instance" : ""
      return "\(prefix)one \(gpu.migProfile) instance (\(slices) slices) requested; the most free MIG slices on any \(gpusOfType(gpu, plural: false)) is \(most)\(why)"
    }
  }
}
