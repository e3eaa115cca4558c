import Foundation
import Quota
import Testing

@Suite("Request validation")
struct ValidationTests {
  static let now = utc(2026, 11, 22, 12)

  @Test("A valid Reserve becomes a command with the default TTL")
  func validReserve() {
    let result = ReserveCommand.validate(
      tenantID: "acme", resource: .storageBytes, amount: 1_000, idempotencyKey: "k-1", ttl: nil)
    let command = result.success
    #expect(command?.tenantID == "acme")
    #expect(command?.resource == .storageBytes)
    #expect(command?.amount == 1_000)
    #expect(command?.idempotencyKey == "k-1")
    #expect(command?.ttl == .seconds(300))
  }

  @Test("A Reserve with every field wrong reports every problem at once")
  func everyProblem() {
    let result = ReserveCommand.validate(
      tenantID: "", resource: nil, amount: 0, idempotencyKey: "", ttl: .seconds(90_000))
    #expect(
      result.failure == .invalidRequest([
        FieldViolation("tenant_id", .missing),
        FieldViolation("resource", .unspecified),
        FieldViolation("amount", .notPositive),
        FieldViolation("idempotency_key", .missing),
        FieldViolation("ttl", .outOfRange),
      ]))
    #expect(result.failure?.category == .invalidArgument(field: "tenant_id"))
  }

  struct Case: Sendable, CustomTestStringConvertible {
    var name: String
    var tenantID = "acme"
    var resource: QuotaResource? = .apiCallsPerDay
    var amount: Int64 = 1
    var key = "k"
    var expected: [FieldViolation]
    var testDescription: String { name }
  }

  static let consumeCases: [Case] = [
    Case(name: "a tenant id of 128 bytes is accepted", tenantID: String(repeating: "t", count: 128), expected: []),
    Case(name: "a tenant id of 129 bytes is too long", tenantID: String(repeating: "t", count: 129),
      expected: [FieldViolation("tenant_id", .tooLong(maxBytes: 128))]),
    Case(name: "a tenant id with a space is not printable", tenantID: "ac me",
      expected: [FieldViolation("tenant_id", .notPrintable)]),
    Case(name: "a tenant id with a control character is not printable", tenantID: "acme\u{7}",
      expected: [FieldViolation("tenant_id", .notPrintable)]),
    Case(name: "a non-ASCII tenant id is printable", tenantID: "société-ü", expected: []),
    Case(name: "a too long tenant id with a newline reports both", tenantID: String(repeating: "t", count: 200) + "\n",
      expected: [FieldViolation("tenant_id", .tooLong(maxBytes: 128)), FieldViolation("tenant_id", .notPrintable)]),
    Case(name: "a stock resource cannot be consumed", resource: .models,
      expected: [FieldViolation("resource", .wrongKind(expected: .flow))]),
    Case(name: "a negative amount is refused", amount: -1, expected: [FieldViolation("amount", .notPositive)]),
    Case(name: "the largest sane amount is accepted", amount: .max / 4, expected: []),
    Case(name: "an amount past a quarter of Int64 is too large", amount: .max / 4 + 1,
      expected: [FieldViolation("amount", .tooLarge(max: .max / 4))]),
    Case(name: "an idempotency key of 128 bytes is accepted", key: String(repeating: "k", count: 128), expected: []),
    Case(name: "an idempotency key of 129 bytes is too long", key: String(repeating: "k", count: 129),
      expected: [FieldViolation("idempotency_key", .tooLong(maxBytes: 128))]),
    Case(name: "an idempotency key is counted in bytes, not characters", key: String(repeating: "é", count: 65),
      expected: [FieldViolation("idempotency_key", .tooLong(maxBytes: 128))]),
  ]

  @Test("Consume validation", arguments: consumeCases)
  func consume(_ c: Case) {
    let result = ConsumeCommand.validate(
      tenantID: c.tenantID, resource: c.resource, amount: c.amount, idempotencyKey: c.key)
    if c.expected.isEmpty {
      #expect(result.success?.amount == c.amount)
    } else {
      #expect(result.failure == .invalidRequest(c.expected))
    }
  }

  @Test("A flow resource cannot be reserved")
  func reserveFlow() {
    let result = ReserveCommand.validate(
      tenantID: "acme", resource: .gpuSeconds, amount: 1, idempotencyKey: "k", ttl: nil)
    #expect(result.failure == .invalidRequest([FieldViolation("resource", .wrongKind(expected: .stock))]))
  }

  @Test("Usage time", arguments: [
    (Date?.some(now.addingTimeInterval(300)), [FieldViolation]()),
    (now.addingTimeInterval(301), [FieldViolation("usage_time", .inFuture)]),
    (utc(2026, 1, 1), []),
    (nil, [FieldViolation("usage_time", .missing)]),
    (Date(timeIntervalSince1970: -62_135_596_801), [FieldViolation("usage_time", .outsideTimestampRange)]),
    (Date(timeIntervalSince1970: -62_135_596_800), []),
  ])
  func usageTime(_ usageTime: Date?, _ expected: [FieldViolation]) {
    let result = RecordUsageCommand.validate(
      tenantID: "acme", resource: .gpuSeconds, quantity: 3_600, usageTime: usageTime,
      idempotencyKey: "k", now: Self.now)
    if expected.isEmpty {
      #expect(result.success?.usageTime == usageTime)
    } else {
      #expect(result.failure == .invalidRequest(expected))
    }
  }

  @Test("A report period outside the years 1 to 9999 is INVALID_ARGUMENT naming each end")
  func reportPeriodRange() {
    let tooLate = Date(timeIntervalSince1970: 253_402_300_800)
    let tooEarly = Date(timeIntervalSince1970: -1e12)
    #expect(
      UsageReportQuery.validate(tenantID: "acme", periodStart: tooEarly, periodEnd: tooLate).failure
        == .invalidRequest([
          FieldViolation("period_start", .outsideTimestampRange), FieldViolation("period_end", .outsideTimestampRange),
        ]))
    #expect(UsageReportQuery.validate(tenantID: "acme", periodStart: Self.now, periodEnd: tooLate.addingTimeInterval(-1)).success != nil)
  }

  @Test("An idempotency key with a control character is INVALID_ARGUMENT: Postgres text cannot hold a NUL")
  func idempotencyKeyControl() {
    let result = ConsumeCommand.validate(tenantID: "acme", resource: .apiCallsPerDay, amount: 1, idempotencyKey: "k\u{0}")
    #expect(result.failure == .invalidRequest([FieldViolation("idempotency_key", .notPrintable)]))
    #expect(ConsumeCommand.validate(tenantID: "acme", resource: .apiCallsPerDay, amount: 1, idempotencyKey: "a key").success != nil)
  }

  @Test("RecordUsage names its amount field quantity")
  func quantityField() {
    let result = RecordUsageCommand.validate(
      tenantID: "acme", resource: .gpuSeconds, quantity: 0, usageTime: Self.now, idempotencyKey: "k", now: Self.now)
    #expect(result.failure == .invalidRequest([FieldViolation("quantity", .notPositive)]))
  }

  @Test("Commit and Release need a tenant, a reservation and a key")
  func reservationCommand() {
    #expect(
      ReservationCommand.validate(tenantID: "", reservationID: "", idempotencyKey: "").failure
        == .invalidRequest([
          FieldViolation("tenant_id", .missing), FieldViolation("reservation_id", .missing),
          FieldViolation("idempotency_key", .missing),
        ]))
    #expect(ReservationCommand.validate(tenantID: "a", reservationID: "r", idempotencyKey: "k").success != nil)
  }
}
