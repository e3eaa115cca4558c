import Foundation
import MaaSTesting
import Postgres
import Testing

@testable import Scheduler

/// Listings of allocations read what they list: a tenant's ACTIVE ones, DrainNode's list and the
/// operator's fleet-wide ACTIVE ones do not walk every allocation ever released (each placement
/// leaves one behind).
@Suite("Allocation listings on Postgres")
struct AllocationListingTests {
  /// Rows of `table` this transaction has read so far: by sequential scans, and fetched by index scans.
  func reads(_ tx: PostgresTransaction, _ table: String) async throws -> (seqScans: Int64, indexFetches: Int64) {
    let row = try await tx.query(
      "SELECT seq_scan, coalesce(idx_tup_fetch, 0) FROM pg_stat_xact_user_tables WHERE schemaname = 'scheduler' AND relname = $1",
      [table])[0]
    return (try row.decode(Int64.self, at: 0), try row.decode(Int64.self, at: 1))
  }

  @Test("a tenant's ACTIVE listing, a node's ACTIVE allocations and the operator's fleet-wide ACTIVE listing read only those, past 3,000 released ones, with the plans the service uses")
  func listingsSkipReleasedHistory() async throws {
    try await withMigratedDatabase(named: "scheduler_allocation_listings", plan: try SchedulerSchema.plan(serviceRole: "maas_app")) { db in
      let store = SchedulerStore(pool: db.app, quota: InMemoryQuota(), logger: quietLogger)
      try await register(store, "a", gpus: 4)
      // The history first (older), written straight in: released allocations on the same node.
      _ = try await db.owner.execute(
        """
        INSERT INTO scheduler.allocations
          (id, tenant_id, workload_id, request, priority, placements, state, quota_reservation_id, create_time, release_time, quota_released)
        SELECT gen_random_uuid(), 't', 'old-' || i, '{}', 0, '[{"node": "a"}]', 2, 'r-' || i,
               now() - interval '1 day' + i * interval '1 ms', now(), true
          FROM generate_series(1, 3000) i
        """, [])
      var active: [UUID] = []
      for n in 0..<3 {
        active.append(try await store.schedule(ScheduleCommand(tenantID: "t", workloadID: "w\(n)", request: exclusive(1, 1))).id)
      }
      // And, newer, another tenant's ACTIVE allocations, a hundred times the operator's page below.
      _ = try await db.owner.execute(
        """
        INSERT INTO scheduler.allocations
          (id, tenant_id, workload_id, request, priority, placements, state, quota_reservation_id, create_time, release_time, quota_released)
        SELECT gen_random_uuid(), 'u', 'busy-' || i, '{}', 0, '[]', 1, 'r-u-' || i,
               now() + interval '1 day' + i * interval '1 ms', NULL, false
          FROM generate_series(1, 300) i
        """, [])
      _ = try await db.owner.execute("ANALYZE scheduler.allocations", [])
      _ = try await db.owner.execute("ANALYZE scheduler.placements", [])

      let zero = SchedulerStore.zeroID
      let epochStart = Date(timeIntervalSince1970: 0)
      let (listed, tenantReads) = try await db.app.transaction(tenant: "t", readOnly: true) { tx in
        _ = try await tx.query("SELECT set_config('plan_cache_mode', 'force_generic_plan', true)", [])
        let rows = try await tx.query(
          SchedulerStore.tenantListing, ["t", AllocationState.active.rawValue, epochStart, zero, "", Int64(100)])
        return (try rows.map { try $0.decode(UUID.self, at: 0) }, try await reads(tx, "allocations"))
      }
      #expect(listed == active)
      #expect(tenantReads.seqScans == 0 && tenantReads.indexFetches <= 10, "reads: \(tenantReads)")

      let (onNode, nodeReads) = try await db.app.transaction(readOnly: true) { tx in
        let rows = try await tx.query(
          "SELECT id FROM scheduler.node_allocations($1, $2, $3, $4)", ["a", epochStart, zero, Int32(100)])
        return (try rows.map { try $0.decode(UUID.self, at: 0) }, try await reads(tx, "allocations"))
      }
      #expect(onNode == active)
      #expect(nodeReads.seqScans == 0 && nodeReads.indexFetches <= 10, "reads: \(nodeReads)")
      // And through the store, as DrainNode asks.
      #expect(try await store.fleetAllocations(node: "a", state: .active, after: nil, limit: 100).map(\.id) == active)

      // The operator's fleet-wide view of what runs (ListAllocations of ACTIVE ones without a
      // tenant) reads a page of them and a dozen or so index entries more, neither the 3,000
      // released rows nor the 303 ACTIVE ones.
      let (fleetActive, fleetReads) = try await db.app.transaction(readOnly: true) { tx in
        let rows = try await tx.query("SELECT id FROM scheduler.active_allocations($1, $2, $3)", [epochStart, zero, Int32(3)])
        return (try rows.map { try $0.decode(UUID.self, at: 0) }, try await reads(tx, "allocations"))
      }
      #expect(fleetActive == active)
      #expect(fleetReads.seqScans == 0 && fleetReads.indexFetches <= 30, "reads: \(fleetReads)")
      #expect(try await store.fleetAllocations(node: "", state: .active, after: nil, limit: 3).map(\.id) == active)
      // The released history is walked (no index is kept for it), in order.
      let releasedPage = try await db.app.query(
        "SELECT workload_id FROM scheduler.fleet_allocations('', $1, $2, $3, $4)",
        [AllocationState.released.rawValue, epochStart, zero, Int32(50)])
      #expect(try releasedPage.map { try $0.decode(String.self, at: 0) } == (1...50).map { "old-\($0)" })
    }
  }
}
