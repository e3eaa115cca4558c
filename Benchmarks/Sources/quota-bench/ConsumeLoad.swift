import BenchSupport
import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts

typealias QuotaClient = Maas_Quota_V1_Quota.Client<ShimClientTransport>

/// A tenant's API-call quota as GetQuota states it.
struct APICallQuota {
  var used: Int64
  var limit: Int64
  var unlimited: Bool
  /// The current window's end, in seconds since the epoch: the key of `Tally.admittedByWindow`.
  var windowReset: Int64
}

/// Drives Consume (one API call of a tenant, amount 1) through gRPC: `concurrency` tasks over one
/// shim channel, each calling back to back with an idempotency key of its own.
struct ConsumeLoad {
  let quota: QuotaClient
  /// Makes this run's idempotency keys unique even against a schema that was not reset.
  let runID: String

  /// Registers `tenants` (SetLimits) with an API-call limit of `limit` a day, 16 at a time.
  func register(_ tenants: [String], apiCallsPerDay limit: Int64) async throws {
    let quota = self.quota
    let runID = self.runID
    try await withThrowingTaskGroup(of: Void.self) { group in
      var next = 0
      func add() {
        guard next < tenants.count else { return }
        let tenant = tenants[next]
        next += 1
        group.addTask {
          let request = Maas_Quota_V1_SetLimitsRequest.with {
            $0.tenantID = tenant
            $0.limits = [.with { $0.resource = .apiCallsPerDay; $0.value = limit }]
            $0.idempotencyKey = "limits-\(limit)-\(runID)"
          }
          _ = try await quota.setLimits(request)
        }
      }
      for _ in 0..<16 { add() }
      while try await group.next() != nil { add() }
    }
  }

  func apiCallQuota(of tenant: String) async throws -> APICallQuota {
    let answer = try await self.quota.getQuota(.with { $0.tenantID = tenant })
    guard let entry = answer.resources.first(where: { $0.resource == .apiCallsPerDay }) else {
      throw BenchError("GetQuota for \(tenant) has no api_calls_per_day entry")
    }
    return APICallQuota(
      used: entry.used, limit: entry.limit.value, unlimited: entry.limit.unlimited,
      windowReset: entry.windowResetTime.seconds)
  }

  /// Sum of `used` over `tenants`, 16 GetQuota calls at a time, and the window it is for (nil
  /// when the tenants' answers straddle a window change).
  func totalUsed(_ tenants: [String]) async throws -> (used: Int64, windowReset: Int64?) {
    let load = self
    return try await withThrowingTaskGroup(of: APICallQuota.self) { group in
      var next = 0
      func add() {
        guard next < tenants.count else { return }
        let tenant = tenants[next]
        next += 1
        group.addTask { try await load.apiCallQuota(of: tenant) }
      }
      for _ in 0..<16 { add() }
      var used: Int64 = 0
      var windows = Set<Int64>()
      while let quota = try await group.next() {
        used += quota.used
        windows.insert(quota.windowReset)
        add()
      }
      return (used, windows.count == 1 ? windows.first : nil)
    }
  }

  /// A warm-up (its admissions count for the accounting, its latencies are dropped), then the
  /// measured phase.
  /// - Returns: the cell and every admission both phases made.
  func measure(
    cell: String, tenants: [String], concurrency: Int, seconds: Int, warmUpSeconds: Int
  ) async -> (ConsumeCell, Tally) {
    let measured = await measureCallers(
      cell: cell, concurrency: concurrency, seconds: seconds, warmUpSeconds: warmUpSeconds, call: self.call(tenants))
    return (measured.consumeCell, measured.admissions)
  }

  /// `concurrency` callers until `end`, each on a tenant drawn at random from `tenants`. With
  /// `untilRefused`, each caller also stops at its first RESOURCE_EXHAUSTED.
  func drive(
    phase: String, tenants: [String], concurrency: Int, until end: ContinuousClock.Instant, untilRefused: Bool = false
  ) async -> Tally {
    await driveCallers(
      phase: phase, concurrency: concurrency, until: end, untilRefused: untilRefused, call: self.call(tenants))
  }

  /// One Consume (amount 1) of a tenant drawn at random from `tenants`, with a key of its own.
  private func call(_ tenants: [String]) -> Call {
    let quota = self.quota
    let runID = self.runID
    return { phase, worker, n, random in
      let tenant = tenants.count == 1 ? tenants[0] : tenants[Int.random(in: 0..<tenants.count, using: &random)]
      let request = Maas_Quota_V1_ConsumeRequest.with {
        $0.tenantID = tenant
        $0.resource = .apiCallsPerDay
        $0.amount = 1
        $0.idempotencyKey = "\(phase)-w\(worker)-\(n)-\(runID)"
      }
      do {
        let answer = try await quota.consume(request)
        return .answered(window: answer.windowResetTime.seconds)
      } catch let error as RPCError where error.code == .resourceExhausted {
        return .refused
      } catch {
        return .failed(error)
      }
    }
  }
}
