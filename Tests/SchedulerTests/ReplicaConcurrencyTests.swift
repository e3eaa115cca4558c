import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import MaaSTesting
import Postgres
import Scheduler
import Synchronization
import Testing

/// The scheduler's promise checked the way production would break it: two `maas-scheduler`
/// processes on one database, each holding GPUs in a real `maas-quota` process, under thousands
/// of Schedule and Release calls from several Python grpcio processes at once, on a fleet small
/// enough that they fight over every GPU.
@Suite("Two maas-scheduler replicas sharing one database", .serialized, .timeLimit(.minutes(10)))
struct ReplicaConcurrencyTests {
  static let tenants = ["t0", "t1", "t2", "t3"]
  /// Concurrent GPUs per tenant: t3's limit is far below its share of the load, so quota refuses
  /// it; the others' are above the fleet's 44 GPUs, so capacity refuses them.
  static let concurrentGPULimits: [String: Int64] = ["t0": 1_000, "t1": 1_000, "t2": 1_000, "t3": 6]

  /// One workload's outcome as `scheduler_load.py` reports it.
  struct Record: Decodable {
    var tenant: String
    var sharing: String
    var outcome: String
    var message: String?
    var id: String?
    var gpus: Int64
    var placements: [Claimed]?
    var released: Bool
    var released_placements: [Claimed]?
  }

  /// `[node, uuids, memory, mig_profile, mig_start]`: one replica's placement as the client saw it.
  struct Claimed: Decodable, Equatable {
    var node: String
    var uuids: [String]
    var memory: Int64
    var profile: String
    var start: Int

    init(from decoder: any Decoder) throws {
      var fields = try decoder.unkeyedContainer()
      node = try fields.decode(String.self)
      uuids = try fields.decode([String].self)
      memory = try fields.decode(Int64.self)
      profile = try fields.decode(String.self)
      start = try fields.decode(Int.self)
    }
  }

  @Test("thousands of concurrent Schedule and Release calls never over-allocate a GPU; every success is recorded and every Release frees what it held")
  func noOverAllocationAcrossReplicas() async throws {
    try #require(PythonEnvironment.isSetUp, "run scripts/python-env (or make test) first: the load comes from Python grpcio")
    let database = try await PostgresFixture.shared().createDatabase(named: "scheduler_replicas")
    let (quota, quotaTarget) = try await ServerProcess.quota(databaseNamed: "scheduler_replicas_quota")
    defer { quota.kill() }

    // The nodes register once and never heartbeat here. Index refresh is the default, so each
    // replica decides on a view the other has moved past.
    let environment = schedulerEnvironment(database: database, quotaTarget: quotaTarget)
    let replicas = try (0..<2).map { _ in
      try ServerProcess(binary: try builtProduct(named: "maas-scheduler"), environmentPrefix: "MAAS_SCHEDULER_", environment: environment)
    }
    defer { replicas.forEach { $0.kill() } }
    var targets: [String] = []
    for replica in replicas { targets.append("127.0.0.1:\(try await replica.listeningPort())") }

    try await setConcurrentGPULimits(Self.concurrentGPULimits, at: quotaTarget)
    // 4 x 8 H100 (exclusive), 2 x 4 L4 (shared), 1 x 4 A100 with MIG: 44 GPUs.
    try await withClient(targets[0]) { client in
      let scheduler = Maas_Scheduler_V1_Scheduler.Client(wrapping: client)
      for n in 0..<4 { _ = try await scheduler.registerNode(Self.node("h100-\(n)", gpus: 8, model: "H100-80GB")) }
      for n in 0..<2 { _ = try await scheduler.registerNode(Self.node("l4-\(n)", gpus: 4, model: "L4-24GB", memory: 24 << 30)) }
      for n in 0..<1 { _ = try await scheduler.registerNode(Self.node("a100-\(n)", gpus: 4, model: "A100-80GB", mig: true)) }
    }

    // Runs the loads at once, each a Python process, and answers their records in order.
    typealias Load = (target: String, count: Int, prefix: String, keepEvery: Int)
    func run(_ loads: [Load]) async throws -> [[String: Record]] {
      try await withThrowingTaskGroup(of: (Int, [String: Record]).self) { group in
        for (index, load) in loads.enumerated() {
          group.addTask {
            let outcome = try await runToCompletion(
              PythonEnvironment.python,
              [PythonEnvironment.script("scheduler_load.py"), load.target, "\(load.count)", "16", load.prefix,
               Self.tenants.joined(separator: ","), "\(load.keepEvery)"],
              environment: PythonEnvironment.environment, timeLimit: .seconds(400))
            // Only a summary on failure, and only formed then (the comment is an autoclosure): the
            // full answer is megabytes.
            func unanswered() -> [Substring] {
              outcome.standardOutput.components(separatedBy: "\"outcome\": \"").dropFirst()
                .filter { !$0.hasPrefix("placed") && !$0.hasPrefix("RESOURCE_EXHAUSTED") }.prefix(3).map { $0.prefix(300) }
            }
            let succeeded = outcome.succeeded
            try #require(
              succeeded,
              """
              load \(load.prefix) failed: \(unanswered()) \(outcome.standardError.suffix(2_000))
              replicas' latest logs: \(replicas.map { $0.standardErrorTail() })
              """)
            return (index, try JSONDecoder().decode([String: Record].self, from: Data(outcome.standardOutput.utf8)))
          }
        }
        var all = [[String: Record]](repeating: [:], count: loads.count)
        for try await (index, records) in group { all[index] = records }
        return all
      }
    }

