import Foundation

/// For tests of the quota service on the host's clock, whose per-day counters (API calls) a
/// change of the UTC day in the middle of a test would split in two: such a test that starts in
/// the last `margin` of a day first waits until the next one has begun. A test shorter than the
/// margin (three minutes by default) then runs within one day, whatever hour CI runs at.
///
/// - Throws: `CancellationError` when the task is cancelled while it waits.
public func awayFromUTCMidnight(margin: Duration = .seconds(180)) async throws {
  if let wait = waitBeforeUTCMidnight(at: Date(), margin: margin) {
    try await Task.sleep(for: wait)
  }
}

/// How long to wait at `now` so that at least `margin` of the UTC day is left (the next day,
/// one second in), or nil when that much is already left. Unix time has 86,400 seconds a day.
func waitBeforeUTCMidnight(at now: Date, margin: Duration) -> Duration? {
  let secondsPerDay = 86_400.0
  let left = secondsPerDay - now.timeIntervalSince1970.truncatingRemainder(dividingBy: secondsPerDay)
  guard left < margin / .seconds(1) else { return nil }
  return .milliseconds(Int64((left + 1) * 1_000))
}
