import Foundation
import MaaSTesting
@testable import Scheduler
import Testing

@Suite("Quota holds that Release could not give back")
struct QuotaReleaseRetryTests {
  @Test("a hold the quota service could not take back at Release is given back later, once, when it is up again")
  func retriedInTheBackground() async throws {
    try await withStore(named: "scheduler_quota_retry", gpus: 2) { store, quota, clock, _ in
      let allocation = try await store.schedule(ScheduleCommand(tenantID: "t1", workloadID: "w", request: exclusive(1, 2)))
      #expect(quota.inUse("t1") == 2)

      quota.setDown(true)
      let released = try await store.release(tenant: "t1", .id(allocation.id))
      #expect(released.state == .released)
      #expect(quota.inUse("t1") == 2, "the quota service was down: the hold stays")
      // The GPUs are free at once all the same.
      #expect(store.capacity(gpuModel: "H100-80GB", selector: [:]).first?.freeGPUs == 2)

      // Too young: the Release that failed might still be giving it back.
      clock.advance(by: 10)
      quota.setDown(false)
      #expect(try await store.releaseDueQuota(olderThan: .seconds(30)) == 0)
      #expect(quota.inUse("t1") == 2)

      // Old enough, but the quota service is down again: kept for the next round.
      clock.advance(by: 30)
      quota.setDown(true)
      #expect(try await store.releaseDueQuota(olderThan: .seconds(30)) == 0)

      quota.setDown(false)
      #expect(try await store.releaseDueQuota(olderThan: .seconds(30)) == 1)
      #expect(quota.inUse("t1") == 0)
      #expect(try await store.releaseDueQuota(olderThan: .seconds(30)) == 0, "given back once")
    }
  }

  @Test("Releases of several tenants at once each record that their hold was given back, so the retry gives none back again")
  func concurrentReleasesAreMarked() async throws {
    try await withStore(named: "scheduler_quota_marks", gpus: 8) { store, quota, clock, _ in
      let tenants = (0..<8).map { "t\($0)" }
      var allocations: [(String, UUID)] = []
      for tenant in tenants {
        let allocation = try await store.schedule(ScheduleCommand(tenantID: tenant, workloadID: "w", request: exclusive(1, 1)))
        allocations.append((tenant, allocation.id))
      }

      try await withThrowingTaskGroup(of: Void.self) { group in
        for (tenant, id) in allocations {
          group.addTask { _ = try await store.release(tenant: tenant, .id(id)) }
        }
        try await group.waitForAll()
      }

      #expect(tenants.allSatisfy { quota.inUse($0) == 0 })
      clock.advance(by: 60)
      #expect(try await store.releaseDueQuota(olderThan: .seconds(30)) == 0, "every Release's mark was written")
    }
  }

  @Test("a Release's mark waits for the next flush, which writes it once; the retry flushes before it looks")
  func marksAreWrittenByTheFlush() async throws {
    try await withStore(named: "scheduler_quota_flush", gpus: 2) { store, quota, clock, _ in
      let first = try await store.schedule(ScheduleCommand(tenantID: "t1", workloadID: "w1", request: exclusive(1, 1)))
      let second = try await store.schedule(ScheduleCommand(tenantID: "t2", workloadID: "w2", request: exclusive(1, 1)))
      _ = try await store.release(tenant: "t1", .id(first.id))
      _ = try await store.release(tenant: "t2", .id(second.id))
      #expect(quota.inUse("t1") == 0 && quota.inUse("t2") == 0)
      #expect(store.pendingQuotaMarkCount == 2)

      #expect(try await store.flushQuotaMarks() == 2, "both tenants' allocations marked in one statement")
      #expect(store.pendingQuotaMarkCount == 0)
      #expect(try await store.flushQuotaMarks() == 0)

      let third = try await store.schedule(ScheduleCommand(tenantID: "t1", workloadID: "w3", request: exclusive(1, 1)))
      _ = try await store.release(tenant: "t1", .id(third.id))
      clock.advance(by: 60)
      #expect(try await store.releaseDueQuota(olderThan: .seconds(30)) == 0, "the pending mark was written first")
      #expect(store.pendingQuotaMarkCount == 0)
    }
  }

