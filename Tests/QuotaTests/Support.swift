import Foundation
import Quota

/// An instant given in UTC, for tables that read like calendars.
func utc(_ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0)
  -> Date
{
  UTC.calendar.date(
    from: DateComponents(year: year, month: month, day: day, hour: hour, minute: minute, second: second))!
}

extension Result {
  var failure: Failure? {
    if case .failure(let error) = self { return error }
    return nil
  }
  var success: Success? { try? get() }
}
