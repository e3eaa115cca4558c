import Foundation
import MaaSTesting
import Postgres
import Scheduler
import Testing

/// Two scheduler replicas (two stores, two indexes) on one database.
@Suite("Scheduler store on Postgres")
struct StoreConcurrencyTests {
  func register(_ store: SchedulerStore, _ name: String, gpus: [GPU]) async throws {
    _ = try await store.registerNode(try RegisterNodeCommand.validate(name: name, labels: [:], gpus: gpus).get())
  }

  func command(_ tenant: String, _ workload: String, _ request: PlacementRequest) throws -> ScheduleCommand {
    ScheduleCommand(tenantID: tenant, workloadID: workload, request: request)
  }

  @Test("two replicas scheduling and releasing at once never over-allocate a GPU, and releases free exactly what they held")
  func concurrentReplicas() async throws {
    try await withMigratedDatabase(named: "scheduler_concurrency", plan: try SchedulerSchema.plan(serviceRole: "maas_app"), appConnections: 12) { db in
      let quota = InMemoryQuota()
      let clock: @Sendable () -> Date = { Date() }
      let one = SchedulerStore(pool: db.app, quota: quota, logger: quietLogger, clock: clock)
      let two = SchedulerStore(pool: db.app, quota: quota, logger: quietLogger, clock: clock)
      for n in 0..<3 { try await register(one, "x\(n)", gpus: (0..<4).map { gpu("x\(n)-g\($0)") }) }
      for n in 0..<2 { try await register(one, "s\(n)", gpus: (0..<2).map { gpu("s\(n)-g\($0)", "L4-24GB", memory: 24 * GiB) }) }
      try await one.refreshIndex()
      try await two.refreshIndex()

      let outcomes = try await withThrowingTaskGroup(of: (Bool, Bool).self) { group in
        for i in 0..<40 {
          let store = i.isMultiple(of: 2) ? one : two
          group.addTask {
            let request = i % 3 == 0
              ? shared(1, Int64(5 + i % 7) * GiB, policy: .binpack)
              : exclusive(1, 1 + i % 3, policy: i % 4 == 0 ? .binpack : .leastLoaded)
            do {
              let allocation = try await store.schedule(try command("t\(i % 3)", "w\(i)", request))
              if i.isMultiple(of: 5) { _ = try await store.release(tenant: allocation.tenantID, .id(allocation.id)) }
              return (true, i.isMultiple(of: 5))
            } catch let error as SchedulerError {
              if case .capacityExhausted = error { return (false, false) }
              throw error
            }
          }
        }
        var all: [(Bool, Bool)] = []
        for try await outcome in group { all.append(outcome) }
        return all
      }
      #expect(outcomes.contains { $0.0 })

      // Every GPU's counters equal the sum of the ACTIVE allocations' claims on it, and fit it.
      let gpus = try await db.owner.query(
        "SELECT uuid, memory_bytes, allocated_memory_bytes, exclusive FROM scheduler.gpus ORDER BY uuid", [])
      let claims = try await db.owner.query(
        """
        SELECT p.gpu_uuid, (sum(p.memory_bytes) FILTER (WHERE NOT p.exclusive))::bigint, count(*) FILTER (WHERE p.exclusive),
               count(*) FILTER (WHERE NOT p.exclusive)
          FROM scheduler.placements p JOIN scheduler.allocations a ON a.id = p.allocation_id
         WHERE a.state = 1 GROUP BY p.gpu_uuid
        """, [])
      var held: [String: (Int64, Int, Int)] = [:]
      for row in claims {
        held[try row.decode(String.self, at: 0)] = (
          try row.decode(Int64?.self, at: 1) ?? 0, try row.decode(Int.self, at: 2), try row.decode(Int.self, at: 3))
      }
      for row in gpus {
        let uuid = try row.decode(String.self, at: 0)
        let memory = try row.decode(Int64.self, at: 1)
        let allocated = try row.decode(Int64.self, at: 2)
        let exclusiveFlag = try row.decode(Bool.self, at: 3)
        let (sharedSum, exclusiveCount, sharedCount) = held[uuid] ?? (0, 0, 0)
        #expect(allocated <= memory)
        #expect(allocated == sharedSum, "GPU \(uuid)")
        #expect(exclusiveCount <= 1, "GPU \(uuid) held exclusively \(exclusiveCount) times")
        #expect(exclusiveFlag == (exclusiveCount == 1), "GPU \(uuid)")
        #expect(!(exclusiveCount == 1 && sharedCount > 0), "GPU \(uuid) both exclusive and shared")
      }

      // Every success is recorded; released ones are RELEASED and their quota given back.
      let succeeded = outcomes.filter(\.0).count
      let released = outcomes.filter(\.1).count
      let recorded = try await db.owner.query("SELECT count(*) FILTER (WHERE state = 1), count(*) FILTER (WHERE state = 2) FROM scheduler.allocations", [])
      #expect(try recorded[0].decode(Int.self, at: 0) == succeeded - released)
      #expect(try recorded[0].decode(Int.self, at: 1) == released)

      // After releasing everything, the fleet is wholly free again, in the database and in both indexes.
      for tenant in ["t0", "t1", "t2"] {
        for allocation in try await one.listAllocations(tenant: tenant, node: "", state: .active, after: nil, limit: 1000) {
          _ = try await two.release(tenant: tenant, .id(allocation.id))
        }
        #expect(quota.inUse(tenant) == 0)
      }
      let busy = try await db.owner.query(
        "SELECT count(*) FROM scheduler.gpus WHERE allocated_memory_bytes > 0 OR allocated_mig_slices > 0 OR exclusive", [])
      #expect(try busy[0].decode(Int.self, at: 0) == 0)
      // Each index learns what the other replica did only by loading it (one's own releases
      // during the run included, which two may have loaded as held), so both load first.
      try await one.refreshIndex()
      try await two.refreshIndex()
      #expect(one.capacity(gpuModel: "H100-80GB", selector: [:]).first?.freeGPUs == 12)
      #expect(two.capacity(gpuModel: "H100-80GB", selector: [:]).first?.freeGPUs == 12)
    }
  }

