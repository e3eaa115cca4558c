import Foundation
public import Logging

/// A swift-log handler that writes one line per event, as text or JSON, to stderr.
///
/// Stdout stays free for what scripts read (`listening on HOST:PORT`); a log collector reads
/// stderr. Each line is written with one `write(2)` so lines from concurrent tasks never
/// interleave.
public struct StructuredLogHandler: LogHandler {
  /// Where finished lines go; each call gets one complete line, newline included.
  public typealias Output = @Sendable (String) -> Void
  /// The time stamped on each event, as text.
  public typealias Timestamp = @Sendable () -> String

  /// The label of the logger this handler serves (its subsystem, e.g. `maas.quota`).
  public let label: String
  /// The line format.
  public let format: LogFormat
  /// The lowest level written; swift-log checks it before calling `log(event:)`.
  public var logLevel: Logger.Level
  /// Metadata added to every line of the logger that owns this handler.
  public var metadata: Logger.Metadata = [:]
  /// Contextual metadata fetched for each line; the call's own metadata wins over it.
  public var metadataProvider: Logger.MetadataProvider?

  private let output: Output
  private let timestamp: Timestamp

  /// - Parameters:
  ///   - label: The logger's label.
  ///   - format: Text or JSON lines.
  ///   - level: The lowest level written.
  ///   - metadataProvider: Contextual metadata (a request id from a task local, say).
  ///   - timestamp: The clock, as text; tests inject a fixed one. Defaults to UTC ISO 8601
  ///     with milliseconds.
  ///   - output: Where lines go; stderr unless a test captures them.
  public init(
    label: String,
    format: LogFormat,
    level: Logger.Level = .info,
    metadataProvider: Logger.MetadataProvider? = nil,
    timestamp: @escaping Timestamp = StructuredLogHandler.utcTimestamp,
    output: @escaping Output = StructuredLogHandler.standardError
  ) {
    self.label = label
    self.format = format
    self.logLevel = level
    self.metadataProvider = metadataProvider
    self.timestamp = timestamp
    self.output = output
  }

  /// One entry of `metadata`.
  public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { self.metadata[key] }
    set { self.metadata[key] = newValue }
  }

  /// Writes `event` as one line in `format`; an attached error appears under the key `error`.
  public func log(event: LogEvent) {
    // Precedence, lowest first: handler metadata, the provider's, then the call's own.
    var merged = self.metadata
    if let provided = self.metadataProvider?.get() {
      merged.merge(provided) { _, new in new }
    }
    if let own = event.metadata {
      merged.merge(own) { _, new in new }
    }
    if let error = event.error {
      merged["error"] = .string(String(describing: error))
    }
    let line = LogLine(
      timestamp: self.timestamp(),
      level: event.level,
      label: self.label,
      message: event.message.description,
      metadata: merged
    )
    self.output(self.format == .json ? line.json : line.text)
  }

  /// Now, in UTC, as ISO 8601 with milliseconds: `2025-01-02T03:04:05.678Z`.
  public static let utcTimestamp: Timestamp = {
    Date.now.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
  }

  /// Writes each line to stderr in a single call.
  public static let standardError: Output = { line in
    writeToStandardError(line)
  }
}

/// One event, ready to be rendered in either format.
struct LogLine {
  var timestamp: String
  var level: Logger.Level
  var label: String
  var message: String
  var metadata: Logger.Metadata

  /// `TIMESTAMP LEVEL LABEL: MESSAGE key=value ...`, keys sorted so that lines diff well; values
  /// with spaces, quotes or `=` are quoted.
  var text: String {
    var line = "\(self.timestamp) \(self.level.rawValue) \(self.label): \(self.message)"
    for key in self.metadata.keys.sorted() {
      line += " \(key)=\(Self.textValue(self.metadata[key]!))"
    }
    return line + "\n"
  }

  /// `{"timestamp":...,"level":...,"label":...,"message":...,"metadata":{...}}` on one line.
  var json: String {
    var line = "{\"timestamp\":\(JSONText.string(self.timestamp))"
    line += ",\"level\":\(JSONText.string(self.level.rawValue))"
    line += ",\"label\":\(JSONText.string(self.label))"
    line += ",\"message\":\(JSONText.string(self.message))"
    line += ",\"metadata\":\(JSONText.value(.dictionary(self.metadata)))}"
    return line + "\n"
  }

  private static func textValue(_ value: Logger.Metadata.Value) -> String {
    let plain: String
    switch value {
    case .string(let text): plain = text
    case .stringConvertible(let convertible): plain = convertible.description
    case .array, .dictionary: return JSONText.value(value)
    }
    let needsQuotes = plain.isEmpty || plain.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline }
    return needsQuotes ? JSONText.string(plain) : plain
  }
}

/// The little JSON writing the handler needs: strings escaped per RFC 8259, metadata as nested
/// objects and arrays. Hand-written because lines must keep their field order and must not
/// depend on JSONSerialization's platform differences.
enum JSONText {
  static func value(_ value: Logger.Metadata.Value) -> String {
    switch value {
    case .string(let text):
      return self.string(text)
    case .stringConvertible(let convertible):
      return self.string(convertible.description)
    case .array(let values):
      return "[" + values.map(self.value).joined(separator: ",") + "]"
    case .dictionary(let entries):
      let fields = entries.keys.sorted().map { "\(self.string($0)):\(self.value(entries[$0]!))" }
      return "{" + fields.joined(separator: ",") + "}"
    }
  }

  static func string(_ text: String) -> String {
    var escaped = "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": escaped += "\\\""
      case "\\": escaped += "\\\\"
      case "\n": escaped += "\\n"
      case "\r": escaped += "\\r"
      case "\t": escaped += "\\t"
      case _ where scalar.value < 0x20:
        escaped += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
          + String(scalar.value, radix: 16)
      default: escaped.unicodeScalars.append(scalar)
      }
    }
    return escaped + "\""
  }
}
