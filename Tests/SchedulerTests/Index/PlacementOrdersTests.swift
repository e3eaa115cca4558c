import Foundation
import Testing

@testable import Scheduler

/// One row: a fleet, a request, the nodes the replicas must land on, and whether the orders
/// decide it (rather than the scan the engine falls back to).
struct OrderedPlacementCase: Sendable, CustomTestStringConvertible {
  var testDescription: String
  var fleet: [Node]
  var request: PlacementRequest
  var nodes: [String]
  var byOrders: Bool
}

let orderedPlacementCases: [OrderedPlacementCase] = [
  .init(testDescription: "LEAST_LOADED walks the load order and takes the first node with room",
        fleet: [node("a", 8, used: 8), node("b", 8, used: 3), node("c", 8, used: 1), node("d", 8, used: 1)],
        request: exclusive(1, 1), nodes: ["c"], byOrders: true),
  .init(testDescription: "LEAST_LOADED passes over a node of low load with no wholly free GPU",
        fleet: [{
          var sharedOut = node("a", 2)
          for index in sharedOut.gpus.indices { sharedOut.gpus[index].allocatedMemoryBytes = 10 * GiB }
          return sharedOut
        }(), node("b", 2, used: 1)], request: exclusive(1, 1), nodes: ["b"], byOrders: true),
  .init(testDescription: "LEAST_LOADED moves on to another node once this request made the first the busier",
        fleet: [node("a", 4, used: 1), node("b", 4, used: 2)], request: exclusive(3, 1), nodes: ["a", "a", "b"], byOrders: true),
  .init(testDescription: "SPREAD never reuses a node this request already placed on",
        fleet: [node("a", 8), node("b", 8, used: 2), node("c", 8, used: 4)], request: exclusive(3, 1, policy: .spread),
        nodes: ["a", "b", "c"], byOrders: true),
  .init(testDescription: "BINPACK EXCLUSIVE starts at the smallest free block that fits",
        fleet: [node("a", 8), node("b", 8, used: 5), node("c", 8, used: 7), node("d", 8, used: 6)],
        request: exclusive(1, 2, policy: .binpack), nodes: ["d"], byOrders: true),
  .init(testDescription: "BINPACK EXCLUSIVE keeps filling the node it started on",
        fleet: [node("a", 8), node("b", 8)], request: exclusive(3, 2, policy: .binpack), nodes: ["a", "a", "a"], byOrders: true),
  .init(testDescription: "BINPACK SHARED prefers a partly used GPU on any node to a free one",
        fleet: [l4Node("a", 2), l4Node("b", 2, usedOnFirst: 4)], request: shared(1, 8 * GiB, policy: .binpack),
        nodes: ["b"], byOrders: true),
  .init(testDescription: "BINPACK SHARED takes the partly used GPU with the least room that fits",
        fleet: [l4Node("a", 1, usedOnFirst: 4), l4Node("b", 1, usedOnFirst: 12), l4Node("c", 1, usedOnFirst: 20)],
        request: shared(1, 8 * GiB, policy: .binpack), nodes: ["b"], byOrders: true),
  .init(testDescription: "BINPACK MIG fills the partitioned GPU before a free one",
        fleet: [node("a", 1, model: "A100-80GB", mig: true), {
          var partitioned = node("b", 1, model: "A100-80GB", mig: true)
          partitioned.gpus[0].apply(GPUClaim(gpuUUID: "b-g0", memoryBytes: 10 * GiB, migSlices: 1, migStart: 6, exclusive: false))
          return partitioned
        }()],
        request: mig(1, "3g.40gb"), nodes: ["b"], byOrders: true),
  .init(testDescription: "a cordoned node is in no order",
        fleet: [node("a", 8, cordoned: true), node("b", 8, used: 7)], request: exclusive(1, 1), nodes: ["b"], byOrders: true),
  .init(testDescription: "a node past its heartbeat grace is passed over where it stands in the order",
        fleet: [node("a", 8, heartbeat: epoch.addingTimeInterval(-120)), node("b", 8, used: 6)], request: exclusive(1, 1),
        nodes: ["b"], byOrders: true),
  .init(testDescription: "the node selector is checked on the way through the order",
        fleet: [node("a", 8, labels: ["zone": "x"]), node("b", 8, labels: ["zone": "y"], used: 4)],
        request: exclusive(1, 1, selector: ["zone": "y"]), nodes: ["b"], byOrders: true),
  .init(testDescription: "BINPACK over two GPU models is left to the scan",
        fleet: [node("a", 2), node("b", 2, model: "L4-24GB", memory: 24 * GiB)], request: exclusive(1, 1, type: "", policy: .binpack),
        nodes: ["a"], byOrders: false),
  .init(testDescription: "BINPACK EXCLUSIVE with a memory floor some GPUs of the model miss is left to the scan",
        fleet: [node("a", 2, memory: 40 * GiB), node("b", 2)], request: exclusive(1, 1, policy: .binpack, minMemory: 60 * GiB),
        nodes: ["b"], byOrders: false),
]

