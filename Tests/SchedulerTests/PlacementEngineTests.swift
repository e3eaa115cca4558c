import Foundation
import Scheduler
import Testing

/// One table row: a fleet, a request, and what must come out.
struct PlacementCase: Sendable, CustomTestStringConvertible {
  enum Expect: Sendable {
    /// Replica i on nodes[i], in order.
    case nodes([String])
    /// Replica i on GPUs gpus[i].
    case gpus([[String]])
    /// RESOURCE_EXHAUSTED whose reason contains the text.
    case exhausted(String)
    /// INVALID_ARGUMENT naming the field.
    case invalid(String)
    /// Replica i's MIG instance starts at slice starts[i].
    case migStarts([Int])
  }

  var testDescription: String
  var fleet: [Node]
  var request: PlacementRequest
  var expect: Expect
  var now: Date = epoch
}

func exclusive(_ replicas: Int, _ count: Int, type: String = "H100-80GB", policy: PlacementPolicy = .leastLoaded, selector: [String: String] = [:], minMemory: Int64 = 0) -> PlacementRequest {
  PlacementRequest(replicas: replicas, gpu: GPURequest(count: count, gpuType: type, minMemoryBytes: minMemory, sharing: .exclusive), policy: policy, nodeSelector: selector)
}

func shared(_ replicas: Int, _ memory: Int64, type: String = "L4-24GB", policy: PlacementPolicy = .leastLoaded) -> PlacementRequest {
  PlacementRequest(replicas: replicas, gpu: GPURequest(count: 1, gpuType: type, minMemoryBytes: memory, sharing: .shared), policy: policy)
}

func mig(_ replicas: Int, _ profile: String, policy: PlacementPolicy = .binpack) -> PlacementRequest {
  PlacementRequest(replicas: replicas, gpu: GPURequest(count: 1, gpuType: "A100-80GB", sharing: .mig, migProfile: profile), policy: policy)
}

/// A node of L4s with `used` GiB already shared on its first GPU.
func l4Node(_ name: String, _ count: Int, usedOnFirst: Int64 = 0) -> Node {
  var built = node(name, count, model: "L4-24GB", memory: 24 * GiB)
  built.gpus[0].allocatedMemoryBytes = usedOnFirst * GiB
  return built
}

/// A node with one A100-80GB in MIG mode (profiles 1g.10gb, 2g.20gb, 3g.40gb) holding the
/// instances given as (slices, start).
func partitionedNode(_ name: String, holding instances: [(slices: Int, start: Int)]) -> Node {
  var a100 = gpu("\(name)-g0", "A100-80GB", mig: true)
  a100.migProfiles.insert(MIGProfile(name: "2g.20gb", memoryBytes: 20 * GiB, slices: 2, maxInstances: 3), at: 1)
  for instance in instances {
    let profile = a100.migProfiles.first { $0.slices == instance.slices }!
    a100.apply(GPUClaim(
      gpuUUID: a100.uuid, memoryBytes: profile.memoryBytes, migSlices: profile.slices, migStart: instance.start, exclusive: false))
  }
  return Node(name: name, gpus: [a100], lastHeartbeat: epoch)
}

