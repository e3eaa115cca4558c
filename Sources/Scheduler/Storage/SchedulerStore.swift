public import QuotaClient
public import Foundation
public import Logging
public import Postgres
import MaaSRuntime
import Synchronization

/// The scheduler's state in Postgres, its placement index in memory, and tenants' CONCURRENT_GPUS
/// in the quota service.
///
/// Concurrency (several replicas on one database): placement decides in memory, then commits in
/// one transaction that locks the chosen GPU rows (`SELECT ... FOR UPDATE`, ordered by uuid, so
/// two commits never wait on each other in a cycle), re-checks each claim against the locked
/// counters, and writes. A claim that no longer fits (another replica took the GPU) rolls the
/// transaction back, reloads the index and decides again, at most `maxAttempts` times. The
/// database's CHECK constraints are the last guard: an over-allocated GPU cannot be written.
///
/// Errors: `SchedulerError` for refusals, `PostgresError` for the database, `QuotaGateError` for
/// a quota answer the scheduler did not expect.
public final class SchedulerStore: Sendable {
  let pool: PostgresPool
  let quota: any QuotaGate
  let index: FleetIndex
  let engine: PlacementEngine
  let now: @Sendable () -> Date
  let logger: Logger
  let maxAttempts: Int
  /// Index loads, one at a time; callers that ask while one runs share the next (see
  /// `refreshIndex`). One key: there is one index.
  let refreshes = KeyedBatcher<Int, Void, Void>()
  /// Released allocations whose quota hold was given back, not yet marked so in the database
  /// (`flushQuotaMarks` writes them together).
  let pendingQuotaMarks = Mutex<[UUID]>([])
  /// Heartbeats, written together: those that arrive while a batch is being written go in the
  /// next (see SchedulerStore+Heartbeats.swift). One key: every node's go together.
  let heartbeats = KeyedBatcher<Int, HeartbeatBatch.Beat, Result<NodeState, SchedulerError>>(maxBatch: HeartbeatBatch.maxBeats)
  /// Heartbeat batches written (exported as `maas_scheduler_heartbeat_batches_total`).
  let heartbeatBatches = Atomic<Int>(0)
  /// Schedule commits that found the index stale (another replica had taken a chosen GPU, or a
  /// node changed) and were tried again (`maas_scheduler_placement_conflicts_total`).
  let placementConflicts = Atomic<Int>(0)
  /// The connections Schedule commits may hold: all but `ConnectionShare.reservedForReads`. A
  /// commit calls the quota service with its GPU rows locked; when quota hangs, commits then
  /// wait for a turn here (and fail UNAVAILABLE after the pool's acquire timeout) while
  /// heartbeats, Releases and reads go on with the connections left.
  let commits: ConnectionShare

  /// - Parameters:
  ///   - heartbeatGrace: a node that has not heartbeated for this long is NOT_READY.
  ///   - clock: injected so tests can age heartbeats.
  public init(
    pool: PostgresPool, quota: any QuotaGate, heartbeatGrace: Duration = .seconds(30),
    maxAttempts: Int = 5, logger: Logger, clock: @escaping @Sendable () -> Date = { Date() }
  ) {
    self.pool = pool
    self.quota = quota
    self.index = FleetIndex()
    self.engine = PlacementEngine(heartbeatGrace: heartbeatGrace)
    self.now = clock
    self.logger = logger
    self.maxAttempts = maxAttempts
    self.commits = ConnectionShare(of: pool)
  }

  public var heartbeatGrace: Duration { engine.heartbeatGrace }

  /// Brings the placement index up to date with the database (what other replicas placed,
  /// released, registered): at start, periodically, after conflicts and before refusals.
  ///
  /// Loads run one at a time. A caller arriving while one runs waits for the next, which starts
  /// after it arrived (so it sees whatever was committed before the call), and every caller
  /// arriving meanwhile shares that one: a burst of refusals costs two loads, not one each.
  /// - Throws: `PostgresError`.
  public func refreshIndex() async throws {
    try await refreshes.share(for: 0) { [index, pool] _ in try await index.reload(from: pool) }
  }

  /// Takes nodes that are NOT_READY for missed heartbeats out of the placement orders (they come
  /// back with their next heartbeat); with each periodic reload.
  public func leaveOutSilentNodes() {
    index.leaveOutSilent(before: currentTime().addingTimeInterval(-heartbeatGrace.seconds))
  }

  /// Whole microseconds, as the database keeps them.
  func currentTime() -> Date {
    Date(timeIntervalSince1970: (now().timeIntervalSince1970 * 1_000_000).rounded(.down) / 1_000_000)
  }

  // MARK: - Inventory

