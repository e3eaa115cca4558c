import Foundation
import MaaSTesting
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the Python peer of these tests lives: the venv's python that `scripts/python-env`
/// creates, the scripts in Tests/Interop and the stubs generated into .build-python/.
enum PythonPeer {
  static var python: String { PythonEnvironment.python }
  static var stubs: String { PythonEnvironment.stubs }
  static func script(_ name: String) -> String { PythonEnvironment.script(name) }
  static var environment: [String: String] { PythonEnvironment.environment }

  /// Fails the calling test (never skips it) when the Python side has not been set up: an
  /// interoperability test that silently does nothing would hide exactly what it is for.
  static func requireSetUp(sourceLocation: SourceLocation = #_sourceLocation) throws {
    try #require(
      PythonEnvironment.isSetUp,
      "No Python peer at \(python) or no stubs in \(stubs): run scripts/python-env (or make test) first",
      sourceLocation: sourceLocation
    )
  }
}

/// How a Python subprocess ended.
struct PythonExit: Sendable, Equatable, CustomStringConvertible {
  /// The exit status, or the signal that ended the process.
  var code: Int32
  var bySignal: Bool

  static let success = PythonExit(code: 0, bySignal: false)

  var description: String { bySignal ? "killed by signal \(code)" : "exit status \(code)" }
}

/// One Python script of Tests/Interop running as a subprocess, its stdout and stderr collected
/// (interleaved, as a person would see them) while it runs.
///
/// Every wait here is bounded and polls without blocking Swift's cooperative threads: the
/// blocking pipe reads run on the collector's thread.
final class PythonProcess: Sendable {
  private let collected: PipeCollector
  private let exited: ExitRecord
  let pid: Int32
  let name: String

  /// Starts `python Tests/Interop/<script> <arguments...>`.
  init(script: String, arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: PythonPeer.python)
    process.arguments = [PythonPeer.script(script)] + arguments
    process.environment = PythonPeer.environment
    process.currentDirectoryURL = URL(fileURLWithPath: repositoryRoot)
    process.standardInput = FileHandle.nullDevice
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    let exited = ExitRecord()
    process.terminationHandler = { process in
      let exit = PythonExit(
        code: process.terminationStatus,
        bySignal: process.terminationReason == .uncaughtSignal
      )
      exited.value.withLock { $0 = exit }
    }
    try process.run()
    self.exited = exited
    self.collected = PipeCollector(reading: pipe.fileHandleForReading)
    self.pid = process.processIdentifier
    self.name = script
  }

  /// Everything the process printed so far.
  var output: String { self.collected.text }

  var exit: PythonExit? { self.exited.value.withLock { $0 } }

  /// The first line the process printed, or nil when none came within `limit` (or the process
  /// ended without one).
  func firstLine(within limit: Duration) async -> String? {
    await self.collected.firstLine(within: limit)
  }

  /// Waits until the process has ended and its output is read to the end; nil if it is still
  /// running after `limit`.
  func waitForExit(within limit: Duration) async -> PythonExit? {
    _ = await waitUntil(within: limit) { self.exit != nil && self.collected.ended }
    return self.exit
  }

  /// Sends `signal` unless the process has already ended (its pid may be reused by then).
  func send(_ signal: Int32) {
    if self.exit == nil {
      _ = kill(self.pid, signal)
    }
  }

  /// Stops the process: SIGTERM, then SIGKILL if it is still running after `grace`. Returns
  /// how it ended.
  @discardableResult
  func stop(grace: Duration = .seconds(5)) async -> PythonExit? {
    if let exit = self.exit { return exit }
    self.send(SIGTERM)
    if let exit = await self.waitForExit(within: grace) { return exit }
    self.send(SIGKILL)
    return await self.waitForExit(within: .seconds(5))
  }

  private final class ExitRecord: Sendable {
    let value = Mutex<PythonExit?>(nil)
  }
}

/// A Python subprocess that did not do what the test needs from it.
struct PythonPeerError: Error, CustomStringConvertible {
  var description: String
}

/// Starts `echo_server.py --port 0`, runs `body` with its port, and stops the server when `body`
/// returns or throws. After `limit` the server is stopped anyway, which fails whatever call is
/// still waiting on it, so that no test hangs on a peer that never answers.
func withPythonEchoServer<Result: Sendable>(
  limit: Duration = .seconds(60),
  sourceLocation: SourceLocation = #_sourceLocation,
  _ body: (_ port: Int) async throws -> Result
) async throws -> Result {
  try PythonPeer.requireSetUp(sourceLocation: sourceLocation)
  let server = try PythonProcess(script: "echo_server.py", arguments: ["--port", "0"])
  let watchdog = Task {
    try await Task.sleep(for: limit)
    Issue.record("echo_server.py was still serving after \(limit); stopped it", sourceLocation: sourceLocation)
    await server.stop()
  }
  defer { watchdog.cancel() }

  let result: Result
  do {
    let line = await server.firstLine(within: .seconds(30))
    guard let line, line.hasPrefix("listening on "), let colon = line.lastIndex(of: ":"),
      let port = Int(line[line.index(after: colon)...])
    else {
      await server.stop()
      throw PythonPeerError(
        description: "echo_server.py did not report a port (first line: \(line ?? "none")); output:\n\(server.output)"
      )
    }
    result = try await body(port)
  } catch {
    await server.stop()
    throw error
  }

  // The server's own contract: SIGTERM ends it cleanly.
  let exit = await server.stop()
  #expect(
    exit == .success,
    "echo_server.py ended with \(exit.map(String.init(describing:)) ?? "no exit") after SIGTERM; output:\n\(server.output)",
    sourceLocation: sourceLocation
  )
  return result
}