@Suite("Placement through the fleet's orders")
struct PlacementOrdersTests {
  let engine = PlacementEngine(heartbeatGrace: .seconds(30))

  @Test(arguments: orderedPlacementCases)
  func placement(_ row: OrderedPlacementCase) {
    let fleet = Fleet(nodes: row.fleet)
    let byOrders = engine.placeByOrders(row.request, in: fleet, at: epoch)
    #expect((byOrders != nil) == row.byOrders)
    guard case .success(let placements) = engine.place(row.request, in: fleet, at: epoch) else {
      Issue.record("expected \(row.nodes)")
      return
    }
    #expect(placements.map(\.node) == row.nodes)
    #expect(engine.placeByScan(row.request, in: fleet, at: epoch) == .success(placements))
  }

  @Test("the orders and the scan give the same answer over thousands of random fleets and requests")
  func ordersAgreeWithTheScan() {
    var random = SeededRandom(seed: 7)
    var decidedByOrders = 0
    var decidedAmongSelected = 0
    for round in 0..<500 {
      var fleet = Fleet(nodes: randomFleet(&random, nodes: 2 + Int(random.next() % 12)))
      for step in 0..<12 {
        let request = randomRequest(&random)
        let now = epoch.addingTimeInterval(Double(random.next() % 50))
        let expected = engine.placeByScan(request, in: fleet, at: now)
        if engine.placeByOrders(request, in: fleet, at: now) != nil { decidedByOrders += 1 }
        if let carrying = engine.selectiveCandidates(request, in: fleet, at: now) {
          let amongSelected = PlacementEngine.choose(request, among: carrying)
          if case .success = amongSelected {
            decidedAmongSelected += 1
            #expect(amongSelected == expected, "round \(round), step \(step), among the selector's nodes: \(request)")
          }
        }
        let answer = engine.place(request, in: fleet, at: now)
        #expect(answer == expected, "round \(round), step \(step): \(request)")
        guard case .success(let placements) = answer else { continue }
        for placement in placements { fleet.apply(placement.claims, on: placement.node) }
        // Now and then give one back or cordon a node, so that nodes move within the orders.
        if random.next() % 4 == 0, let placement = placements.first {
          fleet.apply(placement.claims, on: placement.node, sign: -1)
        }
        if random.next() % 9 == 0, let name = fleet.nodes.keys.sorted().first {
          fleet.update(name) { $0.cordoned.toggle() }
        }
      }
    }
    #expect(decidedByOrders > 1_000)
    #expect(decidedAmongSelected > 40)
  }

  @Test("the orders hold exactly the entries a fleet built afresh would, after any sequence of changes")
  func ordersStayInStep() {
    var random = SeededRandom(seed: 11)
    var fleet = Fleet(nodes: randomFleet(&random, nodes: 20))
    for _ in 0..<300 {
      let names = fleet.nodes.keys.sorted()
      let name = names[Int(random.next() % UInt64(names.count))]
      switch random.next() % 4 {
      case 0:
        fleet.update(name) { node in
          let index = Int(random.next() % UInt64(node.gpus.count))
          if node.gpus[index].isFree { node.gpus[index].exclusive = true } else { node.gpus[index].exclusive = false }
        }
      case 1:
        fleet.update(name) { $0.cordoned.toggle() }
      case 2:
        fleet.remove(name)
        fleet.upsert(randomNode(&random, name: name))
      default:
        fleet.update(name) { node in
          let index = Int(random.next() % UInt64(node.gpus.count))
          if node.gpus[index].isSharedOrFree && node.gpus[index].freeMemoryBytes >= GiB { node.gpus[index].allocatedMemoryBytes += GiB }
        }
      }
    }
    let afresh = Fleet(nodes: Array(fleet.nodes.values))
    for (pool, orders) in afresh.orders.pools {
      for (kind, order) in orders.orders {
        #expect(fleet.orders.pools[pool]?[kind]?.elements == order.elements, "pool \(pool), \(kind)")
      }
    }
    #expect(fleet.orders.pools.keys.sorted() == afresh.orders.pools.keys.sorted())
    #expect(fleet.models == afresh.models)
  }

