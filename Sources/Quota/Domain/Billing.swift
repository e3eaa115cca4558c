public import Foundation

/// The price of one billing unit of a resource (`UsageLine.unit`), exact to 10^-12 of the
/// currency. Twelve digits rather than six because stock resources bill per base-unit-hour
/// ("byte-hours", "model-hours"), whose prices are far below a micro-unit.
public struct UnitPrice: Sendable, Hashable, Comparable, CustomStringConvertible {
  public static let fractionDigits = 12
  /// The price in 10^-12 currency units; >= 0.
  public var picos: Int64

  public init(picos: Int64) { self.picos = picos }

  public static let free = UnitPrice(picos: 0)

  /// Parses a configuration value such as "0.000125": a plain non-negative decimal, at most 12
  /// digits after the point, no sign, exponent or separators.
  public static func parse(_ text: String) -> Result<UnitPrice, FixedPoint.ParseError> {
    FixedPoint.parse(text, fractionDigits: fractionDigits).map(UnitPrice.init(picos:))
  }

  /// The wire form of `UsageLine.unit_price`: "0.000694", "0" when free.
  public var description: String {
    FixedPoint.format(picos, fractionDigits: Self.fractionDigits, trimmingZeros: true)
  }

  public static func < (a: UnitPrice, b: UnitPrice) -> Bool { a.picos < b.picos }
}

/// An amount of money in micro-units (10^-6) of the report's currency.
public struct Money: Sendable, Hashable, Comparable {
  public static let fractionDigits = 6
  public var micros: Int64

  public init(micros: Int64) { self.micros = micros }

  public static let zero = Money(micros: 0)

  /// The decimal string with `digits` fraction digits (the currency's minor unit), e.g.
  /// "250.00". Amounts are already rounded to the minor unit, so nothing is lost.
  public func formatted(fractionDigits digits: Int) -> String {
    let dropped = FixedPoint.pow10(Self.fractionDigits - digits)
    return FixedPoint.format(micros / dropped, fractionDigits: digits)
  }

  public static func < (a: Money, b: Money) -> Bool { a.micros < b.micros }
}

/// The currency a report is in, and its minor unit.
public struct Currency: Sendable, Hashable {
  /// ISO 4217, e.g. "USD".
  public var code: String
  /// Digits after the point amounts are rounded to: 2 for USD and EUR, 0 for JPY; at most 6.
  public var minorUnitDigits: Int

  public init(code: String, minorUnitDigits: Int) {
    precondition((0...Money.fractionDigits).contains(minorUnitDigits))
    self.code = code
    self.minorUnitDigits = minorUnitDigits
  }

  public static let usd = Currency(code: "USD", minorUnitDigits: 2)
}

/// Prices per resource, from configuration. A resource without a price is free.
public struct PriceTable: Sendable, Hashable {
  public var prices: [QuotaResource: UnitPrice]

  public init(prices: [QuotaResource: UnitPrice] = [:]) { self.prices = prices }

  public func price(for resource: QuotaResource) -> UnitPrice { prices[resource] ?? .free }

  /// One configuration value that did not parse.
  public struct Problem: Sendable, Hashable, CustomStringConvertible {
    public var resource: QuotaResource
    public var text: String
    public var error: FixedPoint.ParseError

    public init(resource: QuotaResource, text: String, error: FixedPoint.ParseError) {
      self.resource = resource
      self.text = text
      self.error = error
    }

    public var description: String { "price of \(resource) \"\(text)\" \(error)" }
  }

  /// Parses every configured price, reporting every bad one at once, in resource order.
  public static func parse(_ texts: [QuotaResource: String]) -> Result<PriceTable, PriceTableError> {
    var prices: [QuotaResource: UnitPrice] = [:]
    var problems: [Problem] = []
    for resource in QuotaResource.allCases {
      guard let text = texts[resource] else { continue }
      switch UnitPrice.parse(text) {
      case .success(let price): prices[resource] = price
      case .failure(let error): problems.append(Problem(resource: resource, text: text, error: error))
      }
    }
    return problems.isEmpty ? .success(PriceTable(prices: prices)) : .failure(PriceTableError(problems: problems))
  }
}

/// The price table's configuration is invalid; every problem is listed.
public struct PriceTableError: Error, Sendable, Hashable, CustomStringConvertible {
  public var problems: [PriceTable.Problem]
  public var description: String { problems.map(\.description).joined(separator: "; ") }
}

/// Why a statement could not be computed.
public enum BillingError: Error, Sendable, Hashable {
  /// A quantity below zero: counters never go negative, so storage handed over a bad figure.
  case negativeQuantity(QuotaResource)
  /// quantity x price, or the total, does not fit in Int64 micro-units.
  case overflow(QuotaResource?)
}

