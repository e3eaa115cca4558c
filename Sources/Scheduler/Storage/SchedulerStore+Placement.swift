import QuotaClient
public import Foundation
import Postgres
import Synchronization

/// A commit found that the index was stale: a chosen GPU or node changed underneath.
struct PlacementConflict: Error {}

/// The quota a Schedule took, kept across its attempts (and a transaction body run again after a
/// serialization failure), so that it is taken once and given back once; and where its quota
/// intent stands.
final class TakenQuota: Sendable {
  private struct State {
    var reservation: String?
    var intentSent = false
    var intentWritten = false
  }

  private let state = Mutex(State())

  var reservation: String? { state.withLock { $0.reservation } }

  func record(_ reservation: String) { state.withLock { $0.reservation = reservation } }

  /// The intent may be written: it was sent (a Schedule that ends without its allocation deletes it).
  var intentSent: Bool { state.withLock { $0.intentSent } }
  /// The intent is known to be written (later attempts do not send it again).
  var intentWritten: Bool { state.withLock { $0.intentWritten } }

  func recordIntentSent() { state.withLock { $0.intentSent = true } }

  func recordIntent() {
    state.withLock {
      $0.intentSent = true
      $0.intentWritten = true
    }
  }
}

extension SchedulerStore {
  static let zeroID = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
}

extension SchedulerStore {
  static let allocationColumns =
    "id, tenant_id, workload_id, request, priority, placements, state, quota_reservation_id, create_time, release_time, quota_released"

  // MARK: - Schedule

  /// Places every replica or none, after reserving the tenant's CONCURRENT_GPUS.
  ///
  /// Phases: (1) decide on the index (the claims stay pending there), reloading it once before
  /// refusing (for capacity, or a request the fleet it knows cannot hold); (2) commit: lock the
  /// chosen GPUs and read whether the workload is already placed, re-check, take the quota
  /// (Reserve with commit, once per Schedule), write and COMMIT; on conflict give the claims back,
  /// reload and go back to (1); (3) record the commit in the index. A workload already placed
  /// answers its allocation (the same request) or ALREADY_EXISTS, also when (1) refuses. A
  /// failure after the quota was taken gives it back (see `settleLostCommit` for a lost
  /// connection).
  ///
  /// Before its first commit, the Schedule's quota intent is written (see
  /// SchedulerStore+QuotaIntents.swift): what repairs the quota if this replica dies inside it.
  ///
  /// Round trips: two to Postgres (the intent goes with the first), one to the quota service.
  ///
  /// - Throws: `.invalidRequest`, `.capacityExhausted`, `.workloadTaken`, `.quotaExhausted`,
  ///   `.quotaTenantUnknown`, `.quotaUnavailable`, `.contention`, `.intentSettled`; `PostgresError`.
  public func schedule(_ command: ScheduleCommand) async throws -> Allocation {
    // The id of the allocation this call writes, if it writes one; its quota intent and quota key
    // are named after it.
    let id = UUID()
    let taken = TakenQuota()
    do {
      let allocation = try await placeOrFind(command, id: id, quotaTaken: taken)
      // An allocation found rather than written holds quota of its own: what this call took is
      // not used.
      if let reservation = taken.reservation, reservation != allocation.quotaReservationID {
        if await giveBack(reservation, of: command) { await dropQuotaIntent(id, of: command, taken) }
      } else if allocation.id != id {
        await dropQuotaIntent(id, of: command, taken)
      }
      return allocation
    } catch {
      // The one place a failed Schedule gives its quota back.
      if let reservation = taken.reservation {
        if let failure = error as? PostgresError, failure.kind == .connection {
          // The connection went down: if that was during COMMIT, the allocation may be written,
          // with its quota. Giving the quota back then would let the tenant run GPUs its quota
          // no longer counts, so look first.
          if let landed = await settleLostCommit(command, reservation: reservation) { return landed }
        } else if await giveBack(reservation, of: command) {
          await dropQuotaIntent(id, of: command, taken)
        }
      } else if !Self.quotaOutcomeUnknown(after: error) {
        // Nothing was taken, or the quota service refused: nothing is held under the key.
        await dropQuotaIntent(id, of: command, taken)
      }
      if let failure = error as? PostgresError, failure.sqlState == "23505",
        let existing = try await activeAllocation(tenant: command.tenantID, workload: command.workloadID)
      {
        // The same workload raced on another call or replica, and won.
        return try Self.answer(existing, to: command)
      }
      throw error
    }
  }