  @Test("Schedule with the same workload_id answers the first allocation, and a different request is ALREADY_EXISTS")
  func idempotentByWorkload() async throws {
    try await withMigratedDatabase(named: "scheduler_idempotent", plan: try SchedulerSchema.plan(serviceRole: "maas_app")) { db in
      let quota = InMemoryQuota()
      let store = SchedulerStore(pool: db.app, quota: quota, logger: quietLogger)
      try await register(store, "a", gpus: (0..<4).map { gpu("a-g\($0)") })
      let first = try await store.schedule(try command("t1", "w", exclusive(1, 2)))
      let again = try await store.schedule(try command("t1", "w", exclusive(1, 2)))
      #expect(again.id == first.id)
      #expect(quota.inUse("t1") == 2)
      await #expect(throws: SchedulerError.workloadTaken("w")) { try await store.schedule(try command("t1", "w", exclusive(1, 1))) }
      // Another tenant sees nothing of it.
      await #expect(throws: SchedulerError.allocationNotFound("with allocation_id \"\(first.id.uuidString.lowercased())\"")) {
        try await store.allocation(tenant: "t2", .id(first.id))
      }
      let released = try await store.release(tenant: "t1", .workload("w"))
      #expect(released.state == .released)
      #expect(quota.inUse("t1") == 0)
      let twice = try await store.release(tenant: "t1", .id(first.id))
      #expect(twice.state == .released)
    }
  }

  @Test("the tenant's concurrent-GPU quota refuses a placement with RESOURCE_EXHAUSTED and places nothing")
  func quotaRefuses() async throws {
    try await withMigratedDatabase(named: "scheduler_quota_refuses", plan: try SchedulerSchema.plan(serviceRole: "maas_app")) { db in
      let quota = InMemoryQuota()
      quota.setLimit(3)
      let store = SchedulerStore(pool: db.app, quota: quota, logger: quietLogger)
      try await register(store, "a", gpus: (0..<8).map { gpu("a-g\($0)") })
      await #expect(throws: SchedulerError.self) { try await store.schedule(try command("t1", "big", exclusive(2, 2))) }
      let rows = try await db.owner.query("SELECT count(*) FROM scheduler.allocations", [])
      #expect(try rows[0].decode(Int.self, at: 0) == 0)
    }
  }

  @Test("re-registering a GPU uuid of another node is refused as taken")
  func uuidOnAnotherNode() async throws {
    try await withMigratedDatabase(named: "scheduler_uuid_taken", plan: try SchedulerSchema.plan(serviceRole: "maas_app")) { db in
      let store = SchedulerStore(pool: db.app, quota: InMemoryQuota(), logger: quietLogger)
      try await register(store, "a", gpus: [gpu("g-1")])
      await #expect(throws: SchedulerError.gpuTaken(uuid: "g-1", node: "a")) { try await register(store, "b", gpus: [gpu("g-1")]) }
    }
  }
}