/// One resource's charge over a period (`UsageLine` without `used`, which storage knows).
public struct BillingLine: Sendable, Hashable {
  public var resource: QuotaResource
  /// In `unit`: calls or GPU-seconds spent, or base-unit-hours held for stock resources.
  public var quantity: Int64
  public var unit: String
  public var unitPrice: UnitPrice
  /// quantity x unitPrice, rounded to the currency's minor unit.
  public var amount: Money
}

/// Every resource's line, in resource order, and their total.
public struct BillingStatement: Sendable, Hashable {
  public var lines: [BillingLine]
  /// The sum of the rounded line amounts, so the lines shown always add up to it.
  public var total: Money
  public var currency: Currency

  /// `UsageLine.amount` / `UsageReport.total` as decimal strings in the currency's minor unit.
  public func text(_ money: Money) -> String {
    money.formatted(fractionDigits: currency.minorUnitDigits)
  }
}

public enum Billing {
  /// Prices `quantities` (a missing resource has quantity 0) into one line per resource.
  ///
  /// Each amount is the exact product, rounded once to the currency's minor unit by `rounding`
  /// (half-even by default, as resources.proto specifies); the total adds the rounded lines.
  /// - Returns: `.negativeQuantity` or `.overflow` instead of a wrong bill.
  public static func statement(
    quantities: [QuotaResource: Int64], prices: PriceTable, currency: Currency = .usd,
    rounding: FixedPoint.Rounding = .halfEven
  ) -> Result<BillingStatement, BillingError> {
    var lines: [BillingLine] = []
    var total: Int64 = 0
    // Product in 10^-12, kept to minor units, then expressed in micros.
    let keep = Int128(FixedPoint.pow10(UnitPrice.fractionDigits - currency.minorUnitDigits))
    let toMicros = Int128(FixedPoint.pow10(Money.fractionDigits - currency.minorUnitDigits))
    for resource in QuotaResource.allCases {
      let quantity = quantities[resource] ?? 0
      guard quantity >= 0 else { return .failure(.negativeQuantity(resource)) }
      let price = prices.price(for: resource)
      // Int128 holds any Int64 x Int64 product, so the exact charge is never truncated.
      let exact = Int128(quantity) * Int128(price.picos)
      let micros = FixedPoint.divide(exact, by: keep, rounding: rounding) * toMicros
      guard let amount = Int64(exactly: micros) else { return .failure(.overflow(resource)) }
      let (sum, overflow) = total.addingReportingOverflow(amount)
      guard !overflow else { return .failure(.overflow(nil)) }
      total = sum
      lines.append(
        BillingLine(
          resource: resource, quantity: quantity, unit: resource.billingUnit, unitPrice: price,
          amount: Money(micros: amount)))
    }
    return .success(BillingStatement(lines: lines, total: Money(micros: total), currency: currency))
  }
}

/// The time integral of what a stock resource held, which is what stock resources bill:
/// holding 1 GB for half a period costs half of holding it for the whole period.
public enum StockHistory {
  /// One signed change of what is held (a commit adds, a release of a committed amount subtracts).
  public struct Change: Sendable, Hashable {
    public var at: Date
    public var delta: Int64
    public init(at: Date, delta: Int64) {
      self.at = at
      self.delta = delta
    }
  }

  /// What was held over `period`, in base-unit-hours, and what was held at its end.
  ///
  /// - Parameters:
  ///   - opening: held at `period.start` (the sum of every change before it).
  ///   - changes: the changes inside `period`, oldest first.
  /// - Returns: the integral in base-unit-hours, computed exactly in base-unit-microseconds and
  ///   rounded once, half-even, like every other figure of a bill; `nil` if it overflows Int64.
  public static func integral(opening: Int64, changes: [Change], period: DateInterval)
    -> (baseUnitHours: Int64, closing: Int64)?
  {
    func micros(_ date: Date) -> Int128 { Int128((date.timeIntervalSince1970 * 1e6).rounded()) }
    var held = Int128(opening)
    var since = micros(period.start)
    var sum: Int128 = 0
    for change in changes {
      let at = min(max(micros(change.at), since), micros(period.end))
      sum += held * (at - since)
      since = at
      held += Int128(change.delta)
    }
    sum += held * (micros(period.end) - since)
    let hours = FixedPoint.divide(sum, by: 3_600_000_000, rounding: .halfEven)
    guard let quantity = Int64(exactly: hours), let closing = Int64(exactly: held) else { return nil }
    return (quantity, closing)
  }
}