  /// Phases (1) to (3) of `schedule`: the allocation written, or the workload's own when it is
  /// already placed. Quota taken is recorded in `quotaTaken`; giving it back is the caller's.
  private func placeOrFind(_ command: ScheduleCommand, id: UUID, quotaTaken taken: TakenQuota) async throws -> Allocation {
    var reloaded = false
    for attempt in 1...maxAttempts {
      let placements: [ReplicaPlacement]
      let now = currentTime()
      switch index.assume({ engine.place(command.request, in: $0, at: now) }) {
      case .success(let chosen):
        placements = chosen
      case .failure(.capacityExhausted) where !reloaded, .failure(.invalidRequest) where !reloaded:
        // Another replica may have freed what this index still counts as taken, or registered
        // the nodes that make the request possible (a GPU type this index has not seen yet).
        try await refreshIndex()
        reloaded = true
        continue
      case .failure(let error):
        // A repeated Schedule of a placed workload answers its allocation even when the fleet
        // could not place it again now.
        if let existing = try await activeAllocation(tenant: command.tenantID, workload: command.workloadID) {
          return try Self.answer(existing, to: command)
        }
        throw error
      }
      do {
        switch try await commit(command, placements, id: id, quotaTaken: taken) {
        case .written(let allocation):
          return allocation
        case .alreadyPlaced:
          index.giveBack(placements)
          if let existing = try await activeAllocation(tenant: command.tenantID, workload: command.workloadID) {
            return try Self.answer(existing, to: command)
          }
        // Released since: place it afresh.
        }
      } catch is PlacementConflict {
        index.giveBack(placements)
        placementConflicts.add(1, ordering: .relaxed)
        logger.debug("placement conflict; reloading the index", metadata: ["attempt": "\(attempt)"])
        // The chosen nodes whole first (one may have been deleted or registered again by
        // another replica, which a load of changed rows alone would not say), then the rest.
        try await reloadNodes(Array(Set(placements.map(\.node))))
        try await refreshIndex()
        reloaded = true
      } catch {
        index.giveBack(placements)
        throw error
      }
    }
    throw SchedulerError.contention(attempts: maxAttempts)
  }

  /// Whether a Schedule that failed with `error` before recording a reservation may still hold
  /// one: its quota call did not answer (the service may have taken it), or its connection went
  /// down. Its intent then stays for the maintenance loop, which asks the quota service.
  static func quotaOutcomeUnknown(after error: any Error) -> Bool {
    if case SchedulerError.quotaUnavailable = error { return true }
    return (error as? PostgresError)?.kind == .connection
  }

  /// The answer to a Schedule whose workload is already placed: its allocation when it was made
  /// for the same request, else ALREADY_EXISTS.
  private static func answer(_ existing: Allocation, to command: ScheduleCommand) throws -> Allocation {
    guard existing.grants(command) else { throw SchedulerError.workloadTaken(command.workloadID) }
    return existing
  }

  /// Takes the quota of the Schedule writing allocation `id`: Reserve with commit (the caller
  /// holds the GPUs' locks and writes the allocation next).
  func acquireQuota(_ command: ScheduleCommand, for id: UUID) async throws -> String {
    do {
      return try await quota.acquire(
        tenant: command.tenantID, stock: .concurrentGPUs, amount: command.quotaAmount, idempotencyKey: Self.quotaKey(for: id))
    } catch QuotaGateError.exhausted(let message) {
      throw SchedulerError.quotaExhausted(message)
    } catch QuotaGateError.tenantUnknown(let message) {
      throw SchedulerError.quotaTenantUnknown(message)
    } catch QuotaGateError.unavailable(let message) {
      throw SchedulerError.quotaUnavailable(message)
    }
  }

