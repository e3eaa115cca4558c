import QuotaClient
public import Foundation
import Postgres

/// A commit found that the index was stale: a chosen GPU or node changed underneath.
struct PlacementConflict: Error {}

extension SchedulerStore {
  static let zeroID = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
}

extension SchedulerStore {
  static let allocationColumns =
    "id, tenant_id, workload_id, request, priority, placements, state, quota_reservation_id, create_time, release_time, quota_released"

  // MARK: - Schedule

  /// Places every replica or none, after reserving the tenant's CONCURRENT_GPUS.
  ///
  /// Phases: (1) an ACTIVE allocation of the workload answers at once (the same request) or is
  /// ALREADY_EXISTS; (2) decide on the index, reloading it once before refusing (for
  /// capacity, or a request the fleet it knows cannot hold);
  /// (3) reserve quota; (4) commit (lock, re-check, write, commit the quota hold), on conflict
  /// reload and go back to (2); (5) apply to the index. A failure after (3) releases the hold.
  ///
  /// - Throws: `.invalidRequest`, `.capacityExhausted`, `.workloadTaken`, `.quotaExhausted`,
  ///   `.quotaTenantUnknown`, `.quotaUnavailable`, `.contention`; `PostgresError`.
  public func schedule(_ command: ScheduleCommand) async throws -> Allocation {
    if let existing = try await activeAllocation(tenant: command.tenantID, workload: command.workloadID) {
      guard existing.grants(command) else { throw SchedulerError.workloadTaken(command.workloadID) }
      return existing
    }
    var reservation: String?
    do {
      var reloaded = false
      for attempt in 1...maxAttempts {
        let placements: [ReplicaPlacement]
        let token: Int
        let now = currentTime()
        switch index.assume({ engine.place(command.request, in: $0, at: now) }) {
        case .success(let chosen):
          (token, placements) = chosen
        case .failure(.capacityExhausted) where !reloaded, .failure(.invalidRequest) where !reloaded:
          // Another replica may have freed what this index still counts as taken, or registered
          // the nodes that make the request possible (a GPU type this index has not seen yet).
          try await refreshIndex()
          reloaded = true
          continue
        case .failure(let error):
          throw error
        }
        do {
          if reservation == nil {
            let gpus = Int64(command.request.replicas * command.request.gpu.concurrentGPUsPerReplica)
            reservation = try await reserveQuota(command, gpus: gpus)
          }
          let allocation = try await commit(command, placements, reservation: reservation!)
          index.settle(token, committed: true)
          return allocation
        } catch is PlacementConflict {
          index.settle(token, committed: false)
          logger.debug("placement conflict; reloading the index", metadata: ["attempt": "\(attempt)"])
          try await refreshIndex()
          reloaded = true
        } catch {
          index.settle(token, committed: false)
          throw error
        }
      }
      throw SchedulerError.contention(attempts: maxAttempts)
    } catch {
      if let reservation { await releaseQuietly(tenant: command.tenantID, reservation) }
      if let failure = error as? PostgresError, failure.sqlState == "23505",
        let existing = try await activeAllocation(tenant: command.tenantID, workload: command.workloadID)
      {
        // The same workload raced on another call or replica, and won.
        guard existing.grants(command) else { throw SchedulerError.workloadTaken(command.workloadID) }
        return existing
      }
      throw error
    }
  }

  func reserveQuota(_ command: ScheduleCommand, gpus: Int64) async throws -> String {
    let key = "scheduler:schedule:\(UUID().uuidString.lowercased())"
    do {
      return try await quota.reserve(tenant: command.tenantID, stock: .concurrentGPUs, amount: gpus, ttl: holdTTL, idempotencyKey: key)
    } catch QuotaGateError.exhausted(let message) {
      throw SchedulerError.quotaExhausted(message)
    } catch QuotaGateError.tenantUnknown(let message) {
      throw SchedulerError.quotaTenantUnknown(message)
    } catch QuotaGateError.unavailable(let message) {
      throw SchedulerError.quotaUnavailable(message)
    }
  }

  func releaseQuietly(tenant: String, _ reservation: String) async {
    do {
      try await quota.release(tenant: tenant, reservationID: reservation, idempotencyKey: "scheduler:release:\(reservation)")
    } catch {
      // The hold lapses on its own after holdTTL if it was never committed.
      logger.warning("could not release a quota hold", metadata: ["reservation": "\(reservation)", "error": "\(error)"])
    }
  }

