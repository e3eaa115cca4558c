import Foundation
import MaaSTesting

/// Runs `psql` against `url` with `sql` and returns its unaligned, tuples-only output, trimmed.
/// These tests check the fixture, so they talk to Postgres through psql rather than through
/// the Swift client built on top of it.
func psql(_ url: String, _ sql: String) async throws -> String {
  let scratch = FileManager.default.temporaryDirectory
    .appendingPathComponent("maas-psql-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(at: scratch) }
  let output = scratch.appendingPathComponent("output")
  try Data().write(to: output)

  let process = Process()
  process.executableURL = URL(fileURLWithPath: try psqlBinary())
  process.arguments = [url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]
  process.standardInput = FileHandle.nullDevice
  let handle = try FileHandle(forWritingTo: output)
  process.standardOutput = handle
  process.standardError = handle
  try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
    process.terminationHandler = { _ in continuation.resume() }
    do {
      try process.run()
    } catch {
      process.terminationHandler = nil
      continuation.resume(throwing: error)
    }
  }
  let text = try String(contentsOf: output, encoding: .utf8)
    .trimmingCharacters(in: .whitespacesAndNewlines)
  guard process.terminationReason == .exit, process.terminationStatus == 0 else {
    throw PSQLFailed(sql: sql, output: text)
  }
  return text
}

struct PSQLFailed: Error, CustomStringConvertible {
  var sql: String
  var output: String
  var description: String { "psql failed on \(self.sql): \(self.output)" }
}

/// The newest server's psql (the one `scripts/postgres` also uses), else the one on the PATH.
private func psqlBinary() throws -> String {
  let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
  let newest = versions.compactMap(Int.init).max()
  for candidate in [newest.map { "/usr/lib/postgresql/\($0)/bin/psql" }, "/usr/bin/psql"]
  where candidate.map(FileManager.default.isExecutableFile(atPath:)) == true {
    return candidate!
  }
  throw PSQLFailed(sql: "", output: "psql not found; run scripts/postgres install")
}
