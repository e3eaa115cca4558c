import Foundation
import Testing

@testable import Scheduler

/// One row of snapshot visibility: `xmin:xmax:running` and whether a committed xid is seen.
struct SnapshotCase: Sendable, CustomTestStringConvertible {
  var testDescription: String
  var text: String
  var xid: UInt64
  var sees: Bool
}

let snapshotCases: [SnapshotCase] = [
  .init(testDescription: "a transaction below xmin is seen", text: "100:105:", xid: 99, sees: true),
  .init(testDescription: "a transaction at or past xmax is not seen", text: "100:105:", xid: 105, sees: false),
  .init(testDescription: "a transaction between xmin and xmax that had finished is seen", text: "100:105:101,103", xid: 102, sees: true),
  .init(testDescription: "a transaction still running at the snapshot is not seen", text: "100:105:101,103", xid: 103, sees: false),
]

@Suite("The placement index in step with the database")
struct FleetIndexTests {
  let engine = PlacementEngine(heartbeatGrace: .seconds(30))

  @Test(arguments: snapshotCases)
  func snapshotVisibility(_ row: SnapshotCase) {
    #expect(PostgresSnapshot(row.text)?.sees(row.xid) == row.sees)
  }

  @Test("a snapshot reads the 32-bit xid rows carry from its 64-bit xmin")
  func rowXmin() {
    #expect(PostgresSnapshot("4294967396:4294967400:")?.rowXmin == "100")
    #expect(PostgresSnapshot("junk") == nil)
  }

  /// An index holding `nodes`, loaded completely at snapshot `xmin`.
  func loadedIndex(_ nodes: [Node], xmin: UInt64 = 100) -> FleetIndex {
    let index = FleetIndex()
    index.merge(load(.all, nodes, xmin: xmin))
    return index
  }

