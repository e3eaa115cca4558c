import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts

typealias QuotaClient = Maas_Quota_V1_Quota.Client<ShimClientTransport>

/// What the callers of one phase saw. Admissions are counted per window (keyed by the window's
/// reset time from each answer), so that the accounting checks compare GetQuota's `used` with the
/// calls admitted in the same window even when a run crosses UTC midnight.
struct Tally: Sendable {
  var latencies: [Int64] = []
  var admittedByWindow: [Int64: Int] = [:]
  var refused = 0
  var errors = 0
  var firstError: String?

  var admitted: Int { self.admittedByWindow.values.reduce(0, +) }

  mutating func merge(_ other: Tally) {
    self.latencies.append(contentsOf: other.latencies)
    self.admittedByWindow.merge(other.admittedByWindow, uniquingKeysWith: +)
    self.refused += other.refused
    self.errors += other.errors
    if self.firstError == nil { self.firstError = other.firstError }
  }

  /// Admissions only: latencies are per phase, and the accounting needs every phase's admissions.
  var admissions: Tally {
    var copy = Tally()
    copy.admittedByWindow = self.admittedByWindow
    copy.errors = self.errors
    return copy
  }
}

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
    let clock = ContinuousClock()
    var admissions = Tally()
    if warmUpSeconds > 0 {
      let warmUp = await self.drive(
        phase: "\(cell)-\(concurrency)-w", tenants: tenants, concurrency: concurrency,
        until: clock.now + .seconds(warmUpSeconds))
      admissions.merge(warmUp.admissions)
    }
    let start = clock.now
    let run = await self.drive(
      phase: "\(cell)-\(concurrency)-m", tenants: tenants, concurrency: concurrency, until: start + .seconds(seconds))
    let elapsed = start.duration(to: clock.now)
    admissions.merge(run.admissions)
    if let error = run.firstError {
      note("\(run.errors) Consume calls failed (\(cell), \(concurrency) callers); the first: \(error)")
    }
    let measurement = Measurement(latenciesNanoseconds: run.latencies, seconds: elapsed.seconds, errors: run.errors)
    return (ConsumeCell(measurement: measurement, refused: run.refused), admissions)
  }

  /// `concurrency` callers until `end`, each on a tenant drawn at random from `tenants`. With
  /// `untilRefused`, each caller also stops at its first RESOURCE_EXHAUSTED.
  func drive(
    phase: String, tenants: [String], concurrency: Int, until end: ContinuousClock.Instant, untilRefused: Bool = false
  ) async -> Tally {
    let quota = self.quota
    let runID = self.runID
    return await withTaskGroup(of: Tally.self) { group in
      for worker in 0..<concurrency {
        group.addTask {
          var random = SplitMix64(seed: UInt64.random(in: .min ... .max))
          var tally = Tally()
          tally.latencies.reserveCapacity(65_536)
          let clock = ContinuousClock()
          var n = 0
          while true {
            let before = clock.now
            if before >= end { break }
            let tenant = tenants.count == 1 ? tenants[0] : tenants[Int.random(in: 0..<tenants.count, using: &random)]
            let request = Maas_Quota_V1_ConsumeRequest.with {
              $0.tenantID = tenant
              $0.resource = .apiCallsPerDay
              $0.amount = 1
              $0.idempotencyKey = "\(phase)-w\(worker)-\(n)-\(runID)"
            }
            n += 1
            do {
              let answer = try await quota.consume(request)
              tally.latencies.append(before.duration(to: clock.now).nanoseconds)
              tally.admittedByWindow[answer.windowResetTime.seconds, default: 0] += 1
            } catch let error as RPCError where error.code == .resourceExhausted {
              tally.refused += 1
              if untilRefused { break }
            } catch {
              tally.errors += 1
              if tally.firstError == nil { tally.firstError = "\(error)" }
            }
          }
          return tally
        }
      }
      var total = Tally()
      for await tally in group { total.merge(tally) }
      return total
    }
  }
}

/// SplitMix64: fast, and good enough to spread calls over tenants uniformly.
struct SplitMix64: RandomNumberGenerator {
  private var state: UInt64
  init(seed: UInt64) { self.state = seed }

  mutating func next() -> UInt64 {
    self.state &+= 0x9E37_79B9_7F4A_7C15
    var z = self.state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
