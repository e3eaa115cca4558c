public import Foundation

/// How a child process ended and what it wrote.
public struct ProcessOutcome: Sendable {
  /// True when it exited on its own; false when a signal ended it.
  public var exited: Bool
  /// The exit status, or the signal's number when `exited` is false.
  public var status: Int32
  public var standardOutput: String
  public var standardError: String

  /// Exited with status 0.
  public var succeeded: Bool { self.exited && self.status == 0 }
}

/// Runs `executable` to completion and returns how it ended and what it wrote.
///
/// Output goes to files rather than pipes: a server the child starts (pg_ctl's postmaster, say)
/// may inherit a pipe and hold it open, and reading a pipe to its end would then wait for that
/// server. With `timeLimit`, a child still running after it is killed with SIGKILL, which it
/// cannot block (children of Foundation's Process started from async code inherit blocked
/// SIGTERM), and the outcome says so.
public func runToCompletion(
  _ executable: String,
  _ arguments: [String],
  input: String? = nil,
  environment: [String: String]? = nil,
  directory: String? = nil,
  timeLimit: Duration? = nil
) async throws -> ProcessOutcome {
  let scratch = FileManager.default.temporaryDirectory
    .appendingPathComponent("maas-process-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(at: scratch) }
  let stdout = scratch.appendingPathComponent("stdout")
  let stderr = scratch.appendingPathComponent("stderr")
  let stdin = scratch.appendingPathComponent("stdin")
  for (file, contents) in [(stdout, Data()), (stderr, Data()), (stdin, Data((input ?? "").utf8))] {
    try contents.write(to: file)
  }

  let process = Process()
  process.executableURL = URL(fileURLWithPath: executable)
  process.arguments = arguments
  if let environment { process.environment = environment }
  if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
  process.standardInput = try FileHandle(forReadingFrom: stdin)
  process.standardOutput = try FileHandle(forWritingTo: stdout)
  process.standardError = try FileHandle(forWritingTo: stderr)
  let watchdog = timeLimit.map { limit in
    Task {
      try await Task.sleep(for: limit)
      if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
  }
  defer { watchdog?.cancel() }
  try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
    process.terminationHandler = { _ in continuation.resume() }
    do {
      try process.run()
    } catch {
      process.terminationHandler = nil
      continuation.resume(throwing: error)
    }
  }
  return ProcessOutcome(
    exited: process.terminationReason == .exit,
    status: process.terminationStatus,
    standardOutput: (try? String(contentsOf: stdout, encoding: .utf8)) ?? "",
    standardError: (try? String(contentsOf: stderr, encoding: .utf8)) ?? ""
  )
}

/// The repository's root, found from this file's place in it.
public let repositoryRoot: String = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

/// An executable product of this package, as `swift build` left it: next to the running test
/// bundle (`swift test` builds every product there), else under `.build/debug`.
public func builtProduct(named name: String) throws -> URL {
  let nextToBundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    .appendingPathComponent(name)
  let debug = URL(fileURLWithPath: repositoryRoot).appendingPathComponent(".build/debug/\(name)")
  for candidate in [nextToBundle, debug] where FileManager.default.isExecutableFile(atPath: candidate.path) {
    return candidate
  }
  throw ProductNotBuilt(name: name, searched: [nextToBundle.path, debug.path])
}

/// `builtProduct` found nothing.
public struct ProductNotBuilt: Error, CustomStringConvertible {
  public var name: String
  public var searched: [String]
  public var description: String {
    "\(self.name) not found (looked at \(self.searched.joined(separator: ", "))); run `swift build --product \(self.name)`"
  }
}
