/// The closed loop every call cell runs (Consume through gRPC, Health/Check, Consume through
/// QuotaStore in process): one loop, so that the rows differ only in the call they make, never in
/// how it is timed or counted.

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

/// How one call ended.
enum CallOutcome: Sendable {
  /// Answered. `window`: the reset time (seconds since the epoch) of the window an admission was
  /// counted in; nil for a call that admits nothing (Health/Check).
  case answered(window: Int64?)
  /// RESOURCE_EXHAUSTED.
  case refused
  /// Anything else: its outcome is unknown.
  case failed(any Error)
}

/// One call of a caller. `phase`, `worker` and `n` make an idempotency key unique within the run;
/// `random` is the caller's own generator.
typealias Call = @Sendable (_ phase: String, _ worker: Int, _ n: Int, _ random: inout SplitMix64) async -> CallOutcome

/// `concurrency` callers, each calling back to back until `end`. With `untilRefused`, each caller
/// also stops at its first refusal. Latencies are those of answered calls, timed from before the
/// request is built to the answer.
func driveCallers(
  phase: String, concurrency: Int, until end: ContinuousClock.Instant, untilRefused: Bool = false, call: @escaping Call
) async -> Tally {
  await withTaskGroup(of: Tally.self) { group in
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
          let outcome = await call(phase, worker, n, &random)
          n += 1
          switch outcome {
          case .answered(let window):
            tally.latencies.append(before.duration(to: clock.now).nanoseconds)
            if let window { tally.admittedByWindow[window, default: 0] += 1 }
          case .refused:
            tally.refused += 1
            if untilRefused { return tally }
          case .failed(let error):
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

/// A warm-up (its admissions count for the accounting, its latencies are dropped), then the
/// measured phase, of `concurrency` callers making `call`.
/// - Parameter cell: names the cell in idempotency keys and notes.
/// - Returns: the cell and every admission both phases made.
func measureCallers(
  cell: String, concurrency: Int, seconds: Int, warmUpSeconds: Int, call: @escaping Call
) async -> (ConsumeCell, Tally) {
  let clock = ContinuousClock()
  var admissions = Tally()
  if warmUpSeconds > 0 {
    let warmUp = await driveCallers(
      phase: "\(cell)-\(concurrency)-w", concurrency: concurrency, until: clock.now + .seconds(warmUpSeconds), call: call)
    admissions.merge(warmUp.admissions)
  }
  let start = clock.now
  let run = await driveCallers(
    phase: "\(cell)-\(concurrency)-m", concurrency: concurrency, until: start + .seconds(seconds), call: call)
  let elapsed = start.duration(to: clock.now)
  admissions.merge(run.admissions)
  if let error = run.firstError {
    note("\(run.errors) calls failed (\(cell), \(concurrency) callers); the first: \(error)")
  }
  let measurement = Measurement(latenciesNanoseconds: run.latencies, seconds: elapsed.seconds, errors: run.errors)
  return (ConsumeCell(measurement: measurement, refused: run.refused), admissions)
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
