import Foundation
import MaaSTesting
import Testing

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

extension ServerProcess {
  /// `python Tests/Interop/<script> <arguments...>`, from the repository's root, its stderr
  /// interleaved with its stdout (as a person would see them).
  static func python(script: String, arguments: [String]) throws -> ServerProcess {
    try ServerProcess(
      executable: URL(fileURLWithPath: PythonPeer.python), arguments: [PythonPeer.script(script)] + arguments,
      exactEnvironment: PythonPeer.environment, directory: repositoryRoot, mergingStandardError: true)
  }
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
  let server = try ServerProcess.python(script: "echo_server.py", arguments: ["--port", "0"])
  let watchdog = Task {
    try await Task.sleep(for: limit)
    Issue.record("echo_server.py was still serving after \(limit); stopped it", sourceLocation: sourceLocation)
    await server.stop()
  }
  defer { watchdog.cancel() }

  let result: Result
  do {
    // Like the services, the peer prints `listening on HOST:PORT` once bound.
    result = try await body(try await server.listeningPort(within: .seconds(30)))
  } catch {
    await server.stop()
    throw error
  }

  // The server's own contract: SIGTERM ends it cleanly.
  let exit = await server.stop()
  #expect(
    exit == .exited(0),
    "echo_server.py ended with \(exit.map(String.init(describing:)) ?? "no exit") after SIGTERM; output:\n\(server.standardOutput)",
    sourceLocation: sourceLocation
  )
  return result
}
