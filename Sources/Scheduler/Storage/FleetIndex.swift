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
///
/// Reloads and this replica's own decisions interleave: a reload reads the database while
/// decisions of this replica are still on their way to it. So the index keeps every decision it
/// assumed until a reload that began after the decision was committed (or failed) has replaced
/// the fleet: each reload lays the decisions still in flight, and those committed while it was
/// reading, over what it read. Without that, a reload forgets up to a whole replica's worth of
/// in-flight claims, and the replica hands the same room out again and loses at commit, over
/// and over (seen under two replicas and 64 callers). Counting a claim twice for a moment is
/// the safe side: it can refuse or retry, never over-allocate.
public final class FleetIndex: Sendable {
  /// One decision this replica assumed, until a reload no longer needs to replay it.
  struct Assumed {
    var placements: [ReplicaPlacement]
    /// When the commit settled (committed or given back), as a count of settlements.
    var settledAt: Int?
  }

  struct State {
    var fleet = Fleet()
    var assumed: [Int: Assumed] = [:]
    var nextToken = 0
    var settlements = 0
    /// Reloads that replaced the fleet: a release checks it did not change under it.
    var generation = 0
  }

  private let state = Mutex(State())

  public init() {}

  /// The fleet as of now: a copy placement works on without holding any lock.
  public var snapshot: Fleet { state.withLock { $0.fleet } }

  /// Reloads completed so far; `released(_:since:)` takes it from before its transaction.
  var generation: Int { state.withLock { $0.generation } }

  /// Decides on the index as it is now and, on success, applies the decision at once ("assumes"
  /// it), under one lock: concurrent requests of this replica never choose the same free room.
  /// The answer carries a token: `settle(_:committed:)` it once the commit succeeded or failed.
  func assume(
    _ decide: (Fleet) -> Result<[ReplicaPlacement], SchedulerError>
  ) -> Result<(token: Int, placements: [ReplicaPlacement]), SchedulerError> {
    state.withLock { state in
      decide(state.fleet).map { placements in
        for placement in placements { state.fleet.apply(placement.claims, on: placement.node) }
        let token = state.nextToken
        state.nextToken += 1
        state.assumed[token] = Assumed(placements: placements)
        return (token, placements)
      }
    }
  }

  /// Ends an assumption: a committed decision stays counted (and is replayed over reloads that
  /// may have read the database before it landed); a failed one is given back at once.
  func settle(_ token: Int, committed: Bool) {
    state.withLock { state in
      guard let assumed = state.assumed[token] else { return }
      state.settlements += 1
      if committed {
        state.assumed[token]?.settledAt = state.settlements
      } else {
        state.assumed[token] = nil
        for placement in assumed.placements { state.fleet.apply(placement.claims, on: placement.node, sign: -1) }
      }
    }
  }

  /// Gives back a released allocation's claims, unless a reload replaced the fleet since
  /// `generation` (taken before the release's transaction): that reload may already have read
  /// them as free, and giving them back twice would hand out room another replica holds.
  func released(_ placements: [ReplicaPlacement], since generation: Int) {
    state.withLock { state in
      guard state.generation == generation else { return }
      for placement in placements { state.fleet.apply(placement.claims, on: placement.node, sign: -1) }
    }
  }

  func replace(_ node: Node) { state.withLock { $0.fleet.nodes[node.name] = node } }

  func remove(_ name: String) { _ = state.withLock { $0.fleet.nodes.removeValue(forKey: name) } }

  func update(_ name: String, _ change: (inout Node) -> Void) {
    state.withLock { state in
      if var node = state.fleet.nodes[name] {
        change(&node)
        state.fleet.nodes[name] = node
      }
    }
  }

  /// Replaces the whole index with what the database holds, with this replica's decisions that
  /// the read may have missed laid over it.
  /// - Throws: `PostgresError`.
  public func reload(from pool: PostgresPool) async throws {
    // Decisions committed after this point may be missing from what the read sees.
    let mark = state.withLock { $0.settlements }
    let fleet = try await pool.transaction(isolation: .repeatableRead, readOnly: true) { tx in
      try await Self.load(tx, names: nil)
    }
    state.withLock { state in
      state.fleet = fleet
      state.generation += 1
      for (token, assumed) in state.assumed {
        if let settledAt = assumed.settledAt, settledAt <= mark {
          state.assumed[token] = nil  // committed before the read began: the read has it
        } else {
          for placement in assumed.placements { state.fleet.apply(placement.claims, on: placement.node) }
        }
      }
    }
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