let placementCases: [PlacementCase] = [
  // Policies
  .init(testDescription: "LEAST_LOADED puts each replica on the node with the smallest share of allocated memory",
        fleet: [node("a", 8, used: 4), node("b", 8, used: 2), node("c", 8, used: 6)],
        request: exclusive(2, 1), expect: .nodes(["b", "b"])),
  .init(testDescription: "LEAST_LOADED moves to another node once the first becomes the busier one",
        fleet: [node("a", 4, used: 1), node("b", 4, used: 2)],
        request: exclusive(3, 1), expect: .nodes(["a", "a", "b"])),
  .init(testDescription: "BINPACK fills the node with the tightest fit and keeps big blocks whole",
        fleet: [node("a", 8), node("b", 8, used: 6)],
        request: exclusive(1, 2, policy: .binpack), expect: .nodes(["b"])),
  .init(testDescription: "BINPACK touches the fewest nodes",
        fleet: [node("a", 8), node("b", 8), node("c", 8)],
        request: exclusive(4, 2, policy: .binpack), expect: .nodes(["a", "a", "a", "a"])),
  .init(testDescription: "SPREAD puts every replica on its own node, even a busier one (LEAST_LOADED would stay on a)",
        fleet: [node("a", 8), node("b", 8, used: 4)],
        request: exclusive(2, 1, policy: .spread), expect: .nodes(["a", "b"])),
  .init(testDescription: "LEAST_LOADED puts both replicas on the emptier node where SPREAD would not",
        fleet: [node("a", 8), node("b", 8, used: 4)],
        request: exclusive(2, 1, policy: .leastLoaded), expect: .nodes(["a", "a"])),
  .init(testDescription: "SPREAD refuses when fewer nodes have room than there are replicas",
        fleet: [node("a", 8), node("b", 8)],
        request: exclusive(3, 1, policy: .spread), expect: .exhausted("3 replicas requested; 2 READY nodes have room")),

  // Sharing modes
  .init(testDescription: "EXCLUSIVE takes whole free GPUs, all of a replica on one node",
        fleet: [node("a", 4, used: 1)],
        request: exclusive(1, 3), expect: .gpus([["a-g1", "a-g2", "a-g3"]])),
  .init(testDescription: "SHARED with BINPACK packs onto the partly used GPU first",
        fleet: [l4Node("a", 2, usedOnFirst: 8)],
        request: shared(1, 8 * GiB, policy: .binpack), expect: .gpus([["a-g0"]])),
  .init(testDescription: "SHARED with BINPACK puts two small replicas on one GPU",
        fleet: [l4Node("a", 2)],
        request: shared(2, 10 * GiB, policy: .binpack), expect: .gpus([["a-g0"], ["a-g0"]])),
  .init(testDescription: "SHARED with LEAST_LOADED takes the GPU with the most free memory",
        fleet: [l4Node("a", 2, usedOnFirst: 8)],
        request: shared(1, 8 * GiB), expect: .gpus([["a-g1"]])),
  .init(testDescription: "SHARED never gives a GPU more than its memory",
        fleet: [l4Node("a", 1, usedOnFirst: 20)],
        request: shared(1, 8 * GiB), expect: .exhausted("the most free on any shareable GPU is 4 GiB")),
  .init(testDescription: "SHARED skips GPUs held exclusively",
        fleet: [node("a", 2, model: "L4-24GB", memory: 24 * GiB, used: 2)],
        request: shared(1, 1 * GiB), expect: .exhausted("the most free on any shareable GPU is 0 GiB")),
  .init(testDescription: "MIG hands out slices of the profile until a GPU's slices run out",
        fleet: [node("a", 1, model: "A100-80GB", mig: true)],
        request: mig(2, "3g.40gb"), expect: .gpus([["a-g0"], ["a-g0"]])),
  .init(testDescription: "MIG puts two 3-slice instances at slices 4 and 0, the only starts a 3-slice instance has",
        fleet: [node("a", 1, model: "A100-80GB", mig: true)],
        request: mig(2, "3g.40gb"), expect: .migStarts([4, 0])),
  .init(testDescription: "MIG refuses an instance when slices and memory are free but no aligned position is",
        fleet: [partitionedNode("p", holding: [(2, 4), (3, 0)])],
        request: mig(1, "2g.20gb"), expect: .exhausted("the most free MIG slices on any A100-80GB GPU is 2, but no free position")),
  .init(testDescription: "MIG places an instance in the position left free",
        fleet: [partitionedNode("p", holding: [(2, 4), (3, 0)])],
        request: mig(1, "1g.10gb"), expect: .migStarts([6])),
  .init(testDescription: "MIG refuses a third 3-slice instance on one 7-slice GPU",
        fleet: [node("a", 1, model: "A100-80GB", mig: true)],
        request: mig(3, "3g.40gb"), expect: .exhausted("the most free MIG slices on any A100-80GB GPU is 1")),

  // Fragmentation and all-or-nothing
  .init(testDescription: "a request larger than the largest free block is refused with the block size",
        fleet: [node("a", 8, used: 4), node("b", 8, used: 5)],
        request: exclusive(1, 8), expect: .exhausted("8 x H100-80GB on one node requested; largest free block is 4")),
  .init(testDescription: "all replicas or none: the third replica that does not fit refuses the whole request",
        fleet: [node("a", 4), node("b", 4)],
        request: exclusive(3, 4), expect: .exhausted("replica 3 of 3: 4 x H100-80GB on one node requested; largest free block is 0")),

  // Node state and labels
  .init(testDescription: "a cordoned node takes no placements",
        fleet: [node("a", 8, cordoned: true), node("b", 8, used: 7)],
        request: exclusive(1, 1), expect: .nodes(["b"])),
  .init(testDescription: "a node that missed its heartbeats takes no placements and is named in the reason",
        fleet: [node("a", 8, heartbeat: epoch.addingTimeInterval(-120))],
        request: exclusive(1, 1), expect: .exhausted("1 not ready")),
  .init(testDescription: "only cordoned nodes left is refused saying so",
        fleet: [node("a", 8, cordoned: true)],
        request: exclusive(1, 1), expect: .exhausted("1 cordoned")),
  .init(testDescription: "the node selector keeps replicas on labelled nodes",
        fleet: [node("a", 8, labels: ["zone": "x"]), node("b", 8, labels: ["zone": "y"])],
        request: exclusive(2, 1, selector: ["zone": "y"]), expect: .nodes(["b", "b"])),
  .init(testDescription: "a selector no node carries is refused naming it",
        fleet: [node("a", 8, labels: ["zone": "x"])],
        request: exclusive(1, 1, selector: ["zone": "z"]), expect: .exhausted("node_selector zone=z")),
  .init(testDescription: "a refusal of a request that names no GPU type says GPUs, not a type",
        fleet: [node("a", 8, labels: ["zone": "x"])],
        request: exclusive(1, 1, type: "", selector: ["zone": "z"]),
        expect: .exhausted("no READY node has GPUs matching node_selector zone=z")),
  .init(testDescription: "the GPU type filter ignores other types",
        fleet: [node("a", 8, model: "L4-24GB", memory: 24 * GiB), node("b", 2)],
        request: exclusive(1, 1), expect: .nodes(["b"])),

  // Requests no node could ever give
  .init(testDescription: "an unknown GPU type is INVALID_ARGUMENT gpu.gpu_type",
        fleet: [node("a", 8)], request: exclusive(1, 1, type: "B200"), expect: .invalid("gpu.gpu_type")),
  .init(testDescription: "a GPU count over every node's size is INVALID_ARGUMENT gpu.count",
        fleet: [node("a", 8), node("b", 4)], request: exclusive(1, 9), expect: .invalid("gpu.count")),
  .init(testDescription: "memory over the largest GPU's is INVALID_ARGUMENT gpu.min_memory_bytes",
        fleet: [l4Node("a", 2)], request: shared(1, 25 * GiB), expect: .invalid("gpu.min_memory_bytes")),
  .init(testDescription: "an unknown MIG profile is INVALID_ARGUMENT gpu.mig_profile",
        fleet: [node("a", 1, model: "A100-80GB", mig: true)], request: mig(1, "7g.80gb"), expect: .invalid("gpu.mig_profile")),
]