  /// One transaction: lock the chosen GPU rows in uuid order, re-check every claim against them
  /// (and the nodes' state), write the counters, the placements and the allocation, commit the
  /// quota hold, COMMIT.
  func commit(_ command: ScheduleCommand, _ placements: [ReplicaPlacement], reservation: String) async throws -> Allocation {
    let now = currentTime()
    let id = UUID()
    let grace = heartbeatGrace
    let claims = placements.flatMap { placement in placement.claims.map { (placement.node, $0) } }
    let uuids = Array(Set(claims.map(\.1.gpuUUID))).sorted()
    try await pool.transaction(tenant: command.tenantID) { tx in
      let rows = try await tx.query(
        """
        SELECT g.uuid, g.node_name, g.model, g.memory_bytes, g.mig_slices, g.allocated_memory_bytes, g.allocated_mig_slices,
               g.exclusive, n.cordoned, n.last_heartbeat_time
          FROM scheduler.gpus g JOIN scheduler.nodes n ON n.name = g.node_name
         WHERE g.uuid = ANY($1::text[]) ORDER BY g.uuid FOR UPDATE OF g
        """, [uuids])
      var gpus: [String: (node: String, gpu: GPU)] = [:]
      for row in rows {
        let node = try row.decode(String.self, at: 1)
        let heartbeat = try row.decode(Date.self, at: 9)
        guard try !row.decode(Bool.self, at: 8), now.timeIntervalSince(heartbeat) <= grace.seconds else { throw PlacementConflict() }
        let gpu = GPU(
          uuid: try row.decode(String.self, at: 0), model: try row.decode(String.self, at: 2),
          memoryBytes: try row.decode(Int64.self, at: 3), migSlices: Int(try row.decode(Int32.self, at: 4)),
          allocatedMemoryBytes: try row.decode(Int64.self, at: 5), allocatedMIGSlices: Int(try row.decode(Int32.self, at: 6)),
          exclusive: try row.decode(Bool.self, at: 7))
        gpus[gpu.uuid] = (node, gpu)
      }
      for (node, claim) in claims {
        guard var entry = gpus[claim.gpuUUID], entry.node == node, entry.gpu.admits(claim) else { throw PlacementConflict() }
        entry.gpu.apply(claim)
        gpus[claim.gpuUUID] = entry
      }
      let touched = uuids.map { gpus[$0]!.gpu }
      _ = try await tx.execute(
        """
        UPDATE scheduler.gpus g SET allocated_memory_bytes = u.memory, allocated_mig_slices = u.slices, exclusive = u.exclusive <> 0
          FROM unnest($1::text[], $2::bigint[], $3::integer[], $4::integer[]) AS u(uuid, memory, slices, exclusive)
         WHERE g.uuid = u.uuid
        """,
        [touched.map(\.uuid), touched.map(\.allocatedMemoryBytes), touched.map { Int32($0.allocatedMIGSlices) },
         touched.map { Int32($0.exclusive ? 1 : 0) }])
      _ = try await tx.execute(
        """
        INSERT INTO scheduler.allocations (id, tenant_id, workload_id, request, priority, placements, state, quota_reservation_id, create_time)
        VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8)
        """,
        [id, command.tenantID, command.workloadID, try PostgresJSON(encoding: command.request), Int32(command.priority),
         try PostgresJSON(encoding: placements), reservation, now])
      _ = try await tx.execute(
        """
        INSERT INTO scheduler.placements (allocation_id, replica, gpu_uuid, node_name, memory_bytes, mig_slices, exclusive)
        SELECT $1, u.replica, u.gpu, u.node, u.memory, u.slices, u.exclusive <> 0
          FROM unnest($2::integer[], $3::text[], $4::text[], $5::bigint[], $6::integer[], $7::integer[])
            AS u(replica, gpu, node, memory, slices, exclusive)
        """,
        [id, claims.indices.map { Int32(Self.replica(of: $0, in: placements)) }, claims.map(\.1.gpuUUID), claims.map(\.0),
         claims.map(\.1.memoryBytes), claims.map { Int32($0.1.migSlices) }, claims.map { Int32($0.1.exclusive ? 1 : 0) }])
      // The last step before COMMIT: if the quota service refuses now, nothing is written.
      do {
        try await quota.commit(tenant: command.tenantID, reservationID: reservation, idempotencyKey: "scheduler:commit:\(reservation)")
      } catch QuotaGateError.unavailable(let message) {
        throw SchedulerError.quotaUnavailable(message)
      } catch QuotaGateError.reservationGone(let message) {
        throw SchedulerError.quotaUnavailable("the quota hold lapsed before it was committed: \(message)")
      }
    }
    return Allocation(
      id: id, tenantID: command.tenantID, workloadID: command.workloadID, request: command.request, priority: command.priority,
      placements: placements, state: .active, createTime: now, releaseTime: nil, quotaReservationID: reservation)
  }

