import Foundation
import Postgres

/// A Postgres snapshot (`pg_current_snapshot()`, `xmin:xmax:xip,...`): whose writes a read saw.
struct PostgresSnapshot: Sendable, Hashable {
  var xmin: UInt64
  var xmax: UInt64
  var inProgress: Set<UInt64>

  init(xmin: UInt64, xmax: UInt64, inProgress: Set<UInt64> = []) {
    self.xmin = xmin
    self.xmax = xmax
    self.inProgress = inProgress
  }

  init?(_ text: String) {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count == 3, let xmin = UInt64(parts[0]), let xmax = UInt64(parts[1]) else { return nil }
    let running = parts[2].split(separator: ",").compactMap { UInt64($0) }
    self.init(xmin: xmin, xmax: xmax, inProgress: Set(running))
  }

  /// Whether a committed transaction's writes are visible in the snapshot.
  func sees(_ xid: UInt64) -> Bool { xid < xmin || (xid < xmax && !inProgress.contains(xid)) }

  /// `xmin` as the 32-bit xid rows carry, for `age(xmin) <= age(...)`: rows written at or after it.
  var rowXmin: String { String(max(3, xmin & 0xFFFF_FFFF)) }
}

/// What one read of the database brought for the index.
struct FleetLoad: Sendable {
  enum Scope: Sendable {
    /// Every node: one not here was deleted.
    case all
    /// Rows written since the previous load's snapshot.
    case changed
    /// These nodes: one not here was deleted.
    case named([String])
  }

  /// A node's row, without its GPUs.
  struct NodeRow: Sendable {
    var name: String
    var labels: [String: String]
    var cordoned: Bool
    var draining: Bool
    var lastHeartbeat: Date
    var createTime: Date
    var updateTime: Date
  }

  var scope: Scope
  var snapshot: PostgresSnapshot
  /// How many nodes the database holds (loads of changed rows): one the index does not match
  /// means a node was deleted, and the next load reads everything.
  var nodeCount: Int? = nil
  var nodes: [NodeRow]
  /// Every GPU of each node read whole (all of them, or those registered again), even none.
  var gpusByNode: [String: [GPU]]
  /// The committed allocations of other GPUs whose rows changed.
  var allocations: [FleetIndex.GPUState]
}

extension FleetIndex {
  /// Every complete load is followed by this many loads of changed rows only, then a complete
  /// one again (sooner when the database's count of nodes says one was deleted).
  static let partialLoadsPerComplete = 59

  /// Brings the index up to date with the database: the rows written since the last load (a scan
  /// of `nodes` and `gpus` by xmin on the server, returning only those rows), or everything at
  /// start and every `partialLoadsPerComplete + 1` loads.
  /// - Throws: `PostgresError`.
  func reload(from pool: PostgresPool) async throws {
    let (since, complete) = state.withLock { state in
      (state.since, state.since == nil || state.partialLoads >= Self.partialLoadsPerComplete)
    }
    let known = { @Sendable (name: String) -> Date? in self.state.withLock { $0.updateTimes[name] } }
    let load = try await pool.transaction(isolation: .repeatableRead, readOnly: true) { tx in
      try await Self.load(tx, scope: complete ? .all : .changed, since: since, knownUpdateTime: known)
    }
    merge(load)
  }