  /// Creates or replaces a node; counts as a heartbeat; keeps its cordon.
  /// - Throws: `.gpuTaken` for a uuid on another node, `.gpusHeld` for dropped GPUs allocations hold.
  public func registerNode(_ command: RegisterNodeCommand) async throws -> NodeView {
    let now = currentTime()
    let xid: UInt64? = try await pool.transaction { tx in
      let uuids = command.gpus.map(\.uuid)
      let elsewhere = try await tx.query(
        "SELECT uuid, node_name FROM scheduler.gpus WHERE uuid = ANY($1::text[]) AND node_name <> $2 ORDER BY uuid LIMIT 1",
        [uuids, command.name])
      if let row = elsewhere.first {
        throw SchedulerError.gpuTaken(uuid: try row.decode(String.self, at: 0), node: try row.decode(String.self, at: 1))
      }
      let xid = try await tx.query(
        """
        INSERT INTO scheduler.nodes (name, labels, last_heartbeat_time, create_time, update_time) VALUES ($1, $2, $3, $3, $3)
        ON CONFLICT (name) DO UPDATE SET labels = EXCLUDED.labels, last_heartbeat_time = EXCLUDED.last_heartbeat_time,
          update_time = EXCLUDED.update_time
        RETURNING pg_current_xact_id()::text
        """, [command.name, try PostgresJSON(encoding: command.labels), now]
      ).first?.decode(String.self, at: 0)
      // Locks the node's GPU rows: placements on them wait for this, and this for them.
      let current = try await tx.query(
        """
        SELECT uuid, allocated_memory_bytes > 0 OR allocated_mig_slices > 0 OR exclusive
          FROM scheduler.gpus WHERE node_name = $1 ORDER BY uuid FOR UPDATE
        """, [command.name])
      let kept = Set(uuids)
      let heldDropped = try current.filter { try !kept.contains($0.decode(String.self, at: 0)) && $0.decode(Bool.self, at: 1) }
        .map { try $0.decode(String.self, at: 0) }
      if !heldDropped.isEmpty { throw SchedulerError.gpusHeld(heldDropped) }
      _ = try await tx.execute(
        "DELETE FROM scheduler.gpus WHERE node_name = $1 AND NOT (uuid = ANY($2::text[]))", [command.name, uuids])
      for (position, gpu) in command.gpus.enumerated() {
        // Allocated amounts are the scheduler's own; re-registration never resets them. A GPU
        // whose size shrank below what is held fails the CHECK constraints: drain first.
        _ = try await tx.execute(
          """
          INSERT INTO scheduler.gpus (uuid, node_name, position, model, memory_bytes, mig_slices, mig_profiles)
          VALUES ($1, $2, $3, $4, $5, $6, $7)
          ON CONFLICT (uuid) DO UPDATE SET position = EXCLUDED.position, model = EXCLUDED.model,
            memory_bytes = EXCLUDED.memory_bytes, mig_slices = EXCLUDED.mig_slices, mig_profiles = EXCLUDED.mig_profiles
          """,
          [gpu.uuid, command.name, Int32(position), gpu.model, gpu.memoryBytes, Int32(gpu.migSlices),
           try PostgresJSON(encoding: gpu.migProfiles)])
      }
      return xid.flatMap { UInt64($0) }
    }
    if let xid { index.wroteNode(command.name, xid: xid) }
    return try await refreshNode(command.name, merge: true)
  }

  /// Reads the nodes named, whole, into the index (dropping those that are gone).
  func reloadNodes(_ names: [String]) async throws {
    let load = try await pool.transaction(isolation: .repeatableRead, readOnly: true) { tx in
      try await FleetIndex.load(tx, scope: .named(names), since: nil)
    }
    index.merge(load)
  }

  /// Reads one node as the database holds it and answers it; with `merge`, also into the index
  /// (after this replica changed it).
  func refreshNode(_ name: String, merge: Bool) async throws -> NodeView {
    let (load, holders) = try await pool.transaction(isolation: .repeatableRead, readOnly: true) { tx in
      let holders = try await Self.holders(tx, nodes: [name])
      return (try await FleetIndex.load(tx, scope: .named([name]), since: nil), holders)
    }
    if merge { index.merge(load) }
    guard let node = FleetIndex.nodes(of: load)[name] else { throw SchedulerError.nodeNotFound(name) }
    return NodeView(node: node, state: node.state(at: currentTime(), grace: heartbeatGrace), holders: holders)
  }

  static func holders(_ tx: PostgresTransaction, nodes: [String]) async throws -> [String: [String]] {
    let rows = try await tx.query(
      "SELECT DISTINCT gpu_uuid, allocation_id::text FROM scheduler.placements WHERE node_name = ANY($1::text[]) ORDER BY 1, 2",
      [nodes])
    var holders: [String: [String]] = [:]
    for row in rows { holders[try row.decode(String.self, at: 0), default: []].append(try row.decode(String.self, at: 1)) }
    return holders
  }

