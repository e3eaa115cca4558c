/// The closed loop every gRPC cell runs (ListModels through the gateway, ListModels straight to
/// the registry): one loop, so that the rows differ only in the call they make, never in how it
/// is timed or counted.

/// What the callers of one phase saw.
struct Tally: Sendable {
  var latencies: [Int64] = []
  var errors = 0
  var firstError: String?

  mutating func merge(_ other: Tally) {
    self.latencies.append(contentsOf: other.latencies)
    self.errors += other.errors
    if self.firstError == nil { self.firstError = other.firstError }
  }
}

/// One call; throws when it failed (a wrong answer included).
typealias Call = @Sendable () async throws -> Void

/// `concurrency` callers, each calling back to back until `end`. Latencies are those of
/// successful calls, timed from before the request is built to the answer.
func driveCallers(concurrency: Int, until end: ContinuousClock.Instant, call: @escaping Call) async -> Tally {
  await withTaskGroup(of: Tally.self) { group in
    for _ in 0..<concurrency {
      group.addTask {
        var tally = Tally()
        tally.latencies.reserveCapacity(65_536)
        let clock = ContinuousClock()
        while true {
          let before = clock.now
          if before >= end { break }
          do {
            try await call()
            tally.latencies.append(before.duration(to: clock.now).nanoseconds)
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

/// A warm-up (not measured), then the measured phase, of `concurrency` callers making `call`,
/// with the CPU of every process accounted over the measured phase.
func measureCallers(
  _ label: String, concurrency: Int, seconds: Int, warmUpSeconds: Int, cpu: CPUAccounting, call: @escaping Call
) async -> Cell {
  let clock = ContinuousClock()
  if warmUpSeconds > 0 {
    _ = await driveCallers(concurrency: concurrency, until: clock.now + .seconds(warmUpSeconds), call: call)
  }
  let before = cpu.snapshot()
  let start = clock.now
  let run = await driveCallers(concurrency: concurrency, until: start + .seconds(seconds), call: call)
  let elapsed = start.duration(to: clock.now)
  let usage = CPUAccounting.usage(from: before, to: cpu.snapshot())
  if let error = run.firstError {
    note("\(run.errors) calls failed (\(label), \(concurrency) callers); the first: \(error)")
  }
  let measurement = Measurement(latenciesNanoseconds: run.latencies, seconds: elapsed.seconds, errors: run.errors)
  return Cell(measurement: measurement, cpu: usage, firstError: run.firstError)
}