  func load(_ scope: FleetLoad.Scope, _ nodes: [Node], xmin: UInt64, allocations: [FleetIndex.GPUState] = []) -> FleetLoad {
    FleetLoad(
      scope: scope, snapshot: PostgresSnapshot(xmin: xmin, xmax: xmin + 1),
      nodes: nodes.map {
        FleetLoad.NodeRow(
          name: $0.name, labels: $0.labels, cordoned: $0.cordoned, draining: $0.draining, lastHeartbeat: $0.lastHeartbeat,
          createTime: $0.createTime, updateTime: $0.createTime)
      },
      gpusByNode: Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, $0.gpus) }), allocations: allocations)
  }

  func state(_ gpu: String, on node: String, exclusive: Bool) -> FleetIndex.GPUState {
    FleetIndex.GPUState(node: node, uuid: gpu, usage: GPUUsage(exclusive: exclusive))
  }

  func place(_ index: FleetIndex, _ request: PlacementRequest) throws -> [ReplicaPlacement] {
    try index.assume { engine.place(request, in: $0, at: epoch) }.get()
  }

  @Test("a claim decided but not yet committed survives a load that does not know it")
  func pendingSurvivesLoad() throws {
    let index = loadedIndex([node("a", 2)])
    let placements = try place(index, exclusive(1, 1))
    index.merge(load(.all, [node("a", 2)], xmin: 110))
    #expect(index.snapshot.nodes["a"]?.gpus.filter(\.exclusive).count == 1)
    // And a second request does not get the same GPU.
    let second = try place(index, exclusive(1, 1))
    #expect(second[0].gpuUUIDs != placements[0].gpuUUIDs)
  }

  @Test("giving a claim back after a load leaves the GPU's count exact, not below what the database holds")
  func giveBackAfterLoad() throws {
    let index = loadedIndex([l4Node("a", 1)])
    let placements = try place(index, shared(1, 8 * GiB))
    var held = l4Node("a", 1)
    held.gpus[0].allocatedMemoryBytes = 4 * GiB  // another replica's
    index.merge(load(.all, [held], xmin: 110))
    #expect(index.snapshot.nodes["a"]?.gpus[0].allocatedMemoryBytes == 12 * GiB)
    index.giveBack(placements)
    #expect(index.snapshot.nodes["a"]?.gpus[0].allocatedMemoryBytes == 4 * GiB)
  }

  @Test("a load whose snapshot does not see this replica's commit does not undo it in memory")
  func staleLoadKeepsLocalCommit() throws {
    let index = loadedIndex([node("a", 1)])
    let placements = try place(index, exclusive(1, 1))
    index.committed(placements, rows: [state("a-g0", on: "a", exclusive: true)], xid: 120)
    // Began before transaction 120 committed: it still shows the GPU free.
    index.merge(load(.changed, [], xmin: 115, allocations: [state("a-g0", on: "a", exclusive: false)]))
    #expect(index.snapshot.nodes["a"]?.gpus[0].exclusive == true)
    // A later load that sees 120 is taken as it is.
    index.merge(load(.changed, [], xmin: 130, allocations: [state("a-g0", on: "a", exclusive: false)]))
    #expect(index.snapshot.nodes["a"]?.gpus[0].exclusive == false)
  }

  @Test("a load of changed rows brings another replica's placement into the orders")
  func changedRowsMoveNodes() throws {
    let index = loadedIndex([node("a", 2), node("b", 2)])
    index.merge(load(.changed, [], xmin: 110, allocations: [state("a-g0", on: "a", exclusive: true), state("a-g1", on: "a", exclusive: true)]))
    #expect(try place(index, exclusive(1, 2, policy: .binpack))[0].node == "b")
  }

  @Test("a complete load drops a node another replica deleted, but not one this replica registered after its snapshot")
  func completeLoadDeletes() {
    let index = loadedIndex([node("a", 1), node("b", 1)])
    index.merge(load(.named(["c"]), [node("c", 1)], xmin: 105))
    index.wroteNode("c", xid: 140)
    index.merge(load(.all, [node("a", 1)], xmin: 130))
    #expect(index.snapshot.nodes.keys.sorted() == ["a", "c"])
    index.merge(load(.all, [node("a", 1)], xmin: 150))
    #expect(index.snapshot.nodes.keys.sorted() == ["a"])
  }

  @Test("a count of nodes the index cannot explain makes the next load complete; this replica's own registrations explain theirs")
  func nodeCountForcesCompleteLoad() {
    let index = loadedIndex([node("a", 1), node("b", 1)])
    func changed(count: Int, xmin: UInt64) -> Bool {
      var changed = load(.changed, [], xmin: xmin)
      changed.nodeCount = count
      index.merge(changed)
      return index.state.withLock { $0.partialLoads } == FleetIndex.partialLoadsPerComplete
    }
    #expect(!changed(count: 2, xmin: 105))
    // Registered here after the next snapshot: the database does not count it yet.
    index.merge(load(.named(["c"]), [node("c", 1)], xmin: 125))
    index.wroteNode("c", xid: 120)
    #expect(!changed(count: 2, xmin: 110))
    // Deleted here after the snapshot: the database still counts it.
    index.wroteNode("b", xid: 121, deleted: true)
    index.remove("b")
    #expect(!changed(count: 2, xmin: 110))
    // Another replica deleted one: nothing here explains it.
    #expect(changed(count: 1, xmin: 130))
  }

  @Test("a node registered again with other GPUs is read whole, keeping what this replica holds pending")
  func reregistration() throws {
    let index = loadedIndex([node("a", 2)])
    let placements = try place(index, exclusive(1, 1))
    let grown = node("a", 4)
    index.merge(load(.changed, [grown], xmin: 110))
    let gpus = index.snapshot.nodes["a"]?.gpus ?? []
    #expect(gpus.count == 4)
    #expect(gpus.filter(\.exclusive).map(\.uuid) == placements[0].gpuUUIDs)
  }
}
