import Foundation

extension PlacementEngine {
  /// How `placeByOrders` walks one order for a request: from where, up to where, and how an
  /// entry's score becomes a lower bound of the request's key on that node.
  struct Walk {
    var order: SortedSet<OrderEntry>
    /// Ranges walked one after the other: from an entry, while the score's first field is below
    /// `belowA` (to the end when nil).
    var ranges: [(from: OrderEntry, belowA: Double?)]
    var bound: (Score) -> Score
  }

  /// The order that serves `request` on `fleet`, or nil when none does exactly.
  static func walk(for request: PlacementRequest, in fleet: Fleet) -> Walk? {
    let gpu = request.gpu
    func from(_ a: Double, _ c: Double) -> OrderEntry {
      OrderEntry(score: Score(a: a, b: 1, c: c, d: -.infinity), name: "")
    }
    switch request.policy {
    case .leastLoaded, .spread:
      // The key is the node's load, and the order is by load: the first node that fits wins.
      guard let order = fleet.orders.pools[gpu.gpuType]?[.byLoad] else { return nil }
      return Walk(order: order, ranges: [(OrderEntry(score: .lowest, name: ""), nil)], bound: { $0 })
    case .binpack:
      // The BINPACK orders are per model; a request matching several models is scanned.
      let model = gpu.gpuType.isEmpty ? (fleet.models.count == 1 ? fleet.models.keys.first : nil) : gpu.gpuType
      guard let model, let pool = fleet.orders.pools[model] else { return nil }
      switch gpu.sharing {
      case .exclusive:
        // The order counts every free GPU of the model: exact only when all pass the memory floor.
        guard let sizes = fleet.models[model], sizes.keys.allSatisfy({ $0 >= gpu.minMemoryBytes }),
          let order = pool[.byFreeBlock]
        else { return nil }
        let count = Double(gpu.count)
        return Walk(
          order: order, ranges: [(from(1, count), nil)], bound: { Score(a: $0.a, b: $0.b, c: $0.c - count, d: $0.d) })
      case .shared:
        guard let order = pool[.shared] else { return nil }
        let memory = Double(gpu.minMemoryBytes)
        // Partly used GPUs with room first, then free ones with room.
        return Walk(
          order: order, ranges: [(from(0, memory), 1), (from(1, memory), nil)],
          bound: { Score(a: $0.a, b: $0.b, c: $0.c - memory, d: $0.d) })
      case .mig:
        guard let order = pool[.mig(gpu.migProfile)] else { return nil }
        return Walk(order: order, ranges: [(from(0, 0), 1), (from(1, 0), nil)], bound: { $0 })
      }
    }
  }

  /// Phase 3 over the fleet's orders: for each replica, the nodes this request already placed on
  /// (kept apart, changed, in a small overlay), then the order from its front, each READY node
  /// carrying the selector scored as the scan scores it, until the next entry's lower bound is
  /// above the best key so far. Nodes are compared by (key, name), as the scan's name order does.
  ///
  /// - Returns: the placements `placeByScan` would give; nil when no order serves the request or
  ///   a replica found no node (the scan then answers, with its reason).
  func placeByOrders(_ request: PlacementRequest, in fleet: Fleet, at now: Date) -> [ReplicaPlacement]? {
    guard let walk = Self.walk(for: request, in: fleet) else { return nil }
    var overlay: [String: Node] = [:]
    var placements: [ReplicaPlacement] = []
    for replica in 0..<request.replicas {
      var best: (node: Node, fit: Fit, key: Score)?
      func consider(_ node: Node, touched: Bool) {
        guard let fit = Self.fit(request.gpu, on: node, policy: request.policy) else { return }
        let key = Self.score(request.policy, node: node, fit: fit, touched: touched)
        if let current = best, !(key < current.key || (key == current.key && node.name < current.node.name)) { return }
        best = (node, fit, key)
      }
      if request.policy != .spread {
        for node in overlay.values { consider(node, touched: true) }
      }
      var visited: Set<String> = []
      for range in walk.ranges {
        var done = false
        walk.order.forEach(from: range.from) { entry in
          if let below = range.belowA, entry.score.a >= below { return false }
          if let current = best {
            let bound = walk.bound(entry.score)
            if current.key < bound || (current.key == bound && current.node.name < entry.name) {
              done = true
              return false
            }
          }
          guard overlay[entry.name] == nil, visited.insert(entry.name).inserted, let node = fleet.nodes[entry.name],
            node.matches(selector: request.nodeSelector), node.state(at: now, grace: heartbeatGrace) == .ready
          else { return true }
          consider(node, touched: false)
          return true
        }
        if done { break }
      }
      guard let chosen = best else { return nil }
      var node = chosen.node
      for claim in chosen.fit.claims {
        if let gpu = node.gpus.firstIndex(where: { $0.uuid == claim.gpuUUID }) { node.gpus[gpu].apply(claim) }
      }
      overlay[node.name] = node
      placements.append(ReplicaPlacement(
        replica: replica, node: node.name, gpuUUIDs: chosen.fit.claims.map(\.gpuUUID), memoryBytes: chosen.fit.memoryBytes,
        migProfile: request.gpu.sharing == .mig ? request.gpu.migProfile : "", claims: chosen.fit.claims))
    }
    return placements
  }
}