    // First a pair that sends the same workloads to both replicas at once, as a client failing
    // over would, keeping them all. The fleet is empty then, so every one of them fits and both
    // replicas must answer it placed, with the same allocation.
    let pair = try await run([(targets[0], 6, "both", 1), (targets[1], 6, "both", 1)])
    #expect(pair[0].count == 6 && pair[1].count == 6)
    for (name, first) in pair[0] {
      let second = pair[1][name]
      #expect(first.outcome == "placed" && second?.outcome == "placed", "workload \(name): \(first.outcome), \(second?.outcome ?? "none")")
      #expect(first.id == second?.id, "workload \(name) placed twice")
    }

    // Then four processes of distinct workloads, two per replica, each keeping a few of them.
    // What is kept stays well below the fleet, so the churn goes on.
    // Stopped by a flag, not by cancelling the task: a cancelled query would fail the read.
    let loadsDone = Atomic<Bool>(false)
    let sampler = Task { try await Self.sampleClaims(ownerURL: database.ownerURL, until: loadsDone) }
    let results = try await run([
      (targets[0], 1_200, "a", 400), (targets[1], 1_200, "b", 400),
      (targets[0], 1_200, "c", 400), (targets[1], 1_200, "d", 400),
    ]) + pair
    loadsDone.store(true, ordering: .releasing)
    let snapshots = try await sampler.value
    #expect(snapshots.checked > 0, "the sampler never saw the fleet during the load")
    #expect(snapshots.violations.isEmpty, "over-allocated GPUs seen during the load: \(snapshots.violations.prefix(5))")

    // The load really contended: many placements, and refusals of both kinds.
    var distinct: [String: Record] = [:]
    for records in results[0...3] { distinct.merge(records) { first, _ in first } }
    #expect(distinct.count == 4_800)
    let placed = distinct.values.filter { $0.outcome == "placed" }
    #expect(placed.count > 1_000, "only \(placed.count) of 4,800 placed")
    let refusals = distinct.values.compactMap(\.message)
    let seen = "\(placed.count) placed; refusals like \(Array(Set(refusals.map { $0.prefix(60) })).prefix(4))"
    #expect(refusals.contains { $0.contains("concurrent_gpus") }, "no quota refusal in the load: \(seen)")
    #expect(refusals.contains { !$0.contains("concurrent_gpus") }, "no capacity refusal in the load: \(seen)")

    // Every allocation a client was granted, once each; those not released must still be held.
    var granted: [String: Record] = [:]
    for records in results { for record in records.values where record.outcome == "placed" { granted[record.id!] = record } }
    let kept = granted.values.filter { !$0.released }

    // Every Release answered exactly the placements its Schedule granted.
    for record in granted.values where record.released {
      #expect(record.released_placements == record.placements, "allocation \(record.id!)")
    }