  /// The replica of the `index`th claim when placements' claims are laid end to end.
  static func replica(of index: Int, in placements: [ReplicaPlacement]) -> Int {
    var remaining = index
    for placement in placements {
      if remaining < placement.claims.count { return placement.replica }
      remaining -= placement.claims.count
    }
    return placements.last?.replica ?? 0
  }

  // MARK: - Release

  /// Frees everything the allocation holds, then releases its quota reservation. Releasing a
  /// released allocation returns it unchanged (and retries a quota release that failed before).
  /// - Throws: `.allocationNotFound`; `PostgresError`.
  public func release(tenant: String, _ ref: AllocationRef) async throws -> Allocation {
    let now = currentTime()
    let generation = index.generation
    let (allocation, freed) = try await pool.transaction(tenant: tenant) { tx -> (Allocation, Bool) in
      guard let found = try await Self.allocation(tx, tenant: tenant, ref, lock: true) else {
        throw SchedulerError.allocationNotFound(Self.describe(ref))
      }
      var allocation = found.allocation
      guard allocation.state == .active else { return (allocation, false) }
      let uuids = Array(Set(allocation.placements.flatMap { $0.claims.map(\.gpuUUID) })).sorted()
      let rows = try await tx.query(
        """
        SELECT uuid, memory_bytes, mig_slices, allocated_memory_bytes, allocated_mig_slices, exclusive
          FROM scheduler.gpus WHERE uuid = ANY($1::text[]) ORDER BY uuid FOR UPDATE
        """, [uuids])
      var gpus: [String: GPU] = [:]
      for row in rows {
        let gpu = GPU(
          uuid: try row.decode(String.self, at: 0), model: "", memoryBytes: try row.decode(Int64.self, at: 1),
          migSlices: Int(try row.decode(Int32.self, at: 2)), allocatedMemoryBytes: try row.decode(Int64.self, at: 3),
          allocatedMIGSlices: Int(try row.decode(Int32.self, at: 4)), exclusive: try row.decode(Bool.self, at: 5))
        gpus[gpu.uuid] = gpu
      }
      for claim in allocation.placements.flatMap(\.claims) { gpus[claim.gpuUUID]?.apply(claim, sign: -1) }
      let touched = Array(gpus.values)
      _ = try await tx.execute(
        """
        UPDATE scheduler.gpus g SET allocated_memory_bytes = u.memory, allocated_mig_slices = u.slices, exclusive = u.exclusive <> 0
          FROM unnest($1::text[], $2::bigint[], $3::integer[], $4::integer[]) AS u(uuid, memory, slices, exclusive)
         WHERE g.uuid = u.uuid
        """,
        [touched.map(\.uuid), touched.map(\.allocatedMemoryBytes), touched.map { Int32($0.allocatedMIGSlices) },
         touched.map { Int32($0.exclusive ? 1 : 0) }])
      _ = try await tx.execute("DELETE FROM scheduler.placements WHERE allocation_id = $1", [allocation.id])
      _ = try await tx.execute(
        "UPDATE scheduler.allocations SET state = 2, release_time = $2 WHERE id = $1", [allocation.id, now])
      allocation.state = .released
      allocation.releaseTime = now
      return (allocation, !found.quotaReleased)
    }
    if freed { index.released(allocation.placements, since: generation) }
    try await releaseQuota(allocation)
    return allocation
  }

  /// Releases the allocation's quota reservation unless that was done; remembers success.
  /// - Returns: whether this call gave the hold back.
  @discardableResult
  func releaseQuota(_ allocation: Allocation) async throws -> Bool {
    let pending = try await pool.transaction(tenant: allocation.tenantID) { tx in
      try await tx.query(
        "SELECT NOT quota_released FROM scheduler.allocations WHERE tenant_id = $1 AND id = $2 AND state = 2",
        [allocation.tenantID, allocation.id]
      ).first?.decode(Bool.self, at: 0) ?? false
    }
    guard pending else { return false }
    do {
      try await quota.release(
        tenant: allocation.tenantID, reservationID: allocation.quotaReservationID,
        idempotencyKey: "scheduler:release:\(allocation.quotaReservationID)")
    } catch QuotaGateError.reservationGone {
      // Already gone: nothing left to give back.
    } catch {
      // The GPUs are free; the quota stays held until the maintenance loop (or a repeated
      // Release) gives it back.
      logger.warning(
        "quota release failed; retried in the background",
        metadata: ["allocation": "\(allocation.id)", "error": "\(error)"])
      return false
    }
    _ = try await pool.transaction(tenant: allocation.tenantID) { tx in
      _ = try await tx.execute(
        "UPDATE scheduler.allocations SET quota_released = true WHERE tenant_id = $1 AND id = $2",
        [allocation.tenantID, allocation.id])
    }
    return true
  }

