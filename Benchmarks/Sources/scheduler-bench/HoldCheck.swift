import BenchSupport
import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import Synchronization

/// The double-allocation check. In the measured cells each allocation lives for one round trip,
/// too short for two holders of one GPU to be seen, so this holds on to what it places: 64
/// callers place the mixed requests without releasing until `target` GPUs are held (or each is
/// refused); when the target is the whole fleet, 16 more callers place 1 x 1 until refused, which
/// must leave every GPU of the fleet given exactly once. Then: every GPU uuid in the answers is
/// distinct, the index counts as allocated exactly the GPUs held, and (whole fleet) one more
/// Schedule is refused RESOURCE_EXHAUSTED. Then everything is released, 64 at a time.
struct HoldCheck: Encodable {
  var nodes: Int
  var target: Int
  var allocations: Int
  var gpusHeld: Int
  var distinctGPUs: Int
  var indexAllocatedGPUs: Int
  var wholeFleet: Bool
  /// Whole fleet only: the extra Schedule was refused RESOURCE_EXHAUSTED.
  var refusedWhenFull: Bool?
  var errors: Int
  var firstError: String?
  var seconds: Double

  var ok: Bool {
    self.errors == 0 && self.distinctGPUs == self.gpusHeld && self.indexAllocatedGPUs == self.gpusHeld
      && (self.wholeFleet
        ? self.gpusHeld == self.nodes * gpusPerNode && self.refusedWhenFull == true : self.gpusHeld >= self.target)
  }

  enum CodingKeys: String, CodingKey {
    case nodes, target, allocations, errors, seconds, ok
    case gpusHeld = "gpus_held"
    case distinctGPUs = "distinct_gpus"
    case indexAllocatedGPUs = "index_allocated_gpus"
    case wholeFleet = "whole_fleet"
    case refusedWhenFull = "refused_when_full"
    case firstError = "first_error"
  }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(self.nodes, forKey: .nodes)
    try container.encode(self.target, forKey: .target)
    try container.encode(self.allocations, forKey: .allocations)
    try container.encode(self.gpusHeld, forKey: .gpusHeld)
    try container.encode(self.distinctGPUs, forKey: .distinctGPUs)
    try container.encode(self.indexAllocatedGPUs, forKey: .indexAllocatedGPUs)
    try container.encode(self.wholeFleet, forKey: .wholeFleet)
    try container.encodeIfPresent(self.refusedWhenFull, forKey: .refusedWhenFull)
    try container.encode(self.errors, forKey: .errors)
    try container.encodeIfPresent(self.firstError, forKey: .firstError)
    try container.encode(self.seconds, forKey: .seconds)
    try container.encode(self.ok, forKey: .ok)
  }
}

/// What the hold check's callers placed.
private final class Holdings: Sendable {
  struct State {
    var allocations: [(tenant: String, id: String, uuids: [String])] = []
    var gpus = 0
    var errors = 0
    var firstError: String?
  }
  let state = Mutex(State())

  var gpus: Int { self.state.withLock { $0.gpus } }

  func add(tenant: String, _ allocation: Maas_Scheduler_V1_Allocation) {
    let uuids = allocation.placements.flatMap(\.gpuUuids)
    self.state.withLock { state in
      state.allocations.append((tenant, allocation.id, uuids))
      state.gpus += uuids.count
    }
  }

  func fail(_ error: any Error) {
    self.state.withLock { state in
      state.errors += 1
      if state.firstError == nil { state.firstError = "\(error)" }
    }
  }
}

func holdCheck(
  scheduler: SchedulerClient, cluster: BenchCluster, nodes: Int, target: Int, tenants: [String], runID: String, timeout: CallTimeout
) async throws -> HoldCheck {
  let clock = ContinuousClock()
  let start = clock.now
  let wholeFleet = target >= nodes * gpusPerNode
  let holdings = Holdings()
  /// Callers placing `mix` until `target` GPUs are held or each is refused.
  func fill(_ mix: RequestMix, callers: Int, phase: String) async {
    await withTaskGroup(of: Void.self) { group in
      for worker in 0..<callers {
        group.addTask {
          var random = SplitMix64(seed: UInt64(worker) &* 7919 &+ 17)
          var n = 0
          while holdings.gpus < target {
            let tenant = tenants[Int(random.next() % UInt64(tenants.count))]
            let (replicas, count, policy) = mix.draw(&random)
            let request = scheduleRequest(tenant: tenant, workload: "\(runID)-\(phase)-\(worker)-\(n)", replicas, count, policy)
            n += 1
            do {
              holdings.add(tenant: tenant, try await scheduler.schedule(request, metadata: timeout.metadata))
            } catch let error as RPCError where error.code == .resourceExhausted {
              return
            } catch {
              holdings.fail(error)
              return
            }
          }
        }
      }
    }
  }
  await fill(.mixed, callers: 64, phase: "hold-\(nodes)-mixed")
  var refusedWhenFull: Bool?
  if wholeFleet {
    await fill(.single, callers: 16, phase: "hold-\(nodes)-fill")
    do {
      let extra = try await scheduler.schedule(
        scheduleRequest(tenant: tenants[0], workload: "\(runID)-hold-\(nodes)-extra", 1, 1, .leastLoaded), metadata: timeout.metadata)
      holdings.add(tenant: tenants[0], extra)
      refusedWhenFull = false
    } catch let error as RPCError where error.code == .resourceExhausted {
      refusedWhenFull = true
    }
  }
  let placed = holdings.state.withLock { $0 }
  let uuids = placed.allocations.flatMap(\.uuids)
  let indexAllocated = Int(try await capacity(scheduler).allocatedGpus)
  note("hold check at \(nodes) nodes: \(placed.allocations.count) allocations hold \(uuids.count) GPUs; releasing them")
  try await forEach(placed.allocations, concurrency: 64) { allocation in
    _ = try await scheduler.release(
      .with {
        $0.tenantID = allocation.tenant
        $0.allocationID = allocation.id
        $0.idempotencyKey = "release-\(allocation.id)"
      }, metadata: timeout.metadata)
  }
  return HoldCheck(
    nodes: nodes, target: target, allocations: placed.allocations.count, gpusHeld: uuids.count, distinctGPUs: Set(uuids).count,
    indexAllocatedGPUs: indexAllocated, wholeFleet: wholeFleet, refusedWhenFull: refusedWhenFull, errors: placed.errors,
    firstError: placed.firstError, seconds: start.duration(to: clock.now).seconds)
}
