import Foundation

// Parsers for Postgres' text output formats. Results come back in text format (one format for
// every column is all PQexecParams offers, and text is the one every type has), so these are on
// the hot path of every row: they work on the raw bytes and allocate only for the value itself.

/// Timestamps: the binary parameter form and the text result form.
enum PostgresTime {
  /// Seconds from Postgres' epoch (2000-01-01 UTC) back to Foundation's (2001-01-01 UTC).
  static let secondsFrom2000To2001: Double = 366 * 86_400

  /// timestamptz's binary form: microseconds since 2000-01-01 UTC, with the extremes standing
  /// for -infinity and infinity as they do in the server (DT_NOBEGIN, DT_NOEND).
  static func microseconds(_ date: Date) -> Int64 {
    let seconds = date.timeIntervalSinceReferenceDate + self.secondsFrom2000To2001
    if seconds.isNaN { return 0 }
    let micros = (seconds * 1_000_000).rounded()
    if micros >= 9.2e18 { return .max }
    if micros <= -9.2e18 { return .min }
    return Int64(micros)
  }

  /// Parses DateStyle ISO output of timestamptz ("2024-05-06 07:08:09.123456+00", offsets like
  /// "+05:30" or "-00:53:28", a trailing " BC"), timestamp (no offset: read as UTC) and date.
  /// "infinity" and "-infinity" become dates infinitely far away, the same ones that encode back
  /// to them.
  static func parse(_ text: UnsafeRawBufferPointer) -> Date? {
    if text.elementsEqual("infinity".utf8) { return Date(timeIntervalSinceReferenceDate: .infinity) }
    if text.elementsEqual("-infinity".utf8) { return Date(timeIntervalSinceReferenceDate: -.infinity) }
    var reader = ByteReader(text)
    guard let year = reader.integer(maxDigits: 9), reader.consume(UInt8(ascii: "-")),
      let month = reader.integer(exactDigits: 2), reader.consume(UInt8(ascii: "-")),
      let day = reader.integer(exactDigits: 2)
    else { return nil }
    var secondsOfDay = 0
    var fraction = 0.0
    var offset = 0
    if reader.consume(UInt8(ascii: " ")) || reader.consume(UInt8(ascii: "T")) {
      guard let hour = reader.integer(exactDigits: 2), reader.consume(UInt8(ascii: ":")),
        let minute = reader.integer(exactDigits: 2), reader.consume(UInt8(ascii: ":")),
        let second = reader.integer(exactDigits: 2)
      else { return nil }
      secondsOfDay = hour * 3600 + minute * 60 + second
      if reader.consume(UInt8(ascii: ".")) {
        var scale = 0.1
        while let digit = reader.digit() {
          fraction += Double(digit) * scale
          scale /= 10
        }
      }
      if let sign = reader.sign() {
        guard let hours = reader.integer(exactDigits: 2) else { return nil }
        var total = hours * 3600
        if reader.consume(UInt8(ascii: ":")) {
          guard let minutes = reader.integer(exactDigits: 2) else { return nil }
          total += minutes * 60
          if reader.consume(UInt8(ascii: ":")) {
            guard let seconds = reader.integer(exactDigits: 2) else { return nil }
            total += seconds
          }
        }
        offset = sign * total
      }
    }
    var civilYear = year
    if reader.consume(" BC".utf8) { civilYear = 1 - year }
    guard reader.isAtEnd, (1...12).contains(month), (1...31).contains(day) else { return nil }
    let days = self.daysFromCivil(year: civilYear, month: month, day: day)
    let unixSeconds = Double(days * 86_400 + secondsOfDay - offset) + fraction
    return Date(timeIntervalSince1970: unixSeconds)
  }

  /// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's algorithm),
  /// which is the calendar Postgres uses for every date, BC included.
  static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
  }
}

/// A cursor over ASCII text.
struct ByteReader {
  private let bytes: UnsafeRawBufferPointer
  private var index = 0

  init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

  var isAtEnd: Bool { self.index == self.bytes.count }

  mutating func consume(_ byte: UInt8) -> Bool {
    guard self.index < self.bytes.count, self.bytes[self.index] == byte else { return false }
    self.index += 1
    return true
  }

  mutating func consume(_ literal: String.UTF8View) -> Bool {
    let end = self.index + literal.count
    guard end <= self.bytes.count, self.bytes[self.index..<end].elementsEqual(literal) else { return false }
    self.index = end
    return true
  }

  mutating func digit() -> Int? {
    guard self.index < self.bytes.count else { return nil }
    let byte = self.bytes[self.index]
    guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
    self.index += 1
    return Int(byte - UInt8(ascii: "0"))
  }

