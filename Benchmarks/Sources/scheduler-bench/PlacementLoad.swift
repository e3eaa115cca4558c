import BenchSupport
import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import Synchronization

typealias SchedulerClient = Maas_Scheduler_V1_Scheduler.Client<ShimClientTransport>
typealias QuotaClient = Maas_Quota_V1_Quota.Client<ShimClientTransport>

/// The requests a cell makes.
enum RequestMix: String, Sendable {
  /// Every call: 1 replica x 1 H100-80GB, EXCLUSIVE, LEAST_LOADED (the default policy).
  case single
  /// Drawn per call: 1 x 1 LEAST_LOADED (half), 1 x 2 BINPACK, 2 replicas x 1 SPREAD, 1 x 4
  /// LEAST_LOADED (the rest in equal parts); all EXCLUSIVE H100-80GB.
  case mixed

  var label: String {
    switch self {
    case .single: "1 x 1 GPU EXCLUSIVE, LEAST_LOADED"
    case .mixed: "mixed: 1x1 LEAST_LOADED, 1x2 BINPACK, 2x1 SPREAD, 1x4 LEAST_LOADED"
    }
  }

  /// (replicas, GPUs per replica, policy) for one call.
  func draw(_ random: inout SplitMix64) -> (Int32, Int32, Maas_Scheduler_V1_PlacementPolicy) {
    switch self {
    case .single:
      return (1, 1, .leastLoaded)
    case .mixed:
      switch random.next() % 6 {
      case 0, 1, 2: return (1, 1, .leastLoaded)
      case 3: return (1, 2, .binpack)
      case 4: return (2, 1, .spread)
      default: return (1, 4, .leastLoaded)
      }
    }
  }
}

/// The latencies of the two halves of each placement, in nanoseconds, for the measured phases
/// only (the shared caller loop times the pair; this keeps Schedule's and Release's apart).
final class StepLatencies: Sendable {
  private let byPhase = Mutex<[String: (schedule: [Int64], release: [Int64])]>([:])

  func record(phase: String, schedule: Int64, release: Int64) {
    guard phase.hasSuffix("-m") else { return }
    self.byPhase.withLock { all in
      all[phase, default: ([], [])].schedule.append(schedule)
      all[phase, default: ([], [])].release.append(release)
    }
  }

  func take(phase: String) -> (schedule: [Int64], release: [Int64]) {
    self.byPhase.withLock { $0.removeValue(forKey: phase) ?? ([], []) }
  }
}

/// Schedule for `replicas` x `count` H100-80GB, EXCLUSIVE, under `policy`.
func scheduleRequest(
  tenant: String, workload: String, _ replicas: Int32, _ count: Int32, _ policy: Maas_Scheduler_V1_PlacementPolicy
) -> Maas_Scheduler_V1_ScheduleRequest {
  .with {
    $0.tenantID = tenant
    $0.workloadID = workload
    $0.replicas = replicas
    $0.gpu = .with {
      $0.count = count
      $0.gpuType = gpuModel
      $0.sharing = .exclusive
    }
    $0.policy = policy
  }
}

/// One placement: Schedule (a fresh workload of a tenant drawn at random), a check of the answer's
/// shape, then Release of the allocation by its id. Answered only when both succeeded;
/// RESOURCE_EXHAUSTED from Schedule is a refusal; anything else, a wrong answer included, a
/// failure. (That no GPU is ever given twice is checked apart, by `holdCheck`: here each
/// allocation lives for one round trip only.)
func placementCall(
  scheduler: SchedulerClient, tenants: [String], mix: RequestMix, runID: String, steps: StepLatencies,
  timeout: CallTimeout
) -> Call {
  { phase, worker, n, random in
    let tenant = tenants[Int(random.next() % UInt64(tenants.count))]
    let (replicas, count, policy) = mix.draw(&random)
    let request = scheduleRequest(tenant: tenant, workload: "\(runID)-\(phase)-\(worker)-\(n)", replicas, count, policy)
    let clock = ContinuousClock()
    let start = clock.now
    let allocation: Maas_Scheduler_V1_Allocation
    do {
      allocation = try await scheduler.schedule(request, metadata: timeout.metadata)
    } catch let error as RPCError where error.code == .resourceExhausted {
      return .refused
    } catch {
      return .failed(error)
    }
    let scheduled = clock.now
    let uuids = allocation.placements.flatMap(\.gpuUuids)
    guard allocation.state == .active, allocation.placements.count == Int(replicas),
      allocation.placements.allSatisfy({ $0.gpuUuids.count == Int(count) }), Set(uuids).count == uuids.count,
      policy != .spread || Set(allocation.placements.map(\.node)).count == Int(replicas)
    else {
      return .failed(BenchError("a wrong allocation for \(replicas) x \(count) \(policy): \(allocation)"))
    }
    do {
      let released = try await scheduler.release(
        .with {
          $0.tenantID = tenant
          $0.allocationID = allocation.id
          $0.idempotencyKey = "release-\(allocation.id)"
        }, metadata: timeout.metadata)
      guard released.state == .released else { return .failed(BenchError("Release answered \(released.state)")) }
    } catch {
      return .failed(error)
    }
    steps.record(phase: phase, schedule: start.duration(to: scheduled).nanoseconds, release: scheduled.duration(to: clock.now).nanoseconds)
    return .answered(window: nil)
  }
}
