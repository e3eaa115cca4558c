import Foundation

/// `value` with `digits` decimals, as the tables print figures.
public func format(_ value: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", value) }

/// Prints a Markdown table's header and alignment rows: the columns named in `text` left-aligned,
/// the others (figures) right-aligned.
public func printTableHeader(_ titles: [String], text: Set<String> = ["peer"]) {
  printTableRow(titles)
  print("|" + titles.map { text.contains($0) ? "---" : "---:" }.joined(separator: "|") + "|")
}

/// Prints one row of a Markdown table.
public func printTableRow(_ cells: [String]) {
  print("| " + cells.joined(separator: " | ") + " |")
}

/// A headline figure against its goal: `label: value   goal: goal   met` (or `NOT met`).
public func goalLine(_ label: String, _ value: String, goal: String, met: Bool) -> String {
  "\(label): \(value)   goal: \(goal)" + (met ? "   met" : "   NOT met")
}

/// Writes `report` as pretty-printed JSON with sorted keys (stable to diff from run to run),
/// making the directory if need be.
public func writeJSON(_ report: some Encodable, to path: String) throws {
  let encoder = JSONEncoder()
  encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
  let url = URL(fileURLWithPath: path)
  try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
  try encoder.encode(report).write(to: url)
}
