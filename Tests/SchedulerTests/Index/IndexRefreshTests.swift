import Foundation
import MaaSTesting
import Postgres
import Testing

@testable import Scheduler

/// Two replicas on one database: what one writes reaches the other's index through its loads of
/// changed rows.
@Suite("Index loads on Postgres")
struct IndexRefreshTests {
  func allocated(_ store: SchedulerStore) -> Int { store.capacity(gpuModel: "H100-80GB", selector: [:]).first?.allocatedGPUs ?? -1 }

  @Test("a replica's index picks up another's placements, releases, registrations and deletions by loading changed rows")
  func changedRowsReachTheOtherReplica() async throws {
    try await withMigratedDatabase(named: "scheduler_index_refresh", plan: try SchedulerSchema.plan(serviceRole: "maas_app")) { db in
      let quota = InMemoryQuota()
      let one = SchedulerStore(pool: db.app, quota: quota, logger: quietLogger)
      let two = SchedulerStore(pool: db.app, quota: quota, logger: quietLogger)
      try await register(one, "a", gpus: 4)
      try await register(one, "b", gpus: 4)
      try await two.refreshIndex()
      #expect(two.capacity(gpuModel: "H100-80GB", selector: [:]).first?.totalGPUs == 8)
      #expect(two.index.state.withLock { $0.since } != nil)

      let allocation = try await one.schedule(ScheduleCommand(tenantID: "t", workloadID: "w", request: exclusive(1, 3)))
      try await two.refreshIndex()
      #expect(allocated(two) == 3)
      // Two must now place around what one holds.
      let theirs = try await two.schedule(ScheduleCommand(tenantID: "t", workloadID: "w2", request: exclusive(1, 4)))
      #expect(theirs.placements[0].node != allocation.placements[0].node)

      _ = try await one.release(tenant: "t", .id(allocation.id))
      try await two.refreshIndex()
      #expect(allocated(two) == 4)

      try await register(one, "c", gpus: 2)
      try await two.refreshIndex()
      #expect(two.capacity(gpuModel: "H100-80GB", selector: [:]).first?.totalGPUs == 10)

      try await one.deleteNode("c")
      // A load of changed rows sees one node fewer in the database; the next reads everything.
      try await two.refreshIndex()
      try await two.refreshIndex()
      #expect(two.capacity(gpuModel: "H100-80GB", selector: [:]).first?.totalGPUs == 8)
      _ = try await two.release(tenant: "t", .id(theirs.id))
      try await one.refreshIndex()
      #expect(allocated(one) == 0)
      #expect(allocated(two) == 0)
    }
  }

  @Test("a placement chosen on a node another replica deleted is placed again elsewhere, not aborted, and counted as a conflict")
  func deletedNodeIsDropped() async throws {
    try await withMigratedDatabase(named: "scheduler_index_deleted", plan: try SchedulerSchema.plan(serviceRole: "maas_app")) { db in
      let quota = InMemoryQuota()
      let one = SchedulerStore(pool: db.app, quota: quota, logger: quietLogger)
      let two = SchedulerStore(pool: db.app, quota: quota, logger: quietLogger)
      try await register(one, "a", gpus: 2)
      try await register(one, "b", gpus: 2)
      try await two.refreshIndex()
      try await one.deleteNode("a")
      // Two still has "a", empty and first by name: it chooses it, the commit finds it gone.
      let allocation = try await two.schedule(ScheduleCommand(tenantID: "t", workloadID: "w", request: exclusive(1, 1)))
      #expect(allocation.placements[0].node == "b")
      #expect(two.capacity(gpuModel: "H100-80GB", selector: [:]).first?.nodes == 1)
      #expect(two.placementConflicts.load(ordering: .relaxed) == 1)
      #expect(one.placementConflicts.load(ordering: .relaxed) == 0)
    }
  }

  @Test("a load of one node reads its rows by index, not by scanning the fleet, with the plans the service uses")
  func loadOfOneNodeScansNothing() async throws {
    try await withMigratedDatabase(named: "scheduler_index_named_load", plan: try SchedulerSchema.plan(serviceRole: "maas_app")) { db in
      // 2,000 nodes of 8 GPUs, written straight in (registering them one by one takes long),
      // and the statistics a running database would have.
      _ = try await db.owner.execute(
        """
        INSERT INTO scheduler.nodes (name, last_heartbeat_time, create_time, update_time)
        SELECT 'node-' || lpad(i::text, 5, '0'), now(), now(), now() FROM generate_series(0, 1999) i
        """, [])
      _ = try await db.owner.execute(
        """
        INSERT INTO scheduler.gpus (uuid, node_name, position, model, memory_bytes)
        SELECT 'node-' || lpad(i::text, 5, '0') || '-g' || p, 'node-' || lpad(i::text, 5, '0'), p, 'H100-80GB', 85899345920
          FROM generate_series(0, 1999) i, generate_series(0, 7) p
        """, [])
      _ = try await db.owner.execute("ANALYZE scheduler.nodes", [])
      _ = try await db.owner.execute("ANALYZE scheduler.gpus", [])

      let (load, scans) = try await db.app.transaction(isolation: .repeatableRead, readOnly: true) { tx in
        // The service's pool plans every statement once (SchedulerService: genericPlans).
        _ = try await tx.query("SELECT set_config('plan_cache_mode', 'force_generic_plan', true)", [])
        let load = try await FleetIndex.load(tx, scope: .named(["node-01234"]), since: nil, last: false)
        // What this transaction has done so far, per table.
        let scans = try await tx.query(
          "SELECT relname, seq_scan FROM pg_stat_xact_user_tables WHERE schemaname = 'scheduler' AND relname IN ('nodes', 'gpus')", []
        ).reduce(into: [String: Int64]()) { $0[try $1.decode(String.self, at: 0)] = try $1.decode(Int64.self, at: 1) }
        return (load, scans)
      }
      #expect(load.nodes.map(\.name) == ["node-01234"])
      #expect(load.gpusByNode["node-01234"]?.map(\.uuid) == (0..<8).map { "node-01234-g\($0)" })
      #expect(scans["nodes", default: 0] == 0, "scans: \(scans)")
      #expect(scans["gpus", default: 0] == 0, "scans: \(scans)")
    }
  }
}