  /// After a Schedule's transaction failed with its connection (so it may or may not have
  /// committed): the allocation, when the write landed (its quota hold stays committed), or nil
  /// when it did not (the hold is given back). When the database cannot be asked either, the hold
  /// is kept: holding quota for GPUs nobody got is the side that can be repaired; running GPUs no
  /// quota counts is not. The Schedule's quota intent, committed before its quota was taken and
  /// left in place here, repairs it (`reconcileQuotaIntents`, once the intent is older than the
  /// grace): it keeps the hold if the allocation was written and gives it back if not.
  func settleLostCommit(_ command: ScheduleCommand, reservation: String) async -> Allocation? {
    do {
      if let landed = try await self.allocation(holding: reservation, tenant: command.tenantID, workload: command.workloadID) {
        logger.notice(
          "a Schedule's COMMIT outcome was lost with its connection; it had committed",
          metadata: ["reservation": "\(reservation)", "allocation": "\(landed.id)"])
        // The index gave its claims back when the transaction failed; it counts them again from
        // the rows (a failed reload is left to the periodic one).
        try? await refreshIndex()
        return landed
      }
      await giveBack(reservation, of: command)
    } catch {
      logger.error(
        "a Schedule's COMMIT outcome was lost and cannot be looked up; its quota hold is kept, and its quota intent settles it",
        metadata: ["reservation": "\(reservation)", "error": "\(error)"])
    }
    return nil
  }

  /// The workload's active allocation when it holds `reservation`. A released one is not
  /// returned: its Release gave the hold back, under the same idempotency key as a settle would.
  func allocation(holding reservation: String, tenant: String, workload: String) async throws -> Allocation? {
    try await activeAllocation(tenant: tenant, workload: workload).flatMap { $0.quotaReservationID == reservation ? $0 : nil }
  }

  /// Gives back quota a Schedule took and did not use. When the quota service cannot be reached,
  /// the caller leaves the Schedule's quota intent in place, and `reconcileQuotaIntents` gives the
  /// hold back later (the quota was taken committed, so nothing else would).
  /// - Returns: whether it was given back now.
  @discardableResult
  func giveBack(_ reservation: String, of command: ScheduleCommand) async -> Bool {
    do {
      try await quota.release(
        tenant: command.tenantID, reservationID: reservation, idempotencyKey: "scheduler:release:\(reservation)")
      return true
    } catch {
      logger.warning(
        "could not give a Schedule's quota back; its quota intent gives it back later",
        metadata: ["reservation": "\(reservation)", "error": "\(error)"])
      return false
    }
  }

  /// What `commit` did.
  enum CommitOutcome {
    case written(Allocation)
    /// The workload has an ACTIVE allocation: nothing was written (and no quota taken).
    case alreadyPlaced
  }

