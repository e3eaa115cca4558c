import Foundation

/// A placement score, compared lexicographically: the policies' keys (`PlacementEngine.score`),
/// lower is better. LEAST_LOADED and SPREAD use the first field only.
struct Score: Comparable, Hashable, Sendable {
  var a: Double
  var b: Double = 0
  var c: Double = 0
  var d: Double = 0

  static func < (left: Score, right: Score) -> Bool {
    if left.a != right.a { return left.a < right.a }
    if left.b != right.b { return left.b < right.b }
    if left.c != right.c { return left.c < right.c }
    return left.d < right.d
  }

  static let lowest = Score(a: -.infinity, b: -.infinity, c: -.infinity, d: -.infinity)
}

/// One node's place in one order: by `score`, ties broken by name as everywhere in placement.
struct OrderEntry: Comparable, Hashable, Sendable {
  var score: Score
  var name: String

  static func < (left: OrderEntry, right: OrderEntry) -> Bool {
    left.score != right.score ? left.score < right.score : left.name < right.name
  }
}

/// Which order of a pool.
enum OrderKind: Hashable, Sendable {
  /// `(load)`: LEAST_LOADED and SPREAD, every sharing mode.
  case byLoad
  /// `(1, 1, wholly free GPUs of the model, -load)`: BINPACK of EXCLUSIVE requests.
  case byFreeBlock
  /// `(free ? 1 : 0, 1, free memory, -load)`, per distinct value over the node's shareable GPUs
  /// (not held whole, not MIG-partitioned): BINPACK of SHARED requests.
  case shared
  /// `(free ? 1 : 0, 1, free slices - the profile's slices, -load)`, per distinct value over the
  /// node's MIG-capable GPUs that are free or partitioned and support the profile: BINPACK of
  /// MIG requests for that profile.
  case mig(String)
}

/// The orders of one pool: the nodes carrying GPUs of one model (or, for the pool "", any GPU),
/// not cordoned. Each node is in each order under the lowest scores any of its GPUs could give a
/// request the order serves, so that a walk in order meets every node no later than its score.
struct PoolOrders: Sendable {
  var orders: [OrderKind: SortedSet<OrderEntry>] = [:]

  subscript(kind: OrderKind) -> SortedSet<OrderEntry>? { orders[kind] }

  mutating func insert(_ entry: OrderEntry, into kind: OrderKind) {
    orders[kind, default: SortedSet()].insert(entry)
  }

  mutating func remove(_ entry: OrderEntry, from kind: OrderKind) {
    orders[kind]?.remove(entry)
    if orders[kind]?.isEmpty == true { orders[kind] = nil }
  }
}

/// Every pool's orders, kept in step with the fleet's nodes by `Fleet`: a node's entries are taken
/// out and put back whenever it changes (O(log n) each), so that placement walks the few nodes
/// at the front of one order instead of every node of the fleet.
struct FleetOrders: Sendable {
  /// By GPU model; "" holds every node with a GPU, for requests that accept any type.
  private(set) var pools: [String: PoolOrders] = [:]

  /// One entry of a node: which pool, which order.
  struct Placed: Hashable {
    var pool: String
    var kind: OrderKind
    var entry: OrderEntry
  }

  /// The entries `node` has in the orders: none when it is cordoned, has no GPU, or last
  /// heartbeated before `silentBefore` (see `Fleet.leaveOutSilent`).
  static func entries(of node: Node, silentBefore: Date) -> Set<Placed> {
    guard !node.cordoned, !node.gpus.isEmpty, node.lastHeartbeat >= silentBefore else { return [] }
    let load = node.load
    var placed: Set<Placed> = [Placed(pool: "", kind: .byLoad, entry: OrderEntry(score: Score(a: load), name: node.name))]
    var models: [String: [GPU]] = [:]
    for gpu in node.gpus { models[gpu.model, default: []].append(gpu) }
    for (model, gpus) in models {
      func add(_ kind: OrderKind, _ score: Score) {
        placed.insert(Placed(pool: model, kind: kind, entry: OrderEntry(score: score, name: node.name)))
      }
      add(.byLoad, Score(a: load))
      let wholeFree = gpus.filter(\.isFree).count
      if wholeFree > 0 { add(.byFreeBlock, Score(a: 1, b: 1, c: Double(wholeFree), d: -load)) }
      for gpu in gpus where gpu.isSharedOrFree {
        add(.shared, Score(a: gpu.isFree ? 1 : 0, b: 1, c: Double(gpu.freeMemoryBytes), d: -load))
      }
      // A block holds at least its slices, so a GPU with a free position for a profile has that
      // many free slices: the score's leftover is never negative, and the walk from 0 misses none.
      for gpu in gpus where gpu.migSlices > 0 && gpu.isMIGOrFree {
        for profile in gpu.migProfiles where gpu.migStart(for: profile) != nil {
          add(.mig(profile.name), Score(a: gpu.isFree ? 1 : 0, b: 1, c: Double(gpu.freeMIGSlices - profile.slices), d: -load))
        }
      }
    }
    return placed
  }

  /// Moves a node's entries from what `old` had to what `new` has (either may be nil: added,
  /// removed). Only the entries that differ are touched: a heartbeat touches none.
  mutating func replace(_ old: Node?, with new: Node?, silentBefore: Date) {
    let before = old.map { Self.entries(of: $0, silentBefore: silentBefore) } ?? []
    let after = new.map { Self.entries(of: $0, silentBefore: silentBefore) } ?? []
    guard before != after else { return }
    for gone in before.subtracting(after) {
      pools[gone.pool]?.remove(gone.entry, from: gone.kind)
      if pools[gone.pool]?.orders.isEmpty == true { pools[gone.pool] = nil }
    }
    for added in after.subtracting(before) {
      pools[added.pool, default: PoolOrders()].insert(added.entry, into: added.kind)
    }
  }
}
