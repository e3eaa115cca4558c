import Foundation
import Postgres
import Synchronization

/// What a batch of heartbeats is made of.
enum HeartbeatBatch {
  /// One node's heartbeat, at the time the scheduler received it.
  struct Beat: Sendable {
    var node: String
    var at: Date
  }

  /// Most heartbeats written in one batch (the rest wait for the next).
  static let maxBeats = 1_000
}

extension SchedulerStore {
  /// Records a heartbeat and answers the node's state.
  ///
  /// A fleet of 10,000 nodes heartbeating every 10 s sends 1,000 a second, more than any other
  /// call. Heartbeats that arrive while a batch is being written wait and go together in the next
  /// one (group commit): one transaction and one WAL flush for many nodes instead of one each. A
  /// lone heartbeat goes at once.
  /// - Throws: `.nodeNotFound`; `PostgresError` (for the whole batch).
  public func heartbeat(_ name: String) async throws -> NodeState {
    let beat = HeartbeatBatch.Beat(node: name, at: currentTime())
    return try await heartbeats.submit(beat, for: 0) { [self] _, beats in try await self.record(beats) }.get()
  }

  /// Writes a batch of heartbeats in one transaction, and answers each one's node state (at its
  /// own time), or `.nodeNotFound`.
  ///
  /// Two statements: the nodes' rows locked in name order first, so two replicas' batches that
  /// share nodes never wait on each other in a cycle (a single UPDATE would lock them in whatever
  /// order its plan visits them); then the update, which never moves a heartbeat back. The lock
  /// is the one the update takes anyway (FOR NO KEY UPDATE): it does not block the key-share
  /// locks that writing a node's GPUs takes on its row.
  func record(_ beats: [HeartbeatBatch.Beat]) async throws -> [Result<NodeState, SchedulerError>] {
    heartbeatBatches.add(1, ordering: .relaxed)
    var latest: [String: Date] = [:]
    for beat in beats { latest[beat.node] = max(latest[beat.node] ?? beat.at, beat.at) }
    let names = latest.keys.sorted()
    let rows = try await pool.transaction { tx in
      _ = try await tx.query(
        "SELECT name FROM scheduler.nodes WHERE name = ANY($1::text[]) ORDER BY name FOR NO KEY UPDATE", [names])
      return try await tx.queryAndCommit(
        """
        UPDATE scheduler.nodes n SET last_heartbeat_time = greatest(n.last_heartbeat_time, u.at)
          FROM unnest($1::text[], $2::timestamptz[]) AS u(name, at)
         WHERE n.name = u.name
        RETURNING n.name, n.cordoned, n.draining, n.last_heartbeat_time,
          EXISTS (SELECT 1 FROM scheduler.gpus g
                   WHERE g.node_name = n.name AND (g.allocated_memory_bytes > 0 OR g.allocated_mig_slices > 0 OR g.exclusive))
        """, [names, names.map { latest[$0]! }])
    }
    var found: [String: (lastHeartbeat: Date, cordoned: Bool, draining: Bool, holding: Bool)] = [:]
    for row in rows {
      let name = try row.decode(String.self, at: 0)
      let heartbeat = try row.decode(Date.self, at: 3)
      found[name] = (heartbeat, try row.decode(Bool.self, at: 1), try row.decode(Bool.self, at: 2), try row.decode(Bool.self, at: 4))
      index.heartbeat(name, at: heartbeat)
    }
    return beats.map { beat in
      guard let node = found[beat.node] else { return .failure(.nodeNotFound(beat.node)) }
      return .success(NodeState(
        lastHeartbeat: node.lastHeartbeat, cordoned: node.cordoned, draining: node.draining, holding: node.holding,
        at: beat.at, grace: heartbeatGrace))
    }
  }
}