  @Test("a node that stops heartbeating leaves the orders at the next sweep and is back with its next heartbeat")
  func silentNodesLeaveTheOrders() {
    var fleet = Fleet(nodes: [node("a", 8), node("b", 8, used: 4)])
    func inOrders(_ name: String) -> Bool {
      fleet.orders.pools.values.contains { $0.orders.values.contains { $0.elements.contains { $0.name == name } } }
    }
    let later = epoch.addingTimeInterval(120)
    // Only b heartbeated since: a is NOT_READY from 30 s on, and the sweep at 120 s takes it out.
    fleet.update("b") { $0.lastHeartbeat = later }
    fleet.leaveOutSilent(before: later.addingTimeInterval(-30))
    #expect(!inOrders("a"))
    #expect(inOrders("b"))
    #expect(engine.placeByOrders(exclusive(1, 1), in: fleet, at: later)?.map(\.node) == ["b"])
    #expect(engine.place(exclusive(1, 1), in: fleet, at: later) == engine.placeByScan(exclusive(1, 1), in: fleet, at: later))
    // A heartbeat brings it back at once, where its load puts it: first.
    fleet.update("a") { $0.lastHeartbeat = later }
    #expect(inOrders("a"))
    #expect(engine.placeByOrders(exclusive(1, 1), in: fleet, at: later)?.map(\.node) == ["a"])
    // A sweep with an older cutoff changes nothing.
    fleet.leaveOutSilent(before: epoch)
    #expect(inOrders("a") && inOrders("b"))
  }

  @Test("with sweeps of silent nodes and heartbeats as time goes on, the orders and the scan still agree")
  func sweepsKeepOrdersAndScanAgreeing() {
    var random = SeededRandom(seed: 23)
    for round in 0..<200 {
      var fleet = Fleet(nodes: randomFleet(&random, nodes: 2 + Int(random.next() % 12)))
      var now = epoch
      for step in 0..<15 {
        now = now.addingTimeInterval(Double(random.next() % 20))
        let names = fleet.nodes.keys.sorted()
        // Some nodes heartbeat; a sweep now and then takes the silent ones out.
        for name in names where random.next() % 3 == 0 { fleet.update(name) { $0.lastHeartbeat = now } }
        if random.next() % 2 == 0 { fleet.leaveOutSilent(before: now.addingTimeInterval(-30)) }
        let request = randomRequest(&random)
        let answer = engine.place(request, in: fleet, at: now)
        #expect(answer == engine.placeByScan(request, in: fleet, at: now), "round \(round), step \(step): \(request)")
        if case .success(let placements) = answer {
          for placement in placements { fleet.apply(placement.claims, on: placement.node) }
        }
      }
      // The orders hold what a fleet built afresh and swept with the same cutoff would.
      var afresh = Fleet(nodes: Array(fleet.nodes.values))
      afresh.leaveOutSilent(before: fleet.silentBefore)
      for (pool, orders) in afresh.orders.pools {
        for (kind, order) in orders.orders {
          #expect(fleet.orders.pools[pool]?[kind]?.elements == order.elements, "pool \(pool), \(kind)")
        }
      }
      #expect(fleet.orders.pools.keys.sorted() == afresh.orders.pools.keys.sorted())
    }
  }

  @Test("placing on a fleet of 10,000 nodes by the orders gives the scan's answer")
  func largeFleet() {
    let fleet = Fleet(nodes: (0..<10_000).map { node(String(format: "n%05d", $0), 8, used: $0 % 9) })
    for request in [exclusive(1, 1), exclusive(2, 4, policy: .binpack), exclusive(3, 1, policy: .spread)] {
      let byOrders = engine.placeByOrders(request, in: fleet, at: epoch)
      #expect(byOrders != nil)
      #expect(engine.placeByScan(request, in: fleet, at: epoch) == .success(byOrders ?? []))
    }
  }

