public import Foundation

/// The period over which a resource's usage is counted, mirroring `maas.quota.v1.QuotaWindow`.
///
/// Every computation takes the instant it is about, so callers pass their injected clock's `now`
/// and tests pass fixed dates; nothing here reads the system clock.
public enum QuotaWindow: Sendable, Hashable {
  /// Stock resources: usage is what is held now; it never resets.
  case none
  /// Resets at 00:00 UTC every day.
  case utcDay
  /// Resets at 00:00 UTC on the first day of every month.
  case utcMonth

  /// The window containing `instant`: start inclusive, end exclusive. `nil` for `.none`.
  public func period(containing instant: Date) -> DateInterval? {
    let calendar = UTC.calendar
    let (fields, step): (Set<Calendar.Component>, Calendar.Component)
    switch self {
    case .none: return nil
    case .utcDay: (fields, step) = ([.era, .year, .month, .day], .day)
    case .utcMonth: (fields, step) = ([.era, .year, .month], .month)
    }
    // Both lookups succeed for every finite date in a Gregorian calendar fixed to UTC, which has
    // no skipped or repeated local times; a failure would be a Foundation bug, not bad input.
    guard let start = calendar.date(from: calendar.dateComponents(fields, from: instant)),
      let end = calendar.date(byAdding: step, value: 1, to: start)
    else { preconditionFailure("UTC calendar could not bound \(instant)") }
    return DateInterval(start: start, end: end)
  }

  /// When the window containing `instant` ends and usage goes back to 0. `nil` for `.none`.
  public func resetTime(after instant: Date) -> Date? {
    period(containing: instant)?.end
  }
}

/// Calendar arithmetic in UTC, whatever the machine's time zone.
public enum UTC {
  /// A Gregorian calendar pinned to UTC. `Calendar.current` would follow the host's zone and
  /// move every window boundary on a machine not set to UTC.
  public static let calendar: Calendar = {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(secondsFromGMT: 0)!
    calendar.locale = Locale(identifier: "en_US_POSIX")
    return calendar
  }()

  /// RFC 3339 in UTC to the second, e.g. "2026-11-23T00:00:00Z": the form quota messages use.
  /// Fractions are dropped; window boundaries are whole seconds.
  public static func timestamp(_ date: Date) -> String {
    let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
    return String(
      format: "%04d-%02d-%02dT%02d:%02d:%02dZ",
      c.year ?? 0, c.month ?? 0, c.day ?? 0, c.hour ?? 0, c.minute ?? 0, c.second ?? 0)
  }
}

/// Where "now" comes from. Services take one so that expiry, window resets and usage-time checks
/// can be tested with a fixed instant instead of sleeping.
public protocol QuotaClock: Sendable {
  /// The current instant. Must not go backwards by more than the host's clock does.
  func now() -> Date
}

/// The host's wall clock, for production.
public struct SystemQuotaClock: QuotaClock {
  public init() {}
  public func now() -> Date { Date() }
}
