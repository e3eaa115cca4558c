import Foundation
import MaaSRuntime
import SwiftProtobuf
import Testing

@Suite("Timestamps read from requests and written into answers")
struct TimestampsTests {
  @Test("a Timestamp's instant is computed without trapping, whatever its seconds", arguments: [Int64.min, -62_135_596_801, .max])
  func instantOutsideTheRange(seconds: Int64) {
    let instant = Google_Protobuf_Timestamp.with { $0.seconds = seconds }.instant
    #expect(!TimestampRange.contains(instant))
  }

  @Test("the range is the years 1 to 9999, both ends included to the last second")
  func rangeEnds() {
    #expect(TimestampRange.contains(Google_Protobuf_Timestamp.with { $0.seconds = -62_135_596_800 }.instant))
    #expect(TimestampRange.contains(Google_Protobuf_Timestamp.with { $0.seconds = 253_402_300_799; $0.nanos = 999_000_000 }.instant))
    #expect(!TimestampRange.contains(Google_Protobuf_Timestamp.with { $0.seconds = 253_402_300_800 }.instant))
    #expect(Google_Protobuf_Timestamp.with { $0.seconds = 1_700_000_000; $0.nanos = 500_000_000 }.instant
      == Date(timeIntervalSince1970: 1_700_000_000.5))
  }

  @Test("an answer's Timestamp of Postgres' infinity or a non-number is held to the range, not a trap")
  func clamping() {
    #expect(Google_Protobuf_Timestamp(clamping: Date(timeIntervalSinceReferenceDate: .infinity)).seconds == 253_402_300_799)
    #expect(Google_Protobuf_Timestamp(clamping: Date(timeIntervalSinceReferenceDate: -.infinity)).seconds == -62_135_596_800)
    #expect(Google_Protobuf_Timestamp(clamping: Date(timeIntervalSinceReferenceDate: .nan)).seconds == -62_135_596_800)
    #expect(Google_Protobuf_Timestamp(clamping: Date(timeIntervalSince1970: 1_700_000_000)).seconds == 1_700_000_000)
  }
}
