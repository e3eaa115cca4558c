import Foundation
public import Postgres
import Synchronization

/// The in-memory model of the fleet that placement decides on: every node, its GPUs and what is
/// allocated on them, rebuilt from Postgres (two queries, no tenant data) and kept in step with it.
///
/// In step how: this replica applies its own commits and releases at once; what other replicas
/// do arrives with the next `reload` (periodically, by `FleetIndexRefresher`, and at once when a
/// commit finds the index stale or a request does not fit). A stale index never over-allocates:
/// every commit re-checks the chosen GPUs against their locked rows. At worst it costs a retry.
public final class FleetIndex: Sendable {
  private let state = Mutex(Fleet())

  public init() {}

  /// The fleet as of now: a copy placement works on without holding any lock.
  public var snapshot: Fleet { state.withLock { $0 } }

  /// Applies (or with `sign` -1 gives back) committed placements.
  func apply(_ placements: [ReplicaPlacement], sign: Int = 1) {
    state.withLock { fleet in
      for placement in placements { fleet.apply(placement.claims, on: placement.node, sign: sign) }
    }
  }

  /// Decides on the index as it is now and, on success, applies the decision at once ("assumes"
  /// it), under one lock: concurrent requests of this replica never choose the same free room.
  /// A commit that then fails gives the claims back with `apply(_:sign: -1)`.
  func assume(_ decide: (Fleet) -> Result<[ReplicaPlacement], SchedulerError>) -> Result<[ReplicaPlacement], SchedulerError> {
    state.withLock { fleet in
      let result = decide(fleet)
      if case .success(let placements) = result {
        for placement in placements { fleet.apply(placement.claims, on: placement.node) }
      }
      return result
    }
  }

  func replace(_ node: Node) { state.withLock { $0.nodes[node.name] = node } }

  func remove(_ name: String) { _ = state.withLock { $0.nodes.removeValue(forKey: name) } }

  func update(_ name: String, _ change: (inout Node) -> Void) {
    state.withLock { fleet in
      if var node = fleet.nodes[name] {
        change(&node)
        fleet.nodes[name] = node
      }
    }
  }

  /// Replaces the whole index with what the database holds.
  /// - Throws: `PostgresError`.
  public func reload(from pool: PostgresPool) async throws {
    let fleet = try await pool.transaction(isolation: .repeatableRead, readOnly: true) { tx in
      try await Self.load(tx, names: nil)
    }
    state.withLock { $0 = fleet }
  }

  /// Nodes (all, or those named) with their GPUs, as the database holds them.
  static func load(_ tx: PostgresTransaction, names: [String]?) async throws -> Fleet {
    let nodeRows = try await tx.query(
      """
      SELECT name, labels, cordoned, draining, last_heartbeat_time, create_time FROM scheduler.nodes
       WHERE $1::text[] IS NULL OR name = ANY($1::text[])
      """, [names])
    let gpuRows = try await tx.query(
      """
      SELECT node_name, uuid, model, memory_bytes, mig_slices, mig_profiles, allocated_memory_bytes,
             allocated_mig_slices, exclusive
        FROM scheduler.gpus WHERE $1::text[] IS NULL OR node_name = ANY($1::text[]) ORDER BY node_name, position
      """, [names])
    var gpus: [String: [GPU]] = [:]
    for row in gpuRows {
      gpus[try row.decode(String.self, at: 0), default: []].append(GPU(
        uuid: try row.decode(String.self, at: 1), model: try row.decode(String.self, at: 2),
        memoryBytes: try row.decode(Int64.self, at: 3),
        migProfiles: try row.decode(PostgresJSON.self, at: 5).decode([MIGProfile].self),
        migSlices: Int(try row.decode(Int32.self, at: 4)),
        allocatedMemoryBytes: try row.decode(Int64.self, at: 6), allocatedMIGSlices: Int(try row.decode(Int32.self, at: 7)),
        exclusive: try row.decode(Bool.self, at: 8)))
    }
    return Fleet(nodes: try nodeRows.map { row in
      let name = try row.decode(String.self, at: 0)
      return Node(
        name: name, labels: try row.decode(PostgresJSON.self, at: 1).decode([String: String].self), gpus: gpus[name] ?? [],
        cordoned: try row.decode(Bool.self, at: 2), draining: try row.decode(Bool.self, at: 3),
        lastHeartbeat: try row.decode(Date.self, at: 4), createTime: try row.decode(Date.self, at: 5))
    })
  }
}