  mutating func sign() -> Int? {
    if self.consume(UInt8(ascii: "+")) { return 1 }
    if self.consume(UInt8(ascii: "-")) { return -1 }
    return nil
  }

  mutating func integer(exactDigits: Int) -> Int? {
    var value = 0
    for _ in 0..<exactDigits {
      guard let digit = self.digit() else { return nil }
      value = value * 10 + digit
    }
    return value
  }

  mutating func integer(maxDigits: Int) -> Int? {
    var value = 0
    var count = 0
    while count < maxDigits, let digit = self.digit() {
      value = value * 10 + digit
      count += 1
    }
    return count == 0 ? nil : value
  }
}

enum TextFormats {
  /// A decimal integer as int2/int4/int8/oid print it, or nil if it does not fit Int64.
  static func int64(_ text: UnsafeRawBufferPointer) -> Int64? {
    var index = 0
    var negative = false
    if text.first == UInt8(ascii: "-") {
      negative = true
      index = 1
    }
    guard index < text.count else { return nil }
    var value: Int64 = 0
    while index < text.count {
      let byte = text[index]
      guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
      let digit = Int64(byte - UInt8(ascii: "0"))
      let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
      let (next, overflow2) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
      guard !overflow1, !overflow2 else { return nil }
      value = next
      index += 1
    }
    return value
  }

  /// bytea's hex output ("\x0a0b"), and the older escape output for servers set to it.
  static func bytea(_ text: UnsafeRawBufferPointer) -> [UInt8]? {
    if text.count >= 2, text[0] == UInt8(ascii: "\\"), text[1] == UInt8(ascii: "x") {
      guard text.count % 2 == 0 else { return nil }
      var bytes = [UInt8]()
      bytes.reserveCapacity((text.count - 2) / 2)
      var index = 2
      while index < text.count {
        guard let high = self.hexValue(text[index]), let low = self.hexValue(text[index + 1]) else { return nil }
        bytes.append(high << 4 | low)
        index += 2
      }
      return bytes
    }
    var bytes = [UInt8]()
    var index = 0
    while index < text.count {
      let byte = text[index]
      if byte != UInt8(ascii: "\\") {
        bytes.append(byte)
        index += 1
      } else if index + 1 < text.count, text[index + 1] == UInt8(ascii: "\\") {
        bytes.append(byte)
        index += 2
      } else {
        guard index + 3 < text.count else { return nil }
        var value: UInt8 = 0
        for offset in 1...3 {
          let digit = text[index + offset]
          guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "7") else { return nil }
          value = value &* 8 &+ (digit - UInt8(ascii: "0"))
        }
        bytes.append(value)
        index += 4
      }
    }
    return bytes
  }

  private static func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
    default: return nil
    }
  }

  enum ArrayProblem: Error {
    case malformed
    case multidimensional
  }

  /// The elements of a one-dimensional array's text output: `{a,"b c",NULL,"q\"uote"}`, with an
  /// optional bounds decoration (`[0:1]={...}`). NULL elements are nil; a quoted "NULL" is text.
  static func arrayElements(_ text: UnsafeRawBufferPointer) throws(ArrayProblem) -> [String?] {
    var index = 0
    if text.first == UInt8(ascii: "[") {
      guard let equals = text.firstIndex(of: UInt8(ascii: "=")) else { throw .malformed }
      index = equals + 1
    }
    guard index < text.count, text[index] == UInt8(ascii: "{") else { throw .malformed }
    index += 1
    var elements: [String?] = []
    if index < text.count, text[index] == UInt8(ascii: "}") {
      guard index + 1 == text.count else { throw .malformed }
      return elements
    }
    while true {
      guard index < text.count else { throw .malformed }
      var element: [UInt8] = []
      var isNull = false
      switch text[index] {
      case UInt8(ascii: "{"):
        throw .multidimensional
      case UInt8(ascii: "\""):
        index += 1
        while true {
          guard index < text.count else { throw .malformed }
          let byte = text[index]
          if byte == UInt8(ascii: "\"") {
            index += 1
            break
          }
          if byte == UInt8(ascii: "\\") {
            index += 1
            guard index < text.count else { throw .malformed }
          }
          element.append(text[index])
          index += 1
        }
      default:
        while index < text.count, text[index] != UInt8(ascii: ","), text[index] != UInt8(ascii: "}") {
          element.append(text[index])
          index += 1
        }
        isNull = element.elementsEqual("NULL".utf8)
      }
      elements.append(isNull ? nil : String(decoding: element, as: UTF8.self))
      guard index < text.count else { throw .malformed }
      if text[index] == UInt8(ascii: ",") {
        index += 1
        continue
      }
      guard text[index] == UInt8(ascii: "}"), index + 1 == text.count else { throw .malformed }
      return elements
    }
  }
}
