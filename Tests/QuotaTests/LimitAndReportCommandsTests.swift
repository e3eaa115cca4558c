import Foundation
import Quota
import Testing

@Suite("SetLimits and GetUsageReport validation")
struct LimitAndReportCommandsTests {
  @Test("limits become limited or unlimited, and resets are kept apart")
  func validLimits() throws {
    let command = try SetLimitsCommand.validate(
      tenantID: "acme",
      limits: [
        .init(resource: .models, value: 5, unlimited: false),
        .init(resource: .storageBytes, value: -1, unlimited: true),  // value is ignored when unlimited
      ],
      resetToDefault: [.apiCallsPerDay], idempotencyKey: "k"
    ).get()
    #expect(command.limits == [.models: .limited(5), .storageBytes: .unlimited])
    #expect(command.resetToDefault == [.apiCallsPerDay])
  }

  @Test("every problem is named: unknown resource, negative value, repeated resource, a resource both set and reset")
  func invalidLimits() {
    let error = SetLimitsCommand.validate(
      tenantID: "",
      limits: [
        .init(resource: nil, value: 1, unlimited: false),
        .init(resource: .models, value: -1, unlimited: false),
        .init(resource: .gpuSeconds, value: 1, unlimited: false),
        .init(resource: .gpuSeconds, value: 2, unlimited: false),
      ],
      resetToDefault: [.gpuSeconds, nil], idempotencyKey: ""
    ).failure
    guard case .invalidRequest(let violations) = error else {
      Issue.record("expected invalidRequest, got \(String(describing: error))")
      return
    }
    #expect(violations.map(\.field) == [
      "tenant_id", "limits[0].resource", "limits[1].value", "limits", "reset_to_default", "reset_to_default[1]",
      "idempotency_key",
    ])
  }

  @Test("a report period must end after it starts, and both ends are required")
  func reportPeriod() {
    let start = utc(2026, 11, 1)
    #expect(UsageReportQuery.validate(tenantID: "acme", periodStart: start, periodEnd: start).failure?.category
      == .invalidArgument(field: "period_end"))
    #expect(UsageReportQuery.validate(tenantID: "acme", periodStart: nil, periodEnd: start).failure?.category
      == .invalidArgument(field: "period_start"))
    let november = UsageReportQuery.validate(tenantID: "acme", periodStart: start, periodEnd: utc(2026, 12, 1)).success
    #expect(november?.period == DateInterval(start: start, end: utc(2026, 12, 1)))
  }

  @Test("ledger labels are short names with printable values")
  func labels() {
    let now = utc(2026, 11, 22)
    func validate(_ labels: [String: String]) -> Result<RecordUsageCommand, QuotaError> {
      RecordUsageCommand.validate(
        tenantID: "acme", resource: .gpuSeconds, quantity: 1, usageTime: now, idempotencyKey: "k", labels: labels, now: now)
    }
    #expect(validate(["allocation_id": "a-1", "node": "gpu node 7"]).success != nil)
    #expect(validate(["bad key": "x"]).failure?.category == .invalidArgument(field: "labels"))
    #expect(validate(["node": "line\nbreak"]).failure?.category == .invalidArgument(field: "labels[node]"))
    #expect(validate(["node": String(repeating: "x", count: 257)]).failure?.category == .invalidArgument(field: "labels[node]"))
  }
}

@Suite("The time integral stock resources bill")
struct StockHistoryTests {
  let day = DateInterval(start: utc(2026, 11, 22), end: utc(2026, 11, 23))

  @Test("holding an amount for part of a period bills that part, in base-unit-hours")
  func partOfThePeriod() {
    let held = StockHistory.integral(
      opening: 0,
      changes: [.init(at: utc(2026, 11, 22, 6), delta: 2), .init(at: utc(2026, 11, 22, 9), delta: -2)],
      period: day)
    #expect(held?.baseUnitHours == 6)
    #expect(held?.closing == 0)
  }

  @Test("what was held before the period counts from its start, and what is still held at its end")
  func openingBalance() {
    let held = StockHistory.integral(opening: 3, changes: [.init(at: utc(2026, 11, 22, 12), delta: 1)], period: day)
    #expect(held?.baseUnitHours == 84)  // 3 for 12 hours, then 4 for 12 hours
    #expect(held?.closing == 4)
  }

  @Test("fractions of an hour round half-even")
  func rounding() {
    // 1 unit for 30 minutes = 0.5 unit-hours -> 0; for 90 minutes = 1.5 -> 2.
    let half = StockHistory.integral(opening: 1, changes: [.init(at: utc(2026, 11, 22, 0, 30), delta: -1)], period: day)
    let oneAndHalf = StockHistory.integral(opening: 1, changes: [.init(at: utc(2026, 11, 22, 1, 30), delta: -1)], period: day)
    #expect(half?.baseUnitHours == 0)
    #expect(oneAndHalf?.baseUnitHours == 2)
  }

  @Test("an integral that does not fit in Int64 is refused rather than wrapped")
  func overflow() {
    let year = DateInterval(start: utc(2026, 1, 1), end: utc(2027, 1, 1))
    #expect(StockHistory.integral(opening: .max / 2, changes: [], period: year) == nil)
  }
}
