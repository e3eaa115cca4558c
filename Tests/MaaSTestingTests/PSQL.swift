import Foundation
import MaaSTesting

/// Runs `psql` against `url` with `sql` and returns its unaligned, tuples-only output, trimmed.
/// These tests check the fixture, so they talk to Postgres through psql rather than through
/// the Swift client built on top of it.
func psql(_ url: String, _ sql: String) async throws -> String {
  let outcome = try await runToCompletion(
    try psqlBinary(), [url, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
  let text = (outcome.standardOutput + outcome.standardError).trimmingCharacters(in: .whitespacesAndNewlines)
  guard outcome.succeeded else { throw PSQLFailed(sql: sql, output: text) }
  return outcome.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
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