@Suite("Placement engine")
struct PlacementEngineTests {
  let engine = PlacementEngine(heartbeatGrace: .seconds(30))

  @Test(arguments: placementCases)
  func placement(_ row: PlacementCase) {
    let result = engine.place(row.request, in: Fleet(nodes: row.fleet), at: row.now)
    switch (row.expect, result) {
    case (.nodes(let nodes), .success(let placements)):
      #expect(placements.map(\.node) == nodes)
      #expect(placements.map(\.replica) == Array(0..<row.request.replicas))
    case (.gpus(let gpus), .success(let placements)):
      #expect(placements.map(\.gpuUUIDs) == gpus)
    case (.exhausted(let text), .failure(.capacityExhausted(let reason))):
      #expect(reason.contains(text), "reason: \(reason)")
    case (.migStarts(let starts), .success(let placements)):
      #expect(placements.map { $0.claims.map(\.migStart) } == starts.map { [$0] })
    case (.invalid(let field), .failure(.invalidRequest(let violations))):
      #expect(violations.map(\.field).contains(field), "violations: \(violations)")
    default:
      Issue.record("expected \(row.expect), got \(result)")
    }
  }

  @Test("placing never gives one GPU more than its memory, whatever the order of requests")
  func neverOverAllocates() {
    var fleet = Fleet(nodes: [l4Node("a", 2), l4Node("b", 1)])
    var placed = 0
    for size in [5, 7, 3, 11, 9, 2, 13, 6, 8, 4, 10, 1].map({ Int64($0) * GiB }) {
      guard case .success(let placements) = engine.place(shared(1, size, policy: .binpack), in: fleet, at: epoch) else { continue }
      for placement in placements { fleet.apply(placement.claims, on: placement.node) }
      placed += 1
    }
    #expect(placed > 0)
    for node in fleet.nodes.values { for gpu in node.gpus { #expect(gpu.allocatedMemoryBytes <= gpu.memoryBytes) } }
  }

  @Test("capacity reports free GPUs and the largest free block per type, not counting unschedulable nodes")
  func capacity() {
    let fleet = Fleet(nodes: [node("a", 8, used: 4), node("b", 8, used: 1), node("c", 8, cordoned: true)])
    let capacity = GPUCapacity.summarize(fleet, at: epoch, grace: .seconds(30))
    #expect(capacity.count == 1)
    #expect(capacity[0].totalGPUs == 16)
    #expect(capacity[0].allocatedGPUs == 5)
    #expect(capacity[0].freeGPUs == 11)
    #expect(capacity[0].largestFreeBlock == 7)
    #expect(capacity[0].unschedulableGPUs == 8)
    #expect(capacity[0].nodes == 2)
  }

  @Test("capacity of random fleets with mixed, interleaved GPU types equals a per-node grouping, for every filter")
  func capacityMatchesGrouping() {
    var random = SeededRandom(seed: 7)
    let models = ["H100-80GB", "L4-24GB", "A100-40GB"]
    for _ in 0..<50 {
      let nodes = (0..<Int.random(in: 1...30, using: &random)).map { index -> Node in
        var gpus = (0..<Int.random(in: 0...8, using: &random)).map { slot in
          gpu("n\(index)-g\(slot)", models.randomElement(using: &random)!, memory: Int64.random(in: 1...80, using: &random) * GiB)
        }
        for slot in gpus.indices {
          switch Int.random(in: 0..<3, using: &random) {
          case 0: gpus[slot].exclusive = true
          case 1: gpus[slot].allocatedMemoryBytes = gpus[slot].memoryBytes / 2
          default: break
          }
        }
        return Node(
          name: "n\(index)", labels: ["zone": Bool.random(using: &random) ? "a" : "b"], gpus: gpus,
          cordoned: Int.random(in: 0..<5, using: &random) == 0,
          lastHeartbeat: epoch.addingTimeInterval(Int.random(in: 0..<5, using: &random) == 0 ? -120 : 0))
      }
      let fleet = Fleet(nodes: nodes)
      for model in [""] + models {
        for selector in [[:], ["zone": "a"]] {
          let got = GPUCapacity.summarize(fleet, gpuModel: model, selector: selector, at: epoch, grace: .seconds(30))
          #expect(got == Self.grouped(nodes, model: model, selector: selector))
        }
      }
    }
  }

  /// The summary the plain way: group each node's GPUs by type.
  static func grouped(_ nodes: [Node], model: String, selector: [String: String], at now: Date = epoch) -> [GPUCapacity] {
    var byModel: [String: GPUCapacity] = [:]
    for node in nodes where node.matches(selector: selector) {
      let ready = node.state(at: now, grace: .seconds(30)) == .ready
      for (type, gpus) in Dictionary(grouping: node.gpus, by: \.model) where model.isEmpty || type == model {
        var entry = byModel[type] ?? GPUCapacity(gpuModel: type)
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
        byModel[type] = entry
      }
    }
    return byModel.values.sorted { $0.gpuModel < $1.gpuModel }
  }
}