  // MARK: - Reads

  /// - Throws: `.allocationNotFound`.
  public func allocation(tenant: String, _ ref: AllocationRef) async throws -> Allocation {
    try await pool.transaction(tenant: tenant, readOnly: true) { tx in
      guard let found = try await Self.allocation(tx, tenant: tenant, ref, lock: false) else {
        throw SchedulerError.allocationNotFound(Self.describe(ref))
      }
      return found.allocation
    }
  }

  func activeAllocation(tenant: String, workload: String) async throws -> Allocation? {
    try await pool.transaction(tenant: tenant, readOnly: true) { tx in
      try await Self.allocation(tx, tenant: tenant, .workload(workload), lock: false)?.allocation
    }
  }

  /// A tenant's allocations in (create_time, id) order after `after`.
  public func listAllocations(
    tenant: String, node: String, state: AllocationState, after: (Date, UUID)?, limit: Int
  ) async throws -> [Allocation] {
    if tenant.isEmpty { return try await fleetAllocations(node: node, state: state, after: after, limit: limit) }
    return try await pool.transaction(tenant: tenant, readOnly: true) { tx in
      try await tx.query(
        """
        SELECT \(Self.allocationColumns) FROM scheduler.allocations a
         WHERE tenant_id = $1 AND state = $2 AND (a.create_time, a.id) > ($3, $4)
           AND ($5 = '' OR a.placements @> jsonb_build_array(jsonb_build_object('node', $5::text)))
         ORDER BY create_time, id LIMIT $6
        """,
        [tenant, state.rawValue, after?.0 ?? Date(timeIntervalSince1970: 0), after?.1 ?? SchedulerStore.zeroID, node,
         Int64(limit)]
      ).map { try Self.decodeAllocation($0).allocation }
    }
  }

  /// Every tenant's allocations: the operator's view, through the schema's SECURITY DEFINER function.
  func fleetAllocations(node: String, state: AllocationState, after: (Date, UUID)?, limit: Int) async throws -> [Allocation] {
    try await pool.query(
      "SELECT \(Self.allocationColumns) FROM scheduler.fleet_allocations($1, $2, $3, $4, $5)",
      [node, state.rawValue, after?.0 ?? Date(timeIntervalSince1970: 0), after?.1 ?? SchedulerStore.zeroID, Int32(limit)]
    ).map { try Self.decodeAllocation($0).allocation }
  }

  static func allocation(_ tx: PostgresTransaction, tenant: String, _ ref: AllocationRef, lock: Bool) async throws
    -> (allocation: Allocation, quotaReleased: Bool)?
  {
    let suffix = lock ? " FOR UPDATE" : ""
    let rows: PostgresRows
    switch ref {
    case .id(let id):
      rows = try await tx.query(
        "SELECT \(allocationColumns) FROM scheduler.allocations WHERE tenant_id = $1 AND id = $2\(suffix)", [tenant, id])
    case .workload(let workload):
      rows = try await tx.query(
        "SELECT \(allocationColumns) FROM scheduler.allocations WHERE tenant_id = $1 AND workload_id = $2 AND state = 1\(suffix)",
        [tenant, workload])
    }
    return try rows.first.map(decodeAllocation)
  }

  static func decodeAllocation(_ row: PostgresRow) throws -> (allocation: Allocation, quotaReleased: Bool) {
    let allocation = Allocation(
      id: try row.decode(UUID.self, at: 0), tenantID: try row.decode(String.self, at: 1),
      workloadID: try row.decode(String.self, at: 2), request: try row.decode(PostgresJSON.self, at: 3).decode(PlacementRequest.self),
      priority: Int(try row.decode(Int32.self, at: 4)),
      placements: try row.decode(PostgresJSON.self, at: 5).decode([ReplicaPlacement].self),
      state: AllocationState(rawValue: try row.decode(Int32.self, at: 6)) ?? .active,
      createTime: try row.decode(Date.self, at: 8), releaseTime: try row.decode(Date?.self, at: 9),
      quotaReservationID: try row.decode(String.self, at: 7))
    return (allocation, try row.decode(Bool.self, at: 10))
  }

  static func describe(_ ref: AllocationRef) -> String {
    switch ref {
    case .id(let id): "with allocation_id \"\(id.uuidString.lowercased())\""
    case .workload(let workload): "ACTIVE for workload_id \"\(workload)\""
    }
  }
}
