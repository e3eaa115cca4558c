import Foundation
import MaaSTesting
import Postgres
import PostgresMigrations
@testable import Scheduler
import Testing

/// Migration 6 gives the MIG instances placed before it (counted by slices only) their positions.
@Suite("Upgrading to MIG positions")
struct MIGPositionsMigrationTests {
  @Test("instances placed before migration 6 get positions by the placement rule, in their rows, their GPU's mask and their stored claims")
  func backfillsPositions() async throws {
    let full = try SchedulerSchema.plan(serviceRole: "maas_app")
    let before = try MigrationPlan(schema: full.schema, migrations: Array(full.migrations.prefix(5)))
    try await withMigratedDatabase(named: "scheduler_mig_positions", plan: before) { db in
      try await Self.seed(db.owner)
      try await Migrator(pool: db.owner, logger: quietLogger).apply(full)

      // m-g0 held a 3g, a 2g and a 1g: largest first, each where it wastes least, highest first.
      // m-g1 held two 3g and a 1g, a layout no A100 can hold: the 1g keeps position 0.
      let starts = try await db.owner.query(
        "SELECT workload_id, replica, mig_start FROM scheduler.placements p JOIN scheduler.allocations a ON a.id = p.allocation_id",
        [])
      var found: [String: Int32] = [:]
      for row in starts { found["\(try row.decode(String.self, at: 0))/\(try row.decode(Int32.self, at: 1))"] = try row.decode(Int32.self, at: 2) }
      #expect(found == ["three/0": 4, "two/0": 2, "one/0": 1, "pair/0": 4, "pair/1": 0, "stuck/0": 0])
      #expect(try await Self.masks(db.owner) == ["m-g0": 0b1111_1110, "m-g1": 0b1111_1111])
      // The check the concurrency test samples with sees the overlap it left on m-g1.
      let overAllocated = try await db.owner.query(overAllocatedGPUs, [])
      #expect(try overAllocated.map { try $0.decode(String.self, at: 0) } == ["m-g1"])

      // The stored claims carry the same starts: a Release frees exactly the 1g's position, and
      // the next 1g goes there (the highest free position on the only GPU with room).
      let quota = InMemoryQuota()
      let store = SchedulerStore(pool: db.app, quota: quota, heartbeatGrace: .seconds(3600), logger: quietLogger, clock: { epoch })
      let pair = try await store.allocation(tenant: "t1", .workload("pair"))
      #expect(pair.placements.map(\.migStart) == [4, 0])
      _ = try await store.release(tenant: "t1", .workload("one"))
      #expect(try await Self.masks(db.owner)["m-g0"] == 0b1111_1100)
      let next = try await store.schedule(ScheduleCommand(tenantID: "t1", workloadID: "next", request: mig(1, "1g.10gb")))
      #expect(next.placements.map(\.gpuUUIDs) == [["m-g0"]])
      #expect(next.placements.map(\.migStart) == [1])
    }
  }

  static func masks(_ owner: PostgresPool) async throws -> [String: Int64] {
    var masks: [String: Int64] = [:]
    for row in try await owner.query("SELECT uuid, allocated_mig_mask FROM scheduler.gpus", []) {
      masks[try row.decode(String.self, at: 0)] = try row.decode(Int64.self, at: 1)
    }
    return masks
  }

  /// A node of two A100s in MIG mode with allocations as the schema before migration 6 held
  /// them: counters, placements rows, and stored claims without `migStart`.
  static func seed(_ owner: PostgresPool) async throws {
    let profiles = try PostgresJSON(encoding: gpu("x", "A100-80GB", mig: true).migProfiles + [
      MIGProfile(name: "2g.20gb", memoryBytes: 20 * GiB, slices: 2, maxInstances: 3)
    ])
    _ = try await owner.query(
      "INSERT INTO scheduler.nodes (name, last_heartbeat_time, create_time, update_time) VALUES ('m', $1, $1, $1)", [epoch])
    for (uuid, memory, slices, allocated) in [("m-g0", 80 * GiB, 6, 70 * GiB), ("m-g1", 96 * GiB, 7, 90 * GiB)] {
      _ = try await owner.query(
        """
        INSERT INTO scheduler.gpus (uuid, node_name, position, model, memory_bytes, mig_slices, mig_profiles,
                                    allocated_memory_bytes, allocated_mig_slices)
        VALUES ($1, 'm', $2, 'A100-80GB', $3, 7, $4, $5, $6)
        """, [uuid, Int32(uuid == "m-g0" ? 0 : 1), memory, profiles, allocated, Int32(slices)])
    }
    let allocations: [(workload: String, gpu: String, profile: String, slices: Int, memory: Int64, replicas: Int)] = [
      ("one", "m-g0", "1g.10gb", 1, 10 * GiB, 1), ("three", "m-g0", "3g.40gb", 3, 40 * GiB, 1),
      ("two", "m-g0", "2g.20gb", 2, 20 * GiB, 1), ("pair", "m-g1", "3g.40gb", 3, 40 * GiB, 2),
      ("stuck", "m-g1", "1g.10gb", 1, 10 * GiB, 1),
    ]
    for allocation in allocations {
      let id = UUID()
      let placements = (0..<allocation.replicas).map { replica in
        ReplicaPlacement(
          replica: replica, node: "m", gpuUUIDs: [allocation.gpu], memoryBytes: allocation.memory, migProfile: allocation.profile,
          claims: [GPUClaim(gpuUUID: allocation.gpu, memoryBytes: allocation.memory, migSlices: allocation.slices, exclusive: false)])
      }
      _ = try await owner.query(
        """
        INSERT INTO scheduler.allocations (id, tenant_id, workload_id, request, priority, placements, state, quota_reservation_id, create_time)
        VALUES ($1, 't1', $2, $3, 0, $4, 1, $5, $6)
        """,
        [id, allocation.workload, try PostgresJSON(encoding: mig(allocation.replicas, allocation.profile)),
         try PostgresJSON(encoding: placements), "r-\(allocation.workload)", epoch])
      for replica in 0..<allocation.replicas {
        _ = try await owner.query(
          """
          INSERT INTO scheduler.placements (allocation_id, replica, gpu_uuid, node_name, memory_bytes, mig_slices, exclusive)
          VALUES ($1, $2, $3, 'm', $4, $5, false)
          """, [id, Int32(replica), allocation.gpu, allocation.memory, Int32(allocation.slices)])
      }
    }
    // As stored before: no `migStart` in any claim.
    _ = try await owner.query(
      """
      UPDATE scheduler.allocations
         SET placements = (SELECT jsonb_agg(e #- '{claims,0,migStart}' ORDER BY n) FROM jsonb_array_elements(placements) WITH ORDINALITY AS x(e, n))
      """, [])
    let stored = try await owner.query("SELECT count(*)::bigint FROM scheduler.allocations WHERE placements::text LIKE '%migStart%'", [])
    #expect(try stored[0].decode(Int64.self, at: 0) == 0)
  }
}
