import Foundation
import Scheduler
import Testing

@Suite("Capacity from running sums")
struct CapacityLedgerTests {
  let grace = Duration.seconds(30)

  @Test("a node that stops heartbeating leaves the READY sums once the grace has passed, and comes back with its next heartbeat")
  func silentNodeLeavesAndReturns() {
    var fleet = Fleet(nodes: [node("a", 8, used: 2), node("b", 4)])
    let before = GPUCapacity.summarize(fleet, at: epoch.addingTimeInterval(30), grace: grace)
    #expect(before.map(\.totalGPUs) == [12])
    #expect(before.map(\.largestFreeBlock) == [6])

    let later = epoch.addingTimeInterval(31)
    fleet.update("b") { $0.lastHeartbeat = later }
    let silent = GPUCapacity.summarize(fleet, at: later, grace: grace)
    #expect(silent.map(\.totalGPUs) == [4])
    #expect(silent.map(\.unschedulableGPUs) == [8])
    #expect(silent.map(\.largestFreeBlock) == [4])
    #expect(silent.map(\.nodes) == [1])

    fleet.update("a") { $0.lastHeartbeat = later }
    #expect(GPUCapacity.summarize(fleet, at: later, grace: grace) == before)
  }

  @Test("a GPU type whose last node leaves is no longer reported")
  func lastNodeOfATypeLeaves() {
    var fleet = Fleet(nodes: [node("a", 8), node("l", 4, model: "L4-24GB", memory: 24 * GiB)])
    fleet.remove("l")
    #expect(GPUCapacity.summarize(fleet, at: epoch, grace: grace).map(\.gpuModel) == ["H100-80GB"])
    #expect(GPUCapacity.summarize(fleet, gpuModel: "L4-24GB", at: epoch, grace: grace).isEmpty)
  }

  @Test("capacity, with and without a label selector, equals a per-node grouping after every change: registering, relabelling, taking and freeing GPUs, cordoning, draining, heartbeats, silence, removal")
  func sumsFollowEveryChange() {
    var random = SeededRandom(seed: 11)
    let models = ["H100-80GB", "L4-24GB", "A100-40GB"]
    var fleet = Fleet()
    var now = epoch
    for _ in 0..<3_000 {
      now = now.addingTimeInterval(Double(Int.random(in: 0...3, using: &random)))
      let name = "n\(Int.random(in: 0..<25, using: &random))"
      switch Int.random(in: 0..<8, using: &random) {
      case 0:
        let gpus = (0..<Int.random(in: 0...8, using: &random)).map { slot in
          gpu("\(name)-g\(slot)", models.randomElement(using: &random)!, memory: Int64.random(in: 1...80, using: &random) * GiB)
        }
        let heard = now.addingTimeInterval(-Double(Int.random(in: 0...60, using: &random)))
        fleet.upsert(Node(name: name, labels: ["zone": Bool.random(using: &random) ? "a" : "b"], gpus: gpus, lastHeartbeat: heard))
      case 1:
        fleet.remove(name)
      case 2:
        fleet.update(name) { $0.lastHeartbeat = now }
      case 3:
        fleet.update(name) { $0.cordoned.toggle() }
      case 4:
        fleet.update(name) { node in
          node.draining.toggle()
          node.cordoned = node.draining
        }
      case 5:
        let labels: [[String: String]] = [[:], ["zone": "a"], ["zone": "b", "rack": "r1"], ["rack": "r1"]]
        fleet.update(name) { $0.labels = labels.randomElement(using: &random)! }
      default:
        fleet.update(name) { node in
          guard !node.gpus.isEmpty else { return }
          let slot = Int.random(in: 0..<node.gpus.count, using: &random)
          switch Int.random(in: 0..<3, using: &random) {
          case 0: node.gpus[slot].exclusive = true
          case 1: node.gpus[slot].allocatedMemoryBytes = node.gpus[slot].memoryBytes / 2
          default:
            node.gpus[slot].exclusive = false
            node.gpus[slot].allocatedMemoryBytes = 0
          }
        }
      }
      for model in [""] + models {
        for selector in [[:], ["zone": "a"], ["zone": "b", "rack": "r1"], ["rack": "r2"]] {
          let got = GPUCapacity.summarize(fleet, gpuModel: model, selector: selector, at: now, grace: grace)
          #expect(got == PlacementEngineTests.grouped(Array(fleet.nodes.values), model: model, selector: selector, at: now))
        }
      }
    }
  }
}
