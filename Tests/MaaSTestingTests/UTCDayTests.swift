import Foundation
@testable import MaaSTesting
import Testing

@Suite("awayFromUTCMidnight")
struct UTCDayTests {
  /// 2026-11-24T00:00:00Z.
  let midnight = Date(timeIntervalSince1970: 1_795_478_400)

  @Test("with more than the margin left of the day, there is nothing to wait for")
  func noWaitDuringTheDay() {
    #expect(waitBeforeUTCMidnight(at: self.midnight, margin: .seconds(300)) == nil)
    #expect(waitBeforeUTCMidnight(at: self.midnight.addingTimeInterval(-300), margin: .seconds(300)) == nil)
    #expect(waitBeforeUTCMidnight(at: self.midnight.addingTimeInterval(43_200), margin: .seconds(300)) == nil)
  }

  @Test("within the margin of midnight, the wait lasts until just past it")
  func waitsPastMidnight() {
    #expect(waitBeforeUTCMidnight(at: self.midnight.addingTimeInterval(-299), margin: .seconds(300)) == .seconds(300))
    #expect(waitBeforeUTCMidnight(at: self.midnight.addingTimeInterval(-0.5), margin: .seconds(300)) == .milliseconds(1_500))
  }
}
