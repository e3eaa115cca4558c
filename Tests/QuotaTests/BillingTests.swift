import Quota
import Testing

@Suite("Billing")
struct BillingTests {
  static func price(_ text: String) -> UnitPrice { try! UnitPrice.parse(text).get() }

  @Test("Prices parse exactly from configuration strings", arguments: [
    ("0.000125", Int64(125_000_000)),
    ("0", 0),
    ("12", 12_000_000_000_000),
    ("3.5", 3_500_000_000_000),
    ("0.000000000001", 1),
    ("007.10", 7_100_000_000_000),
  ])
  func parsePrice(_ text: String, _ picos: Int64) {
    #expect(UnitPrice.parse(text) == .success(UnitPrice(picos: picos)))
  }

  @Test("Malformed prices are refused with the reason", arguments: [
    ("", FixedPoint.ParseError.empty),
    ("-1", .invalidCharacter("-")),
    ("1e-3", .invalidCharacter("e")),
    (" 1", .invalidCharacter(" ")),
    ("1,5", .invalidCharacter(",")),
    ("1.2.3", .invalidCharacter(".")),
    ("NaN", .invalidCharacter("N")),
    (".5", .missingDigits),
    ("1.", .missingDigits),
    (".", .missingDigits),
    ("0.0000000000001", .tooManyFractionDigits(max: 12)),
    ("9223373", .overflow),
    ("٣", .invalidCharacter("٣")),
  ])
  func parseErrors(_ text: String, _ error: FixedPoint.ParseError) {
    #expect(UnitPrice.parse(text) == .failure(error))
  }

  @Test("A price table reports every bad price at once")
  func priceTableProblems() {
    let result = PriceTable.parse([.models: "x", .gpuSeconds: "0.0005", .apiCallsPerDay: "-1"])
    #expect(
      result.failure?.problems == [
        PriceTable.Problem(resource: .models, text: "x", error: .invalidCharacter("x")),
        PriceTable.Problem(resource: .apiCallsPerDay, text: "-1", error: .invalidCharacter("-")),
      ])
  }

  @Test("Unit prices format as trimmed decimals", arguments: [
    ("0.000694", "0.000694"), ("0", "0"), ("12.50", "12.5"), ("0.000000000001", "0.000000000001"),
  ])
  func formatPrice(_ text: String, _ expected: String) {
    #expect(Self.price(text).description == expected)
  }

  struct Case: Sendable, CustomTestStringConvertible {
    var name: String
    var quantity: Int64
    var price: String
    var minorDigits = 2
    var rounding = FixedPoint.Rounding.halfEven
    var amount: String
    var testDescription: String { name }
  }

  static let roundingCases: [Case] = [
    Case(name: "an exact product needs no rounding", quantity: 2_000_000, price: "0.000125", amount: "250.00"),
    Case(name: "half a cent rounds to even downwards", quantity: 5, price: "0.001", amount: "0.00"),
    Case(name: "half a cent rounds to even upwards", quantity: 15, price: "0.001", amount: "0.02"),
    Case(name: "half a cent rounds up when asked", quantity: 5, price: "0.001", rounding: .halfUp, amount: "0.01"),
    Case(name: "just under half a cent rounds down", quantity: 4_999, price: "0.000001", amount: "0.00"),
    Case(name: "just over half a cent rounds up", quantity: 5_001, price: "0.000001", amount: "0.01"),
    Case(name: "micro-unit currencies keep six digits", quantity: 12_345_678, price: "0.000001", minorDigits: 6,
      amount: "12.345678"),
    Case(name: "half a micro rounds up to micros when asked", quantity: 1, price: "0.0000005", minorDigits: 6,
      rounding: .halfUp, amount: "0.000001"),
    Case(name: "a currency without a minor unit rounds to whole units", quantity: 3, price: "0.5", minorDigits: 0,
      amount: "2"),
    Case(name: "a free resource costs zero", quantity: 1_000, price: "0", amount: "0.00"),
  ]

  @Test("Line amounts round once to the currency's minor unit", arguments: roundingCases)
  func rounding(_ c: Case) throws {
    let statement = try Billing.statement(
      quantities: [.apiCallsPerDay: c.quantity], prices: PriceTable(prices: [.apiCallsPerDay: Self.price(c.price)]),
      currency: Currency(code: "XTS", minorUnitDigits: c.minorDigits), rounding: c.rounding
    ).get()
    let line = try #require(statement.lines.first { $0.resource == .apiCallsPerDay })
    #expect(statement.text(line.amount) == c.amount)
  }

  @Test("A statement has one line per resource in enum order and totals the rounded lines")
  func statement() throws {
    let prices = try PriceTable.parse([
      .gpuSeconds: "0.000694", .apiCallsPerDay: "0.0001", .storageBytes: "0.000000000005",
    ]).get()
    let s = try Billing.statement(
      quantities: [.gpuSeconds: 36_000, .apiCallsPerDay: 12_345, .storageBytes: 720_000_000_000],
      prices: prices
    ).get()
    #expect(s.lines.map(\.resource) == QuotaResource.allCases)
    #expect(s.lines.map(\.unit) == ["model-hours", "byte-hours", "GPU-seconds", "calls", "GPU-hours"])
    #expect(s.lines.map { s.text($0.amount) } == ["0.00", "3.60", "24.98", "1.23", "0.00"])
    #expect(s.lines.map { $0.unitPrice.description } == ["0", "0.000000000005", "0.000694", "0.0001", "0"])
    #expect(s.text(s.total) == "29.81")
    #expect(s.total.micros == s.lines.reduce(0) { $0 + $1.amount.micros })
  }

  @Test("A charge too large for Int64 micros is an overflow, not a crash")
  func lineOverflow() {
    let result = Billing.statement(
      quantities: [.gpuSeconds: .max], prices: PriceTable(prices: [.gpuSeconds: Self.price("1")]))
    #expect(result.failure == .overflow(.gpuSeconds))
  }

  @Test("A total too large for Int64 micros is an overflow")
  func totalOverflow() {
    let big: Int64 = 5_000_000_000_000  // 5e12 units at 1.00 each = 5e18 micros per line
    let result = Billing.statement(
      quantities: [.gpuSeconds: big, .apiCallsPerDay: big],
      prices: PriceTable(prices: [.gpuSeconds: Self.price("1"), .apiCallsPerDay: Self.price("1")]))
    #expect(result.failure == .overflow(nil))
  }

  @Test("A negative quantity is refused")
  func negative() {
    let result = Billing.statement(quantities: [.models: -1], prices: PriceTable())
    #expect(result.failure == .negativeQuantity(.models))
  }
}
