import Foundation
import MaaSTesting
import Testing

@Suite("ServerProcess runs a child server and says how it ended")
struct ServerProcessTests {
  @Test("the exit is recorded once and can be asked for again")
  func exitAskedTwice() async throws {
    let child = try Self.shell("echo ready; exit 3")
    #expect(await child.firstLine(within: .seconds(60)) == "ready")
    #expect(try await child.exitStatus(within: .seconds(60)) == .exited(3))
    #expect(try await child.exitStatus(within: .seconds(60)) == .exited(3))
    #expect(child.exit == .exited(3))
  }

  @Test("stop sends SIGTERM, and SIGKILL when the child ignores it past the grace")
  func stopEscalates() async throws {
    // A child of Foundation's Process started from async code inherits SIGTERM blocked, as the
    // services do; like them, this one handles it.
    let polite = try Self.shell("trap 'exit 7' TERM; echo up; while :; do sleep 0.05; done")
    #expect(await polite.firstLine(within: .seconds(60)) == "up")
    #expect(await polite.stop(grace: .seconds(30)) == .exited(7))

    let stubborn = try Self.shell("trap '' TERM; echo up; while :; do sleep 0.05; done")
    #expect(await stubborn.firstLine(within: .seconds(60)) == "up")
    #expect(await stubborn.stop(grace: .milliseconds(200)) == .signalled(SIGKILL))
  }

  @Test("waitForExit answers nil while the child runs, without stopping it")
  func waitForExitIsBounded() async throws {
    let child = try Self.shell("echo up; exec sleep 60")
    #expect(await child.firstLine(within: .seconds(60)) == "up")
    #expect(await child.waitForExit(within: .milliseconds(50)) == nil)
    #expect(child.exit == nil)
    child.kill()
    #expect(try await child.exitStatus(within: .seconds(60)) == .signalled(SIGKILL))
  }

  @Test("merging puts stderr into stdout in the order written; apart, each has its own")
  func standardErrorMergedOrApart() async throws {
    let script = "echo one; echo two >&2; echo three"
    let merged = try Self.shell(script, merging: true)
    #expect(try await merged.exitStatus(within: .seconds(60)) == .exited(0))
    #expect(merged.standardOutput == "one\ntwo\nthree\n")

    let apart = try Self.shell(script)
    #expect(try await apart.exitStatus(within: .seconds(60)) == .exited(0))
    #expect(apart.standardOutput == "one\nthree\n")
    #expect(await apart.standardError() == "two\n")
  }

  private static func shell(_ script: String, merging: Bool = false) throws -> ServerProcess {
    try ServerProcess(
      executable: URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", script],
      exactEnvironment: ProcessInfo.processInfo.environment, mergingStandardError: merging)
  }
}
