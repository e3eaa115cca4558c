public import Foundation
public import SwiftProtobuf

/// The instants a `google.protobuf.Timestamp` may hold: 0001-01-01T00:00:00Z to
/// 9999-12-31T23:59:59.999999999Z, as timestamp.proto defines it.
///
/// Request timestamps are checked against it (INVALID_ARGUMENT naming the field) before they reach
/// Postgres or an answer: SwiftProtobuf's `Timestamp.date` and `Timestamp(date:)` do Int64
/// arithmetic that traps near Int64's ends, and Postgres stores anything past its own range as
/// `infinity`, which no Timestamp can hold.
public enum TimestampRange {
  /// 0001-01-01T00:00:00Z up to, not including, 10000-01-01T00:00:00Z.
  public static let dates: Range<Date> = Date(timeIntervalSince1970: -62_135_596_800)..<Date(timeIntervalSince1970: 253_402_300_800)

  /// What an INVALID_ARGUMENT says of a time outside the range, after the field's name.
  public static let violation = "must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"

  /// Whether `date` is an instant a Timestamp can hold.
  public static func contains(_ date: Date) -> Bool { dates.contains(date) }
}

extension Google_Protobuf_Timestamp {
  /// The instant this Timestamp names, computed without trapping whatever its fields hold: a value
  /// outside `TimestampRange` comes out outside it (or as a far date), for validation to refuse.
  public var instant: Date {
    Date(timeIntervalSince1970: TimeInterval(seconds) + TimeInterval(nanos) / 1_000_000_000)
  }

  /// The Timestamp of `date` held to `TimestampRange`: an answer built from a stored date (a row
  /// written before its field was checked, Postgres' `infinity`) cannot trap.
  public init(clamping date: Date) {
    let earliest = TimestampRange.dates.lowerBound
    let latest = TimestampRange.dates.upperBound.addingTimeInterval(-1)
    self.init(date: date.timeIntervalSince1970.isNaN ? earliest : min(max(date, earliest), latest))
  }
}
