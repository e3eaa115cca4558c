/// The closed loop every Swift-side cell runs: `concurrency` callers, each calling back to back
/// until the phase ends. One loop for every benchmark, so that their rows differ only in the call
/// they make, never in how it is timed or counted.

/// What the callers of one phase saw.
public struct Tally: Sendable {
  /// Of answered calls, in nanoseconds.
  public var latencies: [Int64] = []
  /// Admissions per quota window (keyed by the window's reset time from each answer), for calls
  /// that spend quota and say in which window: the quota checks compare GetQuota's `used` with
  /// the calls admitted in the same window even when a run crosses UTC midnight.
  public var admittedByWindow: [Int64: Int] = [:]
  /// RESOURCE_EXHAUSTED answers.
  public var refused = 0
  /// Calls that failed otherwise: their outcome is unknown.
  public var errors = 0
  public var firstError: String?

  public init() {}

  public var admitted: Int { self.admittedByWindow.values.reduce(0, +) }

  public mutating func merge(_ other: Tally) {
    self.latencies.append(contentsOf: other.latencies)
    self.admittedByWindow.merge(other.admittedByWindow, uniquingKeysWith: +)
    self.refused += other.refused
    self.errors += other.errors
    if self.firstError == nil { self.firstError = other.firstError }
  }

  /// Admissions only: latencies are per phase, and the accounting needs every phase's admissions.
  public var admissions: Tally {
    var copy = Tally()
    copy.admittedByWindow = self.admittedByWindow
    copy.errors = self.errors
    return copy
  }
}

/// How one call ended.
public enum CallOutcome: Sendable {
  /// Answered. `window`: the reset time (seconds since the epoch) of the quota window an
  /// admission was counted in; nil for a call that admits nothing.
  case answered(window: Int64?)
  /// RESOURCE_EXHAUSTED.
  case refused
  /// Anything else: its outcome is unknown.
  case failed(any Error)
}

/// One call of a caller. `phase`, `worker` and `n` make an idempotency key unique within the run;
/// `random` is the caller's own generator (the system one is a syscall per number), seeded afresh
/// each phase so that a measured phase does not replay its warm-up's draws.
public typealias Call = @Sendable (_ phase: String, _ worker: Int, _ n: Int, _ random: inout SplitMix64) async -> CallOutcome

/// A call that admits nothing: answered unless `body` throws (a wrong answer included).
public func plainCall(_ body: @escaping @Sendable () async throws -> Void) -> Call {
  { _, _, _, _ in
    do {
      try await body()
      return .answered(window: nil)
    } catch {
      return .failed(error)
    }
  }
}

/// `concurrency` callers, each calling back to back until `end`. With `untilRefused`, each caller
/// also stops at its first refusal. Latencies are those of answered calls, timed from before the
/// request is built to the answer.
public func driveCallers(
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

/// A cell of callers: its warm-up's tally, its measured phase's, and the measurement.
public struct CallerCell: Sendable {
  public var warmUp: Tally
  public var run: Tally
  /// The measured phase's, over the time it really took.
  public var measurement: BenchMeasurement

  /// Every admission both phases made: a warm-up's count for the quota accounting too.
  public var admissions: Tally {
    var admissions = self.warmUp.admissions
    admissions.merge(self.run.admissions)
    return admissions
  }
}

/// A warm-up (not measured), then the measured phase, of `concurrency` callers making `call`.
/// Failed calls are noted.
/// - Parameters:
///   - cell: names the cell in notes and in the phases' names (`<cell>-<concurrency>-w`, `-m`).
///   - aroundMeasured: runs the measured phase it is given (once), for whatever must be read just
///     before and just after it (the CPU each process used).
public func measureCallers(
  cell: String, concurrency: Int, seconds: Int, warmUpSeconds: Int,
  aroundMeasured: (_ phase: () async -> Tally) async -> Tally = { await $0() },
  call: @escaping Call
) async -> CallerCell {
  let clock = ContinuousClock()
  var warmUp = Tally()
  if warmUpSeconds > 0 {
    warmUp = await driveCallers(
      phase: "\(cell)-\(concurrency)-w", concurrency: concurrency, until: clock.now + .seconds(warmUpSeconds), call: call)
  }
  var elapsed = Duration.zero
  let run = await aroundMeasured {
    let start = clock.now
    let run = await driveCallers(
      phase: "\(cell)-\(concurrency)-m", concurrency: concurrency, until: start + .seconds(seconds), call: call)
    elapsed = start.duration(to: clock.now)
    return run
  }
  if let error = run.firstError {
    note("\(run.errors) calls failed (\(cell), \(concurrency) callers); the first: \(error)")
  }
  let measurement = BenchMeasurement(latenciesNanoseconds: run.latencies, seconds: elapsed.seconds, errors: run.errors)
  return CallerCell(warmUp: warmUp, run: run, measurement: measurement)
}

/// SplitMix64: fast, and good enough to spread keys and tenants uniformly.
public struct SplitMix64: RandomNumberGenerator, Sendable {
  private var state: UInt64
  public init(seed: UInt64) { self.state = seed }

  public mutating func next() -> UInt64 {
    self.state &+= 0x9E37_79B9_7F4A_7C15
    var z = self.state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