  /// Reads `scope`: nodes (all, changed since the xmin `since`, or those named), and their GPUs.
  /// For changed rows, a node whose `update_time` differs from `knownUpdateTime` (or is unknown)
  /// is read whole; other changed GPUs bring their allocation only.
  /// - Parameter last: the transaction ends with the load (COMMIT goes with its last statement).
  static func load(
    _ tx: PostgresTransaction, scope: FleetLoad.Scope, since: UInt64?, knownUpdateTime: (String) -> Date? = { _ in nil },
    last: Bool = true
  ) async throws -> FleetLoad {
    let names: [String]?
    var nodeFilter = "true"
    // Counted only where it is read (loads of changed rows): a count is a scan of every node,
    // which a load of one node (RegisterNode, GetNode, a placement conflict) must not pay.
    var count = "NULL::bigint"
    var parameters: [(any PostgresEncodable)?] = []
    switch scope {
    case .all:
      names = nil
    case .named(let list):
      names = list
      nodeFilter = "n.name = ANY($1::text[])"
      parameters = [list]
    case .changed:
      names = nil
      nodeFilter = "age(n.xmin) <= age($1::text::xid)"
      count = "(SELECT count(*) FROM scheduler.nodes)"
      parameters = [PostgresSnapshot(xmin: since ?? 0, xmax: 0).rowXmin]
    }
    // The snapshot (and the count of nodes) come along with the rows (one row of NULLs when
    // there are none).
    let nodeRows = try await tx.query(
      """
      SELECT s.snapshot, n.name, n.labels, n.cordoned, n.draining, n.last_heartbeat_time, n.create_time, n.update_time, s.nodes
        FROM (SELECT pg_current_snapshot()::text AS snapshot, \(count) AS nodes) s
        LEFT JOIN scheduler.nodes n ON \(nodeFilter)
      """, parameters)
    guard let first = nodeRows.first, let snapshot = PostgresSnapshot(try first.decode(String.self, at: 0)) else {
      throw PostgresError(kind: .query, message: "pg_current_snapshot() answered no snapshot", statement: "pg_current_snapshot()")
    }
    var nodes: [FleetLoad.NodeRow] = []
    for row in nodeRows {
      guard let name = try row.decode(String?.self, at: 1) else { continue }
      nodes.append(FleetLoad.NodeRow(
        name: name, labels: try row.decode(PostgresJSON.self, at: 2).decode([String: String].self),
        cordoned: try row.decode(Bool.self, at: 3), draining: try row.decode(Bool.self, at: 4),
        lastHeartbeat: try row.decode(Date.self, at: 5), createTime: try row.decode(Date.self, at: 6),
        updateTime: try row.decode(Date.self, at: 7)))
    }

    guard case .changed = scope else {
      var gpus = try await Self.gpus(tx, of: names, last: last)
      for node in nodes where gpus[node.name] == nil { gpus[node.name] = [] }
      return FleetLoad(scope: scope, snapshot: snapshot, nodes: nodes, gpusByNode: gpus, allocations: [])
    }
    let whole = nodes.filter { knownUpdateTime($0.name) != $0.updateTime }.map(\.name)
    let allocationSQL = """
      SELECT g.node_name, g.uuid, \(GPUUsage.columns) FROM scheduler.gpus g
       WHERE age(g.xmin) <= age($1::text::xid)
      """
    let allocationRows = whole.isEmpty && last
      ? try await tx.queryAndCommit(allocationSQL, parameters) : try await tx.query(allocationSQL, parameters)
    let allocations = try allocationRows.map { row in
      FleetIndex.GPUState(
        node: try row.decode(String.self, at: 0), uuid: try row.decode(String.self, at: 1), usage: try GPUUsage(row, from: 2))
    }
    var gpus = whole.isEmpty ? [:] : try await Self.gpus(tx, of: whole, last: last)
    for name in whole where gpus[name] == nil { gpus[name] = [] }
    return FleetLoad(
      scope: scope, snapshot: snapshot, nodeCount: Int(try first.decode(Int64.self, at: 8)), nodes: nodes, gpusByNode: gpus,
      allocations: allocations)
  }

  /// Every GPU of the nodes named (all nodes when nil), in position order, by node.
  /// - Parameter last: the transaction's last statement (COMMIT goes with it).
  static func gpus(_ tx: PostgresTransaction, of names: [String]?, last: Bool) async throws -> [String: [GPU]] {
    // Two statements, not one with `$1 IS NULL OR ...`: the pool plans once, and that generic
    // plan cannot use the node index, so a load of one node scanned and sorted every GPU (20 ms
    // at 10,000 nodes, on every RegisterNode).
    let filter = names == nil ? "" : "WHERE g.node_name = ANY($1::text[]) "
    let sql = """
      SELECT g.node_name, g.uuid, g.model, g.memory_bytes, g.mig_slices, g.mig_profiles, \(GPUUsage.columns)
        FROM scheduler.gpus g \(filter)ORDER BY g.node_name, g.position
      """
    let parameters: [(any PostgresEncodable)?] = names.map { [$0] } ?? []
    let rows = last ? try await tx.queryAndCommit(sql, parameters) : try await tx.query(sql, parameters)
    var gpus: [String: [GPU]] = [:]
    var profiles: [Data: [MIGProfile]] = [:]
    for row in rows {
      // Most GPUs of a fleet share a handful of profile lists: each is decoded once.
      let json = try row.decode(PostgresJSON.self, at: 5)
      let migProfiles = try profiles[json.data] ?? json.decode([MIGProfile].self)
      profiles[json.data] = migProfiles
      var gpu = GPU(
        uuid: try row.decode(String.self, at: 1), model: try row.decode(String.self, at: 2),
        memoryBytes: try row.decode(Int64.self, at: 3), migProfiles: migProfiles,
        migSlices: Int(try row.decode(Int32.self, at: 4)))
      gpu.usage = try GPUUsage(row, from: 6)
      gpus[try row.decode(String.self, at: 0), default: []].append(gpu)
    }
    return gpus
  }