  /// One transaction, two round trips: (1) with BEGIN, lock the chosen GPU rows in uuid order
  /// and read them with their nodes, and whether the workload is already placed; re-check every
  /// claim against them (and the nodes' state); take the quota (Reserve with commit) unless an
  /// earlier attempt of this Schedule took it (if the quota service refuses, nothing is written);
  /// (2) write the counters, the allocation and its placements in one statement, with COMMIT.
  /// Then records the commit (the GPUs as written, and the transaction) in the index.
  ///
  /// - Parameter quotaTaken: the reservation this Schedule holds, set when this call takes it.
  func commit(
    _ command: ScheduleCommand, _ placements: [ReplicaPlacement], id: UUID, quotaTaken: TakenQuota
  ) async throws -> CommitOutcome {
    // The quota intent goes (until it is known written) as a transaction of its own ahead of the
    // first round trip below: committed before the quota call, for no round trip of its own. A
    // repeated one does nothing, so an attempt that does not know whether it was written sends it again.
    let intent = quotaTaken.intentWritten ? nil : quotaIntent(id, for: command)
    if intent != nil { quotaTaken.recordIntentSent() }
    let now = currentTime()
    let (lockClass, lockKey) = Self.intentLock(for: id)
    let grace = heartbeatGrace
    let claims = placements.flatMap { placement in placement.claims.map { (placement.node, $0) } }
    let uuids = Array(Set(claims.map(\.1.gpuUUID))).sorted()
    let written: (rows: [FleetIndex.GPUState], xid: UInt64?, reservation: String)? = try await commits.run {
      try await pool.transaction(tenant: command.tenantID) { tx -> (rows: [FleetIndex.GPUState], xid: UInt64?, reservation: String)? in
        // The workload's ACTIVE allocation, read in the same round trip (an uncorrelated subquery,
        // run once). One committed after this snapshot still cannot be doubled: the unique index
        // on ACTIVE workloads refuses the write (23505, answered below in `schedule`).
        // The node's fields come from per-row subqueries, not a join: the pool plans once, and a
        // generic plan cannot know the array holds a few uuids; as a join it hashed a scan of every
        // node (chosen at 1,000 nodes), where a subquery is always a key lookup.
        // First the intent's advisory lock (held to the end of the transaction: the maintenance
        // loop leaves the intent alone meanwhile), then, in a statement whose snapshot follows it,
        // whether the intent is still there: the loop settles only intents far older than any
        // live Schedule, so a missing one means this Schedule took too long to trust its quota.
        let statements = [
          PostgresStatement("SELECT pg_advisory_xact_lock($1, $2)", [lockClass, lockKey]),
          PostgresStatement(
            """
            SELECT g.uuid, g.node_name, g.model, g.memory_bytes, g.mig_slices,
                   (SELECT n.cordoned FROM scheduler.nodes n WHERE n.name = g.node_name),
                   (SELECT n.last_heartbeat_time FROM scheduler.nodes n WHERE n.name = g.node_name),
                   EXISTS (SELECT 1 FROM scheduler.allocations a WHERE a.tenant_id = $2 AND a.workload_id = $3 AND a.state = 1) AS placed,
                   EXISTS (SELECT 1 FROM scheduler.quota_intents i WHERE i.tenant_id = $2 AND i.allocation_id = $4) AS intent,
                   \(GPUUsage.columns)
              FROM scheduler.gpus g
             WHERE g.uuid = ANY($1::text[]) ORDER BY g.uuid FOR UPDATE
            """, [uuids, command.tenantID, command.workloadID, id]),
        ]
        let batch: [PostgresRows]
        if let intent {
          batch = try await tx.queryBatch(statements, committedFirst: intent)
          quotaTaken.recordIntent()
        } else {
          batch = try await tx.queryBatch(statements)
        }
        let rows = batch[1]
        if try rows.first?.decode(Bool.self, at: 7) == true { return nil }
        if let first = rows.first, try !first.decode(Bool.self, at: 8) { throw SchedulerError.intentSettled }
        var gpus: [String: (node: String, gpu: GPU)] = [:]
        for row in rows {
          let node = try row.decode(String.self, at: 1)
          let heartbeat = try row.decode(Date.self, at: 6)
          guard try !row.decode(Bool.self, at: 5), now.timeIntervalSince(heartbeat) <= grace.seconds else { throw PlacementConflict() }
          var gpu = GPU(
            uuid: try row.decode(String.self, at: 0), model: try row.decode(String.self, at: 2),
            memoryBytes: try row.decode(Int64.self, at: 3), migSlices: Int(try row.decode(Int32.self, at: 4)))
          gpu.usage = try GPUUsage(row, from: 9)
          gpus[gpu.uuid] = (node, gpu)
        }
        for (node, claim) in claims {
          guard var entry = gpus[claim.gpuUUID], entry.node == node, entry.gpu.admits(claim) else { throw PlacementConflict() }
          entry.gpu.apply(claim)
          gpus[claim.gpuUUID] = entry
        }
        // The last step before writing: if the quota service refuses now, nothing is written. A
        // write that fails after it (the workload raced) gives the quota back (in `schedule`).
        let reservation: String
        if let held = quotaTaken.reservation {
          reservation = held
        } else {
          reservation = try await acquireQuota(command, for: id)
          quotaTaken.record(reservation)
        }
        let touched = uuids.map { gpus[$0]!.gpu }
        let usage = touched.map(\.usage).parameterArrays
        let written = try await tx.queryAndCommit(
          """
          WITH g AS (
            UPDATE scheduler.gpus g SET allocated_memory_bytes = u.memory, allocated_mig_slices = u.slices,
                   allocated_mig_mask = u.mask, exclusive = u.exclusive <> 0
              FROM unnest($1::text[], $2::bigint[], $3::integer[], $4::integer[], $19::bigint[]) AS u(uuid, memory, slices, exclusive, mask)
             WHERE g.uuid = u.uuid
            RETURNING g.node_name, g.uuid, \(GPUUsage.columns)
          ), a AS (
            INSERT INTO scheduler.allocations (id, tenant_id, workload_id, request, priority, placements, state, quota_reservation_id, create_time)
            VALUES ($5, $6, $7, $8, $9, $10, 1, $11, $12)
          ), p AS (
            INSERT INTO scheduler.placements (allocation_id, replica, gpu_uuid, node_name, memory_bytes, mig_slices, exclusive, mig_start)
            SELECT $5, u.replica, u.gpu, u.node, u.memory, u.slices, u.exclusive <> 0, u.start
              FROM unnest($13::integer[], $14::text[], $15::text[], $16::bigint[], $17::integer[], $18::integer[], $20::integer[])
                AS u(replica, gpu, node, memory, slices, exclusive, start)
          )
          SELECT g.*, pg_current_xact_id()::text FROM g
          """,
          [touched.map(\.uuid), usage.memory, usage.slices, usage.exclusive,
           id, command.tenantID, command.workloadID, try PostgresJSON(encoding: command.request), Int32(command.priority),
           try PostgresJSON(encoding: placements), reservation, now,
           claims.indices.map { Int32(Self.replica(of: $0, in: placements)) }, claims.map(\.1.gpuUUID), claims.map(\.0),
           claims.map(\.1.memoryBytes), claims.map { Int32($0.1.migSlices) }, claims.map { Int32($0.1.exclusive ? 1 : 0) },
           usage.mask, claims.map { Int32($0.1.migStart) }])
        let (states, xid) = try Self.gpuStates(written)
        return (states, xid, reservation)
      }
    }
    guard let written else { return .alreadyPlaced }
    // Every chosen GPU was locked and written, so every row came back, and the xid with it.
    index.committed(placements, rows: written.rows, xid: written.xid ?? 0)
    return .written(
      Allocation(
        id: id, tenantID: command.tenantID, workloadID: command.workloadID, request: command.request,
        priority: command.priority, placements: placements, state: .active, createTime: now, releaseTime: nil,
        quotaReservationID: written.reservation))
  }


