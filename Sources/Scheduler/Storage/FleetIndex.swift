import Foundation
import Synchronization

/// The in-memory model of the fleet that placement decides on: every node, its GPUs and what is
/// allocated on them, with the orders placement walks (`Fleet`), kept in step with Postgres.
///
/// What a GPU shows here is its committed state as last known (read from the database, or written
/// by this replica's own commits) plus the claims this replica has decided and not yet committed
/// ("pending", as kube-scheduler assumes pods), so that concurrent requests of one replica never
/// choose the same free room. Loading from the database (`FleetIndex+Loading.swift`) replaces only
/// the committed part and puts the pending claims back on top. A GPU or node this replica wrote
/// in a transaction the load's snapshot does not see keeps what this replica knows: a load that
/// began before one of this replica's commits never rolls that commit back in memory.
///
/// A stale index never over-allocates: every commit re-checks the chosen GPUs against their locked
/// rows. At worst it costs a retry.
public final class FleetIndex: Sendable {
  /// A GPU's committed allocation, as a row of `scheduler.gpus` holds it.
  struct GPUState: Sendable, Hashable {
    var node: String
    var uuid: String
    var usage: GPUUsage
  }

  struct State {
    var fleet = Fleet()
    /// Claims decided on this replica and neither committed nor given back yet, by GPU uuid.
    var pending: [String: [GPUClaim]] = [:]
    /// The transaction (xid8) of this replica's last write of a GPU (`gpu:<uuid>`) or a node
    /// (`node:<name>`, and `deleted:<name>` when that write deleted it).
    var localWrites: [String: UInt64] = [:]
    /// Each node's `update_time` as last loaded: a different one means it was registered again
    /// (or cordoned), and its GPUs are read again with it.
    var updateTimes: [String: Date] = [:]
    /// The xmin of the last load's snapshot: every row written since by a transaction that load
    /// did not see has an xmin at or after it. Nil until the first complete load.
    var since: UInt64?
    /// Loads since the last complete one.
    var partialLoads = 0
  }

  let state = Mutex(State())

  public init() {}

  /// Runs `body` on the fleet as it is now, under the index's lock: for reads of the whole fleet
  /// (GetCapacity), without the copy a snapshot would cost the next change.
  func read<T>(_ body: (Fleet) -> T) -> T { state.withLock { body($0.fleet) } }

  /// The fleet as of now (a copy; tests and diagnostics).
  public var snapshot: Fleet { state.withLock { $0.fleet } }

  /// Decides on the index as it is now and, on success, applies the decision at once as pending
  /// claims, under one lock: concurrent requests of this replica never choose the same free room.
  /// The claims leave "pending" with `committed` or `giveBack`.
  func assume(_ decide: (Fleet) -> Result<[ReplicaPlacement], SchedulerError>) -> Result<[ReplicaPlacement], SchedulerError> {
    state.withLock { state in
      let result = decide(state.fleet)
      if case .success(let placements) = result {
        for placement in placements {
          state.fleet.apply(placement.claims, on: placement.node)
          for claim in placement.claims { state.pending[claim.gpuUUID, default: []].append(claim) }
        }
      }
      return result
    }
  }

  /// Gives back claims `assume` made that will not be committed.
  func giveBack(_ placements: [ReplicaPlacement]) {
    state.withLock { state in
      for placement in placements {
        state.fleet.apply(placement.claims, on: placement.node, sign: -1)
        for claim in placement.claims { state.removePending(claim) }
      }
    }
  }

  /// The placements' claims are committed, in transaction `xid`, leaving their GPUs as `rows`.
  func committed(_ placements: [ReplicaPlacement], rows: [GPUState], xid: UInt64) {
    state.withLock { state in
      for claim in placements.flatMap(\.claims) { state.removePending(claim) }
      state.wrote(rows, xid: xid)
    }
  }

  /// This replica's transaction `xid` left the GPUs as `rows` (a release).
  func wrote(_ rows: [GPUState], xid: UInt64) {
    state.withLock { $0.wrote(rows, xid: xid) }
  }

  /// This replica's transaction `xid` wrote the node's row (registered, cordoned, deleted it).
  func wroteNode(_ name: String, xid: UInt64, deleted: Bool = false) {
    state.withLock { state in
      state.localWrites["node:\(name)"] = xid
      state.localWrites["deleted:\(name)"] = deleted ? xid : nil
    }
  }

  func remove(_ name: String) { state.withLock { $0.fleet.remove(name) } }

  /// A heartbeat this replica recorded.
  func heartbeat(_ name: String, at time: Date) {
    state.withLock { state in state.fleet.update(name) { $0.lastHeartbeat = max($0.lastHeartbeat, time) } }
  }

  /// See `Fleet.leaveOutSilent`.
  func leaveOutSilent(before cutoff: Date) { state.withLock { $0.fleet.leaveOutSilent(before: cutoff) } }
}

extension FleetIndex.State {
  mutating func removePending(_ claim: GPUClaim) {
    guard var claims = pending[claim.gpuUUID], let index = claims.firstIndex(of: claim) else { return }
    claims.remove(at: index)
    pending[claim.gpuUUID] = claims.isEmpty ? nil : claims
  }

  /// `gpu` with the committed allocation `row` gives and the pending claims on top.
  static func withCommitted(_ gpu: GPU, _ row: FleetIndex.GPUState, pending: [GPUClaim]?) -> GPU {
    var gpu = gpu
    gpu.usage = row.usage
    for claim in pending ?? [] { gpu.apply(claim) }
    return gpu
  }

  /// Sets the committed allocation of each GPU in `rows` (pending claims stay on top). A node
  /// whose GPUs come out as they were is left alone: most rows a load brings back are this
  /// replica's own writes, which the index has already.
  mutating func setCommitted(_ rows: [FleetIndex.GPUState]) {
    for (name, group) in Dictionary(grouping: rows, by: \.node) {
      guard var node = fleet.nodes[name] else { continue }
      for row in group {
        guard let index = node.gpus.firstIndex(where: { $0.uuid == row.uuid }) else { continue }
        node.gpus[index] = Self.withCommitted(node.gpus[index], row, pending: pending[row.uuid])
      }
      if node != fleet.nodes[name] { fleet.upsert(node) }
    }
  }

  mutating func wrote(_ rows: [FleetIndex.GPUState], xid: UInt64) {
    setCommitted(rows)
    for row in rows { localWrites["gpu:\(row.uuid)"] = xid }
  }
}