  /// The nodes of a load as the database holds them (answers read from the database, such as
  /// RegisterNode's and GetNode's, show these rather than the index).
  static func nodes(of load: FleetLoad) -> [String: Node] {
    var nodes: [String: Node] = [:]
    for row in load.nodes {
      nodes[row.name] = Node(
        name: row.name, labels: row.labels, gpus: load.gpusByNode[row.name] ?? [], cordoned: row.cordoned,
        draining: row.draining, lastHeartbeat: row.lastHeartbeat, createTime: row.createTime)
    }
    return nodes
  }

  /// Merges a load into the index. Pending claims stay on top of what it brings; a GPU or node
  /// this replica wrote in a transaction the load's snapshot does not see is left as it is; a
  /// node the load should have had but did not (deleted) leaves the index under the same rule.
  func merge(_ load: FleetLoad) {
    state.withLock { state in
      let snapshot = load.snapshot
      func unseen(_ key: String) -> Bool { state.localWrites[key].map { !snapshot.sees($0) } ?? false }
      for row in load.nodes where !unseen("node:\(row.name)") {
        let old = state.fleet.nodes[row.name]
        if let loaded = load.gpusByNode[row.name] {
          let gpus = loaded.map { gpu -> GPU in
            if let known = old?.gpus.first(where: { $0.uuid == gpu.uuid }), unseen("gpu:\(gpu.uuid)") {
              var kept = gpu
              kept.usage = known.usage
              return kept
            }
            return State.withCommitted(
              gpu, GPUState(node: row.name, uuid: gpu.uuid, usage: gpu.usage), pending: state.pending[gpu.uuid])
          }
          let node = Node(
            name: row.name, labels: row.labels, gpus: gpus, cordoned: row.cordoned, draining: row.draining,
            lastHeartbeat: max(row.lastHeartbeat, old?.lastHeartbeat ?? row.lastHeartbeat), createTime: row.createTime)
          // A complete load brings every node back; most are as the index has them.
          if node != old { state.fleet.upsert(node) }
        } else {
          state.fleet.update(row.name) { node in
            node.labels = row.labels
            node.cordoned = row.cordoned
            node.draining = row.draining
            node.lastHeartbeat = max(node.lastHeartbeat, row.lastHeartbeat)
          }
        }
        state.updateTimes[row.name] = row.updateTime
      }
      state.setCommitted(load.allocations.filter { load.gpusByNode[$0.node] == nil && !unseen("gpu:\($0.uuid)") })

      let expected: [String]
      switch load.scope {
      case .all: expected = Array(state.fleet.nodes.keys)
      case .named(let names): expected = names
      case .changed: expected = []
      }
      let present = Set(load.nodes.map(\.name))
      for name in expected where !present.contains(name) && !unseen("node:\(name)") {
        if let node = state.fleet.nodes[name] { for gpu in node.gpus { state.localWrites["gpu:\(gpu.uuid)"] = nil } }
        state.fleet.remove(name)
        state.updateTimes[name] = nil
        state.localWrites["node:\(name)"] = nil
        state.localWrites["deleted:\(name)"] = nil
      }
      switch load.scope {
      case .all:
        state.since = snapshot.xmin
        state.partialLoads = 0
      case .changed:
        state.since = snapshot.xmin
        state.partialLoads += 1
        // The count the snapshot should show: the index's, without the nodes this replica
        // registered after the snapshot and with those it deleted after it.
        if let count = load.nodeCount {
          var expected = state.fleet.nodes.count
          for (key, xid) in state.localWrites where !snapshot.sees(xid) {
            if key.hasPrefix("node:"), state.fleet.nodes[String(key.dropFirst(5))] != nil { expected -= 1 }
            if key.hasPrefix("deleted:") { expected += 1 }
          }
          if count != expected { state.partialLoads = Self.partialLoadsPerComplete }
        }
      case .named:
        break
      }
    }
  }
}
