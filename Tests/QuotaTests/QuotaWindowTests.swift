import Foundation
import Quota
import Testing

@Suite("Quota windows")
struct QuotaWindowTests {
  struct Case: Sendable, CustomTestStringConvertible {
    var name: String
    var window: QuotaWindow
    var instant: Date
    var start: Date
    var end: Date
    var testDescription: String { name }
  }

  static let cases: [Case] = [
    Case(name: "the last millisecond of a day belongs to that day", window: .utcDay,
      instant: utc(2026, 11, 23).addingTimeInterval(-0.001), start: utc(2026, 11, 22), end: utc(2026, 11, 23)),
    Case(name: "midnight starts the next day", window: .utcDay,
      instant: utc(2026, 11, 23), start: utc(2026, 11, 23), end: utc(2026, 11, 24)),
    Case(name: "the last day of a month resets on the first of the next", window: .utcDay,
      instant: utc(2026, 4, 30, 12), start: utc(2026, 4, 30), end: utc(2026, 5, 1)),
    Case(name: "leap day is a day of its own", window: .utcDay,
      instant: utc(2028, 2, 29, 23, 59, 59), start: utc(2028, 2, 29), end: utc(2028, 3, 1)),
    Case(name: "New Year's Eve resets at the new year", window: .utcDay,
      instant: utc(2026, 12, 31, 23, 59, 59), start: utc(2026, 12, 31), end: utc(2027, 1, 1)),
    Case(name: "a month runs from its first to the next month's first", window: .utcMonth,
      instant: utc(2026, 11, 22, 15), start: utc(2026, 11, 1), end: utc(2026, 12, 1)),
    Case(name: "December's month ends in January of the next year", window: .utcMonth,
      instant: utc(2026, 12, 31, 23, 59, 59), start: utc(2026, 12, 1), end: utc(2027, 1, 1)),
    Case(name: "a leap-year February has 29 days", window: .utcMonth,
      instant: utc(2028, 2, 29, 12), start: utc(2028, 2, 1), end: utc(2028, 3, 1)),
    Case(name: "a common-year February has 28 days", window: .utcMonth,
      instant: utc(2027, 2, 28, 23, 59, 59), start: utc(2027, 2, 1), end: utc(2027, 3, 1)),
    Case(name: "the first instant of a month starts that month", window: .utcMonth,
      instant: utc(2027, 3, 1), start: utc(2027, 3, 1), end: utc(2027, 4, 1)),
    Case(name: "the last millisecond of a month belongs to it", window: .utcMonth,
      instant: utc(2027, 3, 1).addingTimeInterval(-0.001), start: utc(2027, 2, 1), end: utc(2027, 3, 1)),
  ]

  @Test("Window boundaries", arguments: cases)
  func boundaries(_ c: Case) {
    #expect(c.window.period(containing: c.instant) == DateInterval(start: c.start, end: c.end))
    #expect(c.window.resetTime(after: c.instant) == c.end)
  }

  @Test("Stock resources have no window and never reset")
  func noWindow() {
    #expect(QuotaWindow.none.period(containing: utc(2026, 1, 1)) == nil)
    #expect(QuotaWindow.none.resetTime(after: utc(2026, 1, 1)) == nil)
  }

  @Test("Windows ignore the machine's time zone")
  func ignoresHostZone() {
    // An instant that is already the next day east of UTC and still the previous day west of it.
    let instant = utc(2026, 11, 22, 23, 30)
    #expect(QuotaWindow.utcDay.period(containing: instant)?.start == utc(2026, 11, 22))
    #expect(UTC.calendar.timeZone.secondsFromGMT() == 0)
  }

  @Test("Timestamps are RFC 3339 in UTC to the second")
  func timestamps() {
    #expect(UTC.timestamp(utc(2026, 11, 23)) == "2026-11-23T00:00:00Z")
    #expect(UTC.timestamp(utc(2028, 2, 29, 7, 5, 9)) == "2028-02-29T07:05:09Z")
  }

  @Test("Each resource has its kind, window and unit", arguments: [
    (QuotaResource.models, QuotaResource.Kind.stock, QuotaWindow.none, "models"),
    (.storageBytes, .stock, .none, "bytes"),
    (.gpuSeconds, .flow, .utcMonth, "GPU-seconds"),
    (.apiCallsPerDay, .flow, .utcDay, "calls"),
    (.concurrentGPUs, .stock, .none, "GPUs"),
  ])
  func resourceFacts(_ resource: QuotaResource, _ kind: QuotaResource.Kind, _ window: QuotaWindow, _ unit: String) {
    #expect(resource.kind == kind)
    #expect(resource.window == window)
    #expect(resource.unit == unit)
  }

  @Test("Resources keep the proto's enum numbers")
  func protoNumbers() {
    #expect(QuotaResource.allCases.map(\.rawValue) == [1, 2, 3, 4, 5])
    #expect(QuotaResource(rawValue: 0) == nil)
  }

  @Test("The seed's defaults are the documented limits")
  func defaults() {
    let d = QuotaDefaults.seed
    #expect(d.limit(for: .models) == .limited(100))
    #expect(d.limit(for: .storageBytes) == .limited(50_000_000_000))
    #expect(d.limit(for: .gpuSeconds) == .limited(360_000))
    #expect(d.limit(for: .apiCallsPerDay) == .limited(10_000))
    #expect(d.limit(for: .concurrentGPUs) == .limited(16))
  }
}