  /// Rows of (node_name, uuid, the usage columns, xid) as the index takes them, and the
  /// transaction's xid.
  static func gpuStates(_ rows: PostgresRows) throws -> ([FleetIndex.GPUState], UInt64?) {
    var xid: UInt64?
    let states = try rows.map { row in
      xid = UInt64(try row.decode(String.self, at: 6))
      return FleetIndex.GPUState(
        node: try row.decode(String.self, at: 0), uuid: try row.decode(String.self, at: 1), usage: try GPUUsage(row, from: 2))
    }
    return (states, xid)
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
  ///
  /// One transaction, two round trips: (1) with BEGIN, lock the allocation and then its GPU rows
  /// in uuid order (the order Schedule locks in); (2) subtract exactly its claims from the
  /// counters, delete its placements and mark it RELEASED, in one statement with COMMIT. Then the
  /// quota release, recorded later with others (`flushQuotaMarks`).
  /// - Throws: `.allocationNotFound`; `PostgresError`.
  public func release(tenant: String, _ ref: AllocationRef) async throws -> Allocation {
    let now = currentTime()
    let filter: String
    let key: any PostgresEncodable
    switch ref {
    case .id(let id): (filter, key) = ("id = $2", id)
    case .workload(let workload): (filter, key) = ("workload_id = $2 AND state = 1", workload)
    }
    let (allocation, quotaReleased, rows, xid) = try await pool.transaction(tenant: tenant) {
      tx -> (Allocation, Bool, [FleetIndex.GPUState], UInt64?) in
      let found = try await tx.query(
        """
        WITH a AS (
          SELECT \(Self.allocationColumns) FROM scheduler.allocations WHERE tenant_id = $1 AND \(filter) FOR UPDATE
        ), locked AS (
          -- `=` on the one allocation, not IN: planned once, IN was a semi-join that walked
          -- every placement (chosen while the table was small).
          SELECT g.uuid FROM scheduler.gpus g
           WHERE g.uuid IN (SELECT p.gpu_uuid FROM scheduler.placements p WHERE p.allocation_id = (SELECT id FROM a WHERE state = 1))
           ORDER BY g.uuid FOR UPDATE
        )
        SELECT a.*, (SELECT count(*) FROM locked) FROM a
        """, [tenant, key])
      guard let row = found.first else { throw SchedulerError.allocationNotFound(Self.describe(ref)) }
      var (allocation, quotaReleased) = try Self.decodeAllocation(row)
      guard allocation.state == .active else { return (allocation, quotaReleased, [], nil) }
      // What the allocation holds of each GPU, as the domain counts it; subtracted under the locks.
      var held: [String: GPUUsage] = [:]
      for claim in allocation.placements.flatMap(\.claims) { held[claim.gpuUUID, default: .none].apply(claim) }
      let uuids = held.keys.sorted()
      let usage = uuids.map { held[$0]! }.parameterArrays
      let written = try await tx.queryAndCommit(
        """
        WITH g AS (
          UPDATE scheduler.gpus g SET allocated_memory_bytes = g.allocated_memory_bytes - u.memory,
                 allocated_mig_slices = g.allocated_mig_slices - u.slices, allocated_mig_mask = g.allocated_mig_mask & ~u.mask,
                 exclusive = g.exclusive AND u.exclusive = 0
            FROM unnest($2::text[], $3::bigint[], $4::integer[], $5::integer[], $7::bigint[]) AS u(uuid, memory, slices, exclusive, mask)
           WHERE g.uuid = u.uuid
          RETURNING g.node_name, g.uuid, \(GPUUsage.columns)
        ), p AS (
          DELETE FROM scheduler.placements WHERE allocation_id = $1
        ), a AS (
          UPDATE scheduler.allocations SET state = 2, release_time = $6 WHERE id = $1
        )
        SELECT g.*, pg_current_xact_id()::text FROM g
        """,
        [allocation.id, uuids, usage.memory, usage.slices, usage.exclusive, now, usage.mask])
      allocation.state = .released
      allocation.releaseTime = now
      quotaReleased = false
      let (rows, xid) = try Self.gpuStates(written)
      return (allocation, quotaReleased, rows, xid)
    }
    if let xid { index.wrote(rows, xid: xid) }
    if !quotaReleased { await releaseQuota(allocation) }
    return allocation
  }

  /// Releases the allocation's quota reservation (not done yet, as its row said) and queues the
  /// mark that records it; a failure is logged and left for the quota release retry (or a
  /// repeated Release).
  /// - Returns: whether the hold was given back.
  @discardableResult
  func releaseQuota(_ allocation: Allocation) async -> Bool {
    do {
      try await quota.release(
        tenant: allocation.tenantID, reservationID: allocation.quotaReservationID,
        idempotencyKey: "scheduler:release:\(allocation.quotaReservationID)")
    } catch QuotaGateError.reservationGone {
      // Already gone: nothing left to give back.
    } catch {
      // The GPUs are free; the quota stays held until the retrier (or a repeated Release)
      // gives it back.
      logger.warning(
        "quota release failed; retried in the background",
        metadata: ["allocation": "\(allocation.id)", "error": "\(error)"])
      return false
    }
    // Marked later, with every other Release's since the last flush (`flushQuotaMarks`), not in
    // a transaction of its own: a mark lost before its flush costs one repeated quota release,
    // which its idempotency key makes harmless.
    pendingQuotaMarks.withLock { $0.append(allocation.id) }
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

  /// One round trip: BEGIN, the read and COMMIT go together.
  func activeAllocation(tenant: String, workload: String) async throws -> Allocation? {
    try await pool.transaction(tenant: tenant, readOnly: true) { tx in
      try await tx.queryAndCommit(
        "SELECT \(Self.allocationColumns) FROM scheduler.allocations WHERE tenant_id = $1 AND workload_id = $2 AND state = 1",
        [tenant, workload]
      ).first.map { try Self.decodeAllocation($0).allocation }
    }
  }

  /// A tenant's allocations in (create_time, id) order after `after`.
  public func listAllocations(
    tenant: String, node: String, state: AllocationState, after: (Date, UUID)?, limit: Int
  ) async throws -> [Allocation] {
    if tenant.isEmpty { return try await fleetAllocations(node: node, state: state, after: after, limit: limit) }
    return try await pool.transaction(tenant: tenant, readOnly: true) { tx in
      try await tx.query(
        Self.tenantListing,
        [tenant, state.rawValue, after?.0 ?? Date(timeIntervalSince1970: 0), after?.1 ?? SchedulerStore.zeroID, node,
         Int64(limit)]
      ).map { try Self.decodeAllocation($0).allocation }
    }
  }

  /// A tenant's allocations of one state after a (create_time, id), optionally only those with a
  /// placement on a node: ($1 tenant, $2 state, $3 and $4 the position, $5 node or '', $6 limit).
  /// Walks the tenant's allocations of that state only (`allocations_by_state_and_time`).
  static let tenantListing = """
    SELECT \(allocationColumns) FROM scheduler.allocations a
     WHERE tenant_id = $1 AND state = $2 AND (a.create_time, a.id) > ($3, $4)
       AND ($5 = '' OR a.placements @> jsonb_build_array(jsonb_build_object('node', $5::text)))
     ORDER BY create_time, id LIMIT $6
    """

  /// Every tenant's allocations: the operator's view, through the schema's SECURITY DEFINER
  /// functions. The ACTIVE ones on a node (DrainNode's list) are found through the node's
  /// placements (`node_allocations`), all ACTIVE ones through their index (`active_allocations`),
  /// the rest by walking every allocation (`fleet_allocations`).
  func fleetAllocations(node: String, state: AllocationState, after: (Date, UUID)?, limit: Int) async throws -> [Allocation] {
    let since = after?.0 ?? Date(timeIntervalSince1970: 0)
    let afterID = after?.1 ?? SchedulerStore.zeroID
    let rows =
      if state == .active && !node.isEmpty {
        try await pool.query(
          "SELECT \(Self.allocationColumns) FROM scheduler.node_allocations($1, $2, $3, $4)", [node, since, afterID, Int32(limit)])
      } else if state == .active {
        try await pool.query(
          "SELECT \(Self.allocationColumns) FROM scheduler.active_allocations($1, $2, $3)", [since, afterID, Int32(limit)])
      } else {
        try await pool.query(
          "SELECT \(Self.allocationColumns) FROM scheduler.fleet_allocations($1, $2, $3, $4, $5)",
          [node, state.rawValue, since, afterID, Int32(limit)])
      }
    return try rows.map { try Self.decodeAllocation($0).allocation }
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
