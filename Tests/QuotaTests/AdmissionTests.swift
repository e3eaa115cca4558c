import Foundation
import Quota
import Testing

@Suite("Admission")
struct AdmissionTests {
  struct Case: Sendable, CustomTestStringConvertible {
    var name: String
    var used: Int64
    var reserved: Int64
    var amount: Int64
    var limit: QuotaLimit
    var expected: Result<Admission, QuotaError>
    var testDescription: String { name }
  }

  static let reset = utc(2026, 11, 23)

  static let cases: [Case] = [
    Case(name: "a request under the limit is admitted", used: 10, reserved: 5, amount: 1,
      limit: .limited(100), expected: .success(Admission(total: 16, remaining: 84))),
    Case(name: "a request reaching the limit exactly is admitted", used: 9_999, reserved: 0, amount: 1,
      limit: .limited(10_000), expected: .success(Admission(total: 10_000, remaining: 0))),
    Case(name: "a request one over the limit is refused with the usage and reset", used: 10_000,
      reserved: 0, amount: 1, limit: .limited(10_000),
      expected: .failure(.exhausted(resource: .apiCallsPerDay, limit: 10_000, used: 10_000, requested: 1, resetsAt: reset))),
    Case(name: "reserved amounts count against the limit", used: 90, reserved: 10, amount: 1,
      limit: .limited(100),
      expected: .failure(.exhausted(resource: .apiCallsPerDay, limit: 100, used: 100, requested: 1, resetsAt: reset))),
    Case(name: "a zero limit forbids any use", used: 0, reserved: 0, amount: 1, limit: .limited(0),
      expected: .failure(.exhausted(resource: .apiCallsPerDay, limit: 0, used: 0, requested: 1, resetsAt: reset))),
    Case(name: "usage above a lowered limit refuses new requests", used: 150, reserved: 0, amount: 1,
      limit: .limited(100),
      expected: .failure(.exhausted(resource: .apiCallsPerDay, limit: 100, used: 150, requested: 1, resetsAt: reset))),
    Case(name: "an unlimited resource admits anything that fits in a counter", used: 1 << 60, reserved: 0,
      amount: 1 << 60, limit: .unlimited, expected: .success(Admission(total: 1 << 61, remaining: nil))),
    Case(name: "a zero amount is refused", used: 0, reserved: 0, amount: 0, limit: .unlimited,
      expected: .failure(.nonPositiveAmount(0))),
    Case(name: "a negative amount is refused", used: 0, reserved: 0, amount: -5, limit: .limited(10),
      expected: .failure(.nonPositiveAmount(-5))),
    Case(name: "an amount overflowing the counter is an error even when unlimited", used: .max - 1,
      reserved: 0, amount: 2, limit: .unlimited,
      expected: .failure(.counterOverflow(resource: .apiCallsPerDay, used: .max - 1, reserved: 0, requested: 2))),
    Case(name: "used plus reserved overflowing is an error", used: .max, reserved: 1, amount: 1,
      limit: .limited(.max),
      expected: .failure(.counterOverflow(resource: .apiCallsPerDay, used: .max, reserved: 1, requested: 1))),
    Case(name: "a total of exactly Int64.max is admitted under an Int64.max limit", used: .max - 1,
      reserved: 0, amount: 1, limit: .limited(.max), expected: .success(Admission(total: .max, remaining: 0))),
  ]

  @Test("Admission decisions", arguments: cases)
  func admission(_ c: Case) {
    let result = QuotaAdmission.admit(
      resource: .apiCallsPerDay, used: c.used, reserved: c.reserved, amount: c.amount, limit: c.limit,
      resetsAt: Self.reset)
    #expect(result == c.expected)
  }

  @Test("A flow refusal names the limit, the usage, the amount and the reset")
  func flowMessage() {
    let error = QuotaError.exhausted(
      resource: .apiCallsPerDay, limit: 10_000, used: 10_000, requested: 1, resetsAt: utc(2026, 11, 23))
    #expect(error.description == "api_calls_per_day: limit 10000, used 10000, asked 1, resets 2026-11-23T00:00:00Z")
    #expect(error.category == .resourceExhausted)
  }

  @Test("A stock refusal has no reset")
  func stockMessage() {
    let result = QuotaAdmission.admit(resource: .models, used: 100, reserved: 0, amount: 1, limit: .limited(100))
    #expect(result.failure?.description == "models: limit 100, used 100, asked 1")
  }

  @Test("Headroom is what is left, zero when over, nil when unlimited", arguments: [
    (Int64(40), Int64(10), QuotaLimit.limited(100), Int64?.some(50)),
    (150, 0, .limited(100), 0),
    (.max, 1, .limited(100), 0),
    (5, 5, .unlimited, nil),
  ])
  func headroom(_ used: Int64, _ reserved: Int64, _ limit: QuotaLimit, _ expected: Int64?) {
    #expect(QuotaAdmission.headroom(used: used, reserved: reserved, limit: limit) == expected)
  }
}
