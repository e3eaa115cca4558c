/// Exact decimal numbers as scaled Int64, for money and prices. Billing never touches Double:
/// 0.1 has no binary representation, and a bill must add up to the cent however it is summed.
public enum FixedPoint {
  /// How to round an exact value that has more digits than the target keeps.
  public enum Rounding: Sendable, Hashable {
    /// Ties to the even neighbour (banker's rounding): what `UsageLine.amount` specifies.
    case halfEven
    /// Ties away from zero, as most invoices do by hand.
    case halfUp
  }

  /// Why a decimal string is not a valid fixed-point number.
  public enum ParseError: Error, Sendable, Hashable, CustomStringConvertible {
    case empty
    /// A sign, exponent, space, comma or any other non-digit besides one ".".
    case invalidCharacter(Character)
    /// "." or "1." or ".5": digits are required on both sides of a point.
    case missingDigits
    case tooManyFractionDigits(max: Int)
    case overflow

    public var description: String {
      switch self {
      case .empty: "is empty"
      case .invalidCharacter(let c): "contains \"\(c)\"; expected digits and at most one \".\""
      case .missingDigits: "needs digits on both sides of \".\""
      case .tooManyFractionDigits(let max): "has more than \(max) digits after \".\""
      case .overflow: "is too large"
      }
    }
  }

  /// Parses a non-negative plain decimal ("0.000125", "12", "3.5") into units of 10^-digits.
  public static func parse(_ text: String, fractionDigits: Int) -> Result<Int64, ParseError> {
    guard !text.isEmpty else { return .failure(.empty) }
    let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
    for c in text where !(c.isASCII && (c.isNumber || c == ".")) {
      return .failure(.invalidCharacter(c))
    }
    if parts.count == 2, parts[1].contains(".") { return .failure(.invalidCharacter(".")) }
    let whole = parts[0]
    let fraction = parts.count == 2 ? parts[1] : ""
    guard !whole.isEmpty, parts.count == 1 || !fraction.isEmpty else {
      return .failure(.missingDigits)
    }
    guard fraction.count <= fractionDigits else {
      return .failure(.tooManyFractionDigits(max: fractionDigits))
    }
    let padded = String(whole) + fraction + String(repeating: "0", count: fractionDigits - fraction.count)
    var value: Int64 = 0
    for digit in padded.utf8 {
      let (shifted, o1) = value.multipliedReportingOverflow(by: 10)
      let (next, o2) = shifted.addingReportingOverflow(Int64(digit - UInt8(ascii: "0")))
      guard !o1, !o2 else { return .failure(.overflow) }
      value = next
    }
    return .success(value)
  }

  /// Formats `value` units of 10^-digits. With `trimmingZeros`, trailing fraction zeros and a
  /// bare point go ("0.000694", "0"); without, exactly `fractionDigits` are shown ("250.00").
  public static func format(_ value: Int64, fractionDigits: Int, trimmingZeros: Bool = false)
    -> String
  {
    let sign = value < 0 ? "-" : ""
    let magnitude = value.magnitude
    let scale = UInt64(pow10(fractionDigits))
    let whole = magnitude / scale
    guard fractionDigits > 0 else { return "\(sign)\(whole)" }
    var fraction = String(magnitude % scale)
    fraction = String(repeating: "0", count: fractionDigits - fraction.count) + fraction
    if trimmingZeros {
      while fraction.last == "0" { fraction.removeLast() }
    }
    return fraction.isEmpty ? "\(sign)\(whole)" : "\(sign)\(whole).\(fraction)"
  }

  /// `value / divisor`, rounded; `value` >= 0, `divisor` > 0.
  static func divide(_ value: Int128, by divisor: Int128, rounding: Rounding) -> Int128 {
    let (quotient, remainder) = value.quotientAndRemainder(dividingBy: divisor)
    let twice = remainder * 2
    switch rounding {
    case .halfUp:
      return twice >= divisor ? quotient + 1 : quotient
    case .halfEven:
      if twice > divisor || (twice == divisor && quotient % 2 == 1) { return quotient + 1 }
      return quotient
    }
  }

  static func pow10(_ exponent: Int) -> Int64 {
    precondition((0...18).contains(exponent), "10^\(exponent) does not fit in Int64")
    var result: Int64 = 1
    for _ in 0..<exponent { result *= 10 }
    return result
  }
}
