import Foundation
import SwiftProtobuf

/// Prints answers: aligned tables for people, the message as JSON (proto field names) for scripts.
enum Output {
  static func print(_ format: OutputFormat, json message: some SwiftProtobuf.Message, table: () -> Table) throws {
    switch format {
    case .json:
      var options = JSONEncodingOptions()
      options.preserveProtoFieldNames = true
      Swift.print(try message.jsonString(options: options))
    case .table:
      Swift.print(table().rendered, terminator: "")
    }
  }
}

/// Columns padded to their widest cell.
struct Table {
  var headers: [String]
  var rows: [[String]]

  var rendered: String {
    let widths = headers.indices.map { column in
      ([headers[column]] + rows.map { column < $0.count ? $0[column] : "" }).map(\.count).max() ?? 0
    }
    func line(_ cells: [String]) -> String {
      cells.enumerated().map { index, cell in
        index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
      }.joined(separator: "  ") + "\n"
    }
    return line(headers) + rows.map(line).joined()
  }
}

extension Google_Protobuf_Timestamp {
  /// RFC 3339 in UTC, or "-" when unset.
  var text: String {
    guard seconds != 0 || nanos != 0 else { return "-" }
    return ISO8601DateFormatter().string(from: date)
  }
}

/// "a=b,c=d" for label maps, sorted.
func labelText(_ labels: [String: String]) -> String {
  labels.isEmpty ? "-" : labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
}

/// Parses repeated `key=value` options.
func parsePairs(_ pairs: [String], what: String) throws -> [String: String] {
  var result: [String: String] = [:]
  for pair in pairs {
    guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
      throw CLIError.usage("\(what) \"\(pair)\" is not key=value")
    }
    result[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
  }
  return result
}