  /// Cordons (and with `drain`, marks draining) or uncordons a node. Idempotent.
  /// - Throws: `.nodeNotFound`.
  public func setCordon(_ name: String, cordoned: Bool, drain: Bool = false, reason: String = "") async throws -> NodeView {
    let rows = try await pool.query(
      """
      UPDATE scheduler.nodes SET cordoned = $2, draining = CASE WHEN $2 THEN draining OR $3 ELSE false END,
        cordon_reason = CASE WHEN $2 THEN $4 ELSE '' END, update_time = $5 WHERE name = $1
      RETURNING pg_current_xact_id()::text
      """, [name, cordoned, drain, reason, currentTime()])
    guard let row = rows.first else { throw SchedulerError.nodeNotFound(name) }
    if let xid = UInt64(try row.decode(String.self, at: 0)) { index.wroteNode(name, xid: xid) }
    return try await refreshNode(name, merge: true)
  }

  /// Cordons the node and lists the ACTIVE allocations of every tenant on it.
  public func drain(_ name: String, reason: String) async throws -> (NodeView, [Allocation]) {
    let view = try await setCordon(name, cordoned: true, drain: true, reason: reason)
    let allocations = try await fleetAllocations(node: name, state: .active, after: nil, limit: 10_000)
    return (view, allocations)
  }

  /// - Throws: `.nodeNotFound`, `.gpusHeld` while allocations remain.
  public func deleteNode(_ name: String) async throws {
    let xid: UInt64? = try await pool.transaction { tx in
      let held = try await tx.query(
        """
        SELECT uuid FROM scheduler.gpus WHERE node_name = $1 AND (allocated_memory_bytes > 0 OR allocated_mig_slices > 0 OR exclusive)
         ORDER BY uuid FOR UPDATE
        """, [name])
      if !held.isEmpty { throw SchedulerError.gpusHeld(try held.map { try $0.decode(String.self, at: 0) }) }
      guard let row = try await tx.query("DELETE FROM scheduler.nodes WHERE name = $1 RETURNING pg_current_xact_id()::text", [name]).first
      else { throw SchedulerError.nodeNotFound(name) }
      return UInt64(try row.decode(String.self, at: 0))
    }
    if let xid { index.wroteNode(name, xid: xid, deleted: true) }
    index.remove(name)
  }

  public func node(_ name: String) async throws -> NodeView { try await refreshNode(name, merge: false) }

  /// Nodes ordered by name after `after`, at most `limit`, filtered as ListNodes says.
  public func listNodes(after: String, limit: Int, state: NodeState?, selector: [String: String], gpuModel: String) async throws
    -> [NodeView]
  {
    let now = currentTime()
    // The state is decided here (`Node.state`, from the heartbeat's age and the GPUs held), over
    // pages of names. The statement keeps only nodes that can be in the state asked for (a
    // condition each state needs, from the node's row alone), so a rare state does not walk the
    // whole fleet page by page.
    let stale = now.addingTimeInterval(-heartbeatGrace.seconds)
    var result: [NodeView] = []
    var cursor = after
    while result.count < limit {
      let page = try await pool.transaction(isolation: .repeatableRead, readOnly: true) { tx in
        let names = try await tx.query(
          """
          SELECT name FROM scheduler.nodes n WHERE name > $1 AND labels @> $2
             AND ($3 = '' OR EXISTS (SELECT 1 FROM scheduler.gpus g WHERE g.node_name = n.name AND g.model = $3))
             AND CASE $5
                   WHEN 'notReady' THEN last_heartbeat_time < $6
                   WHEN 'draining' THEN last_heartbeat_time >= $6 AND draining
                   WHEN 'cordoned' THEN last_heartbeat_time >= $6 AND cordoned
                   WHEN 'ready' THEN last_heartbeat_time >= $6 AND NOT cordoned
                   ELSE true
                 END
           ORDER BY name LIMIT $4
          """, [cursor, try PostgresJSON(encoding: selector), gpuModel, Int64(limit), state?.rawValue ?? "", stale]
        ).map { try $0.decode(String.self, at: 0) }
        let holders = try await Self.holders(tx, nodes: names)
        return (names, FleetIndex.nodes(of: try await FleetIndex.load(tx, scope: .named(names), since: nil)), holders)
      }
      for name in page.0 {
        guard let node = page.1[name] else { continue }
        let nodeState = node.state(at: now, grace: heartbeatGrace)
        if state == nil || state == nodeState { result.append(NodeView(node: node, state: nodeState, holders: page.2)) }
        if result.count == limit { break }
      }
      guard page.0.count == limit, let last = page.0.last else { break }
      cursor = last
    }
    return result
  }

  /// Capacity per GPU type, from the index (at most one refresh interval behind other replicas).
  public func capacity(gpuModel: String, selector: [String: String]) -> [GPUCapacity] {
    let now = currentTime()
    return index.read { GPUCapacity.summarize($0, gpuModel: gpuModel, selector: selector, at: now, grace: heartbeatGrace) }
  }
}