  @Test("on a fleet of 10,000 nodes, a selector 50 nodes carry is placed among those 50, with the scan's answer")
  func selectiveSelectorOnALargeFleet() throws {
    let fleet = Fleet(nodes: (0..<10_000).map {
      node(String(format: "n%05d", $0), 8, labels: ["rack": "r\($0 % 200)"], used: $0 % 9)
    })
    for request in [
      exclusive(2, 4, policy: .binpack, selector: ["rack": "r7"]), exclusive(3, 1, policy: .spread, selector: ["rack": "r7"]),
      exclusive(1, 8, selector: ["rack": "r7"]),
    ] {
      let carrying = try #require(engine.selectiveCandidates(request, in: fleet, at: epoch))
      #expect(carrying.count == 50)
      #expect(carrying.allSatisfy { $0.labels["rack"] == "r7" })
      let answer = engine.place(request, in: fleet, at: epoch)
      #expect(answer == engine.placeByScan(request, in: fleet, at: epoch), "\(request)")
      #expect(answer == PlacementEngine.choose(request, among: carrying), "\(request)")
    }
    // A selector most nodes carry goes by the orders.
    #expect(engine.selectiveCandidates(exclusive(1, 1, selector: [:]), in: fleet, at: epoch) == nil)
  }
}

// MARK: - Random fleets

func randomNode(_ random: inout SeededRandom, name: String) -> Node {
  let kinds: [(String, Int64, Bool)] = [("H100-80GB", 80 * GiB, false), ("L4-24GB", 24 * GiB, false), ("A100-80GB", 80 * GiB, true)]
  let (model, memory, migCapable) = kinds[Int(random.next() % 3)]
  var built = node(
    name, 1 + Int(random.next() % 8), model: model, memory: random.next() % 5 == 0 ? memory / 2 : memory, mig: migCapable,
    labels: ["zone": random.next() % 2 == 0 ? "x" : "y", "rack": "r\(random.next() % 8)"], cordoned: random.next() % 10 == 0,
    heartbeat: epoch.addingTimeInterval(random.next() % 8 == 0 ? -100 : 0))
  for index in built.gpus.indices {
    switch random.next() % 5 {
    case 0: built.gpus[index].exclusive = true
    case 1 where !migCapable:
      built.gpus[index].allocatedMemoryBytes = Int64(random.next() % UInt64(built.gpus[index].memoryBytes / GiB)) * GiB
    case 2 where migCapable:
      // Instances of 1 and 3 slices where `MIGLayout` puts them, as Schedule would.
      for _ in 0..<(1 + random.next() % 4) {
        let slices = random.next() % 2 == 0 ? 1 : 3
        guard let start = MIGLayout.start(for: slices, total: 7, occupied: built.gpus[index].allocatedMIGMask) else { break }
        built.gpus[index].apply(GPUClaim(
          gpuUUID: built.gpus[index].uuid, memoryBytes: Int64(slices) * 5 * GiB, migSlices: slices, migStart: start, exclusive: false))
      }
    default: break
    }
  }
  return built
}

func randomFleet(_ random: inout SeededRandom, nodes: Int) -> [Node] {
  (0..<nodes).map { randomNode(&random, name: "n\($0)") }
}

func randomRequest(_ random: inout SeededRandom) -> PlacementRequest {
  let policies: [PlacementPolicy] = [.binpack, .spread, .leastLoaded]
  let policy = policies[Int(random.next() % 3)]
  let types = ["H100-80GB", "L4-24GB", "A100-80GB", ""]
  let type = types[Int(random.next() % 4)]
  let replicas = 1 + Int(random.next() % 3)
  let selectors: [[String: String]] = [["zone": "x"], ["rack": "r3"], ["zone": "y", "rack": "r5"], [:], [:], [:], [:], [:]]
  let selector = selectors[Int(random.next() % 8)]
  let gpu: GPURequest
  switch random.next() % 3 {
  case 0:
    gpu = GPURequest(
      count: 1 + Int(random.next() % 4), gpuType: type, minMemoryBytes: random.next() % 4 == 0 ? 60 * GiB : 0, sharing: .exclusive)
  case 1:
    gpu = GPURequest(count: 1, gpuType: type, minMemoryBytes: Int64(1 + random.next() % 30) * GiB, sharing: .shared)
  default:
    gpu = GPURequest(count: 1, gpuType: type, sharing: .mig, migProfile: random.next() % 2 == 0 ? "1g.10gb" : "3g.40gb")
  }
  return PlacementRequest(replicas: replicas, gpu: gpu, policy: policy, nodeSelector: selector)
}