    let owner = try PostgresPool(
      configuration: PostgresConfiguration(url: database.ownerURL, minConnections: 0, maxConnections: 1), logger: quietLogger)
    // Every success is recorded, in the state the client left it, and nothing else is.
    let rows = try await owner.query("SELECT id::text, state FROM scheduler.allocations", [])
    var stored: [String: Int] = [:]
    for row in rows { stored[try row.decode(String.self, at: 0)] = try row.decode(Int.self, at: 1) }
    #expect(stored.count == granted.count, "allocations stored \(stored.count), granted \(granted.count)")
    for (id, record) in granted { #expect(stored[id] == (record.released ? 2 : 1), "allocation \(id)") }

    // What the GPUs hold is exactly what the kept allocations were granted: a Release that freed
    // more or less than it held would show here.
    // MIG instances hold the positions their clients were told (`mig_start`), apart.
    var expected: [String: (memory: Int64, slices: Int, mask: UInt64, exclusive: Bool)] = [:]
    for record in kept {
      for claim in record.placements ?? [] {
        for uuid in claim.uuids {
          var held = expected[uuid] ?? (0, 0, 0, false)
          if record.sharing == "EXCLUSIVE" {
            held.exclusive = true
          } else {
            held.memory += claim.memory
            if let slices = ["1g.10gb": 1, "3g.40gb": 3][claim.profile] {
              #expect(MIGLayout.isValid(start: claim.start, slices: slices, total: 7), "\(claim.profile) at \(claim.start)")
              let block = MIGLayout.mask(start: claim.start, slices: slices)
              #expect(held.mask & block == 0, "GPU \(uuid): \(claim.profile) at \(claim.start) overlaps another instance")
              held.slices += slices
              held.mask |= block
            }
          }
          expected[uuid] = held
        }
      }
    }
    let gpus = try await owner.query(
      "SELECT uuid, allocated_memory_bytes, allocated_mig_slices, exclusive, allocated_mig_mask FROM scheduler.gpus", [])
    #expect(gpus.count == 44)
    for row in gpus {
      let uuid = try row.decode(String.self, at: 0)
      let held = expected[uuid] ?? (0, 0, 0, false)
      #expect(try row.decode(Int64.self, at: 1) == held.memory, "GPU \(uuid) memory")
      #expect(try row.decode(Int.self, at: 2) == held.slices, "GPU \(uuid) MIG slices")
      #expect(try row.decode(Bool.self, at: 3) == held.exclusive, "GPU \(uuid) exclusive")
      #expect(UInt64(bitPattern: try row.decode(Int64.self, at: 4)) == held.mask, "GPU \(uuid) MIG positions")
    }
    await owner.close()

    // Quota holds exactly the kept allocations' GPUs, and nothing is left reserved.
    try await withClient(quotaTarget) { client in
      let quota = Maas_Quota_V1_Quota.Client(wrapping: client)
      for tenant in Self.tenants {
        let line = try await quota.getQuota(.with { $0.tenantID = tenant }).resources.first { $0.resource == .concurrentGpus }
        #expect(line?.used == kept.filter { $0.tenant == tenant }.reduce(0) { $0 + $1.gpus }, "tenant \(tenant)")
        #expect(line?.reserved == 0, "tenant \(tenant)")
      }
    }

    for replica in replicas { replica.signal(SIGTERM) }
    for replica in replicas { #expect(try await replica.exitStatus() == .exited(0)) }
    quota.signal(SIGTERM)
    #expect(try await quota.exitStatus() == .exited(0))
  }

  static func node(_ name: String, gpus: Int, model: String, memory: Int64 = 80 << 30, mig: Bool = false) -> Maas_Scheduler_V1_RegisterNodeRequest {
    .with {
      $0.node = .with {
        $0.name = name
        $0.gpus = (0..<gpus).map { index in
          .with {
            $0.uuid = "\(name)-gpu-\(index)"
            $0.model = model
            $0.memoryBytes = memory
            if mig {
              $0.migSlices = 7
              $0.migProfiles = [
                .with { $0.name = "1g.10gb"; $0.memoryBytes = 10 << 30; $0.slices = 1; $0.maxInstances = 7 },
                .with { $0.name = "3g.40gb"; $0.memoryBytes = 40 << 30; $0.slices = 3; $0.maxInstances = 2 },
              ]
            }
          }
        }
      }
    }
  }

  /// Reads the claims on every GPU in one snapshot (`overAllocatedGPUs`), again and again until
  /// cancelled, and keeps the GPUs whose claims exceed them.
  static func sampleClaims(ownerURL: String, until done: borrowing Atomic<Bool>) async throws -> (checked: Int, violations: [String]) {
    let owner = try PostgresPool(
      configuration: PostgresConfiguration(url: ownerURL, minConnections: 0, maxConnections: 1), logger: quietLogger)
    var checked = 0
    var violations: [String] = []
    while !done.load(ordering: .acquiring) {
      let rows = try await owner.query(overAllocatedGPUs, [])
      violations += try rows.map { try $0.decode(String.self, at: 0) }
      checked += 1
      try? await Task.sleep(for: .milliseconds(100))
    }
    await owner.close()
    return (checked, violations)
  }
}