  @Test("a Release is two round trips to Postgres (its mark goes with the next flush), and frees exactly what it held")
  func releaseIsTwoRoundTrips() async throws {
    try await withStore(named: "scheduler_release_round_trips", gpus: 2) { store, _, _, _ in
      // Two shared replicas on one GPU beside an exclusive one on the other: what each GPU gives
      // back is the sum of the allocation's claims on it.
      let shared = try await store.schedule(ScheduleCommand(tenantID: "t1", workloadID: "s", request: shared(2, 10 << 30, type: "H100-80GB", policy: .binpack)))
      let whole = try await store.schedule(ScheduleCommand(tenantID: "t1", workloadID: "w", request: exclusive(1, 1)))
      #expect(try await gpuRows(store) == ["a-g0": Held(20 << 30, false), "a-g1": Held(0, true)])
      let before = store.pool.roundTrips
      _ = try await store.release(tenant: "t1", .id(whole.id))
      #expect(store.pool.roundTrips - before == 2, "lock the allocation and its GPUs, then the write with COMMIT")
      #expect(try await gpuRows(store) == ["a-g0": Held(20 << 30, false), "a-g1": Held(0, false)])
      _ = try await store.release(tenant: "t1", .workload("s"))
      #expect(try await gpuRows(store) == ["a-g0": Held(0, false), "a-g1": Held(0, false)])
      // Released already, or another tenant's: nothing written, the counters unchanged.
      let again = try await store.release(tenant: "t1", .id(shared.id))
      #expect(again.state == .released)
      await #expect(throws: SchedulerError.allocationNotFound("with allocation_id \"\(whole.id.uuidString.lowercased())\"")) {
        try await store.release(tenant: "t2", .id(whole.id))
      }
      #expect(try await gpuRows(store) == ["a-g0": Held(0, false), "a-g1": Held(0, false)])

      // MIG instances give back their slices, their positions and memory.
      _ = try await store.registerNode(
        try RegisterNodeCommand.validate(name: "m", labels: [:], gpus: [gpu("m-g0", "A100-80GB", mig: true)]).get())
      let slices = try await store.schedule(ScheduleCommand(tenantID: "t1", workloadID: "m", request: mig(2, "3g.40gb")))
      // Two 3-slice instances: at 4 (positions 4-7) and at 0 (positions 0-3).
      #expect(try await gpuRows(store)["m-g0"] == Held(80 << 30, false, slices: 6, mask: 0xFF))
      let starts = try await store.pool.query("SELECT mig_start FROM scheduler.placements ORDER BY replica", [])
      #expect(try starts.map { try $0.decode(Int32.self, at: 0) } == [4, 0])
      #expect(slices.placements.map(\.migStart) == [4, 0])
      _ = try await store.release(tenant: "t1", .id(slices.id))
      #expect(try await gpuRows(store)["m-g0"] == Held(0, false))
      let left = try await store.pool.query("SELECT count(*)::bigint FROM scheduler.placements", [])[0].decode(Int64.self, at: 0)
      #expect(left == 0)
    }
  }

  /// What a GPU row says is allocated of it.
  private struct Held: Equatable, CustomStringConvertible {
    var memory: Int64
    var exclusive: Bool
    var slices: Int32
    var mask: Int64
    init(_ memory: Int64, _ exclusive: Bool, slices: Int32 = 0, mask: Int64 = 0) {
      (self.memory, self.exclusive, self.slices, self.mask) = (memory, exclusive, slices, mask)
    }
    var description: String { exclusive ? "exclusive" : "\(memory) bytes, \(slices) MIG slices at positions \(String(mask, radix: 2))" }
  }

  /// Each GPU's allocated memory, exclusive flag, MIG slices and positions, as Postgres holds them.
  private func gpuRows(_ store: SchedulerStore) async throws -> [String: Held] {
    var rows: [String: Held] = [:]
    for row in try await store.pool.query("SELECT uuid, allocated_memory_bytes, exclusive, allocated_mig_slices, allocated_mig_mask FROM scheduler.gpus", []) {
      rows[try row.decode(String.self, at: 0)] = Held(
        try row.decode(Int64.self, at: 1), try row.decode(Bool.self, at: 2), slices: try row.decode(Int32.self, at: 3),
        mask: try row.decode(Int64.self, at: 4))
    }
    return rows
  }
}
