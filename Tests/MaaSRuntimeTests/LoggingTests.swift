import Foundation
import Logging
import MaaSRuntime
import Synchronization
import Testing

/// Lines a handler wrote, kept for the test to read.
final class CapturedLines: Sendable {
  private let lines = Mutex<[String]>([])
  var all: [String] { self.lines.withLock { $0 } }

  func logger(label: String, format: LogFormat, metadataProvider: Logger.MetadataProvider? = nil) -> Logger {
    Logger(label: label) { label in
      StructuredLogHandler(
        label: label,
        format: format,
        level: .trace,
        metadataProvider: metadataProvider,
        timestamp: { "2025-01-02T03:04:05.678Z" },
        output: { line in self.lines.withLock { $0.append(line) } }
      )
    }
  }
}

@Suite("Structured log lines")
struct LoggingTests {
  @Test("A JSON line is one object with timestamp, level, label, message and metadata")
  func jsonLine() throws {
    let captured = CapturedLines()
    let logger = captured.logger(label: "maas.test", format: .json)
    logger.warning(
      "call \"failed\"\nretrying",
      metadata: ["port": "50051", "peer": .stringConvertible(42), "nested": ["a": "b"], "list": ["x", "y"]]
    )

    let line = try #require(captured.all.first)
    #expect(captured.all.count == 1)
    #expect(line.hasSuffix("}\n"))
    #expect(!line.dropLast().contains("\n"))
    let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    #expect(object["timestamp"] as? String == "2025-01-02T03:04:05.678Z")
    #expect(object["level"] as? String == "warning")
    #expect(object["label"] as? String == "maas.test")
    #expect(object["message"] as? String == "call \"failed\"\nretrying")
    let metadata = try #require(object["metadata"] as? [String: Any])
    #expect(metadata["port"] as? String == "50051")
    #expect(metadata["peer"] as? String == "42")
    #expect(metadata["nested"] as? [String: String] == ["a": "b"])
    #expect(metadata["list"] as? [String] == ["x", "y"])
  }

  @Test("A text line reads timestamp, level, label, message, then sorted key=value pairs")
  func textLine() throws {
    let captured = CapturedLines()
    let logger = captured.logger(label: "maas.test", format: .text)
    logger.info("listening", metadata: ["port": "50051", "host": "0.0.0.0", "note": "two words", "empty": ""])
    #expect(captured.all == [
      "2025-01-02T03:04:05.678Z info maas.test: listening empty=\"\" host=0.0.0.0 note=\"two words\" port=50051\n"
    ])
  }

  @Test("The call's metadata wins over the provider's, which wins over the logger's")
  func metadataPrecedence() throws {
    let captured = CapturedLines()
    let provider = Logger.MetadataProvider { ["request": "from-provider", "trace": "t1"] }
    var logger = captured.logger(label: "maas.test", format: .text, metadataProvider: provider)
    logger[metadataKey: "service"] = "quota"
    logger[metadataKey: "request"] = "from-logger"
    logger.info("done", metadata: ["trace": "t2"])
    #expect(captured.all == ["2025-01-02T03:04:05.678Z info maas.test: done request=from-provider service=quota trace=t2\n"])
  }

  @Test("The default timestamp is UTC ISO 8601 with milliseconds")
  func defaultTimestamp() throws {
    let stamp = StructuredLogHandler.utcTimestamp()
    #expect(stamp.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil)
  }

  @Test("A second bootstrap in one process is refused instead of trapping")
  func bootstrapOnce() {
    MaaSLogging.bootstrap(format: .text, level: .critical)
    #expect(MaaSLogging.bootstrap(format: .json, level: .trace) == false)
  }
}
