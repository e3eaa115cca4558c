public import Foundation

/// A built server executable running as a child process, its stdout and stderr piped and read
/// as it runs (`PipeCollector`): how tests start `maas-echo-server` and the services to check
/// what they print, how they exit and how several replicas behave together.
public final class ServerProcess: Sendable {
  public enum Exit: Equatable, Sendable {
    case exited(Int32)
    case signalled(Int32)
  }

  private let process: Process
  private let output: PipeCollector
  private let errors: PipeCollector
  private let exited: AsyncStream<Exit>

  /// Starts `binary` with the test's environment, minus every variable starting with
  /// `environmentPrefix` (what the developer has set must not leak in), plus `environment`.
  public init(binary: URL, arguments: [String] = [], environmentPrefix: String, environment: [String: String]) throws {
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    var merged = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix(environmentPrefix) }
    merged.merge(environment) { _, new in new }
    process.environment = merged
    let (output, errors) = (Pipe(), Pipe())
    process.standardOutput = output
    process.standardError = errors
    let (exited, exit) = AsyncStream.makeStream(of: Exit.self, bufferingPolicy: .bufferingNewest(1))
    process.terminationHandler = { process in
      exit.yield(process.terminationReason == .exit
        ? .exited(process.terminationStatus) : .signalled(process.terminationStatus))
      exit.finish()
    }
    self.process = process
    self.exited = exited
    try process.run()
    // Read from the start: a server whose log fills an unread pipe blocks on its next line.
    self.output = PipeCollector(reading: output.fileHandleForReading)
    self.errors = PipeCollector(reading: errors.fileHandleForReading)
  }

  /// The first line on stdout without its newline, or nil when stdout closes first. Bounded:
  /// after `limit` the process is killed, and this answers nil.
  public func firstLine(within limit: Duration = .seconds(60)) async -> String? {
    guard let line = await self.output.firstLine(within: limit) else {
      if !self.output.ended { self.kill() }
      return nil
    }
    return line
  }

  /// Sends `signal` to the process.
  public func signal(_ signal: Int32) {
    Foundation.kill(self.process.processIdentifier, signal)
  }

  /// SIGKILL, if it is still running; for cleanup and watchdogs.
  public func kill() {
    if self.process.isRunning { self.signal(SIGKILL) }
  }

  /// How the process ended. Bounded: after `limit` it is killed, and the test fails on the
  /// `.signalled(SIGKILL)` that follows.
  public func exitStatus(within limit: Duration = .seconds(60)) async throws -> Exit {
    let watchdog = Task {
      try await Task.sleep(for: limit)
      self.kill()
    }
    defer { watchdog.cancel() }
    var iterator = self.exited.makeAsyncIterator()
    guard let exit = await iterator.next() else { throw ServerProcessError.timedOut("the process to exit") }
    return exit
  }

  /// The end of what the process has written to stderr so far (its latest log lines, as UTF-8):
  /// for the message of a test that fails while the process still runs.
  public func standardErrorTail(bytes: Int = 4_000) -> String {
    String(decoding: self.errors.data.suffix(bytes), as: UTF8.self)
  }

  /// Everything written to stderr, once the process has closed it (exited); what came so far if
  /// that takes longer than `limit`.
  public func standardError(within limit: Duration = .seconds(10)) async -> String {
    String(decoding: await self.errors.all(within: limit), as: UTF8.self)
  }
}

public enum ServerProcessError: Error, CustomStringConvertible {
  case timedOut(String)
  case noListeningLine(String)

  public var description: String {
    switch self {
    case .timedOut(let what): "timed out waiting for \(what)"
    case .noListeningLine(let stderr): "the server printed no \"listening on\" line; stderr:\n\(stderr)"
    }
  }
}

extension ServerProcess {
  /// Waits for the `listening on HOST:PORT` line every MaaS server prints once bound and returns
  /// the port; on anything else, kills the server and throws with what it wrote to stderr.
  public func listeningPort(within limit: Duration = .seconds(120)) async throws -> Int {
    let line = await self.firstLine(within: limit)
    guard let line, line.hasPrefix("listening on "), let port = line.split(separator: ":").last.flatMap({ Int($0) }) else {
      self.kill()
      _ = try? await self.exitStatus(within: .seconds(10))
      throw ServerProcessError.noListeningLine(await self.standardError())
    }
    return port
  }
}

extension ServerProcess {
  /// A `maas-quota` process on a fresh database of its own (`databaseNamed`), bound to a free
  /// loopback port: the real quota service the registry's and the scheduler's process tests call.
  /// - Returns: the process (the caller kills it) and its `HOST:PORT`.
  public static func quota(databaseNamed name: String) async throws -> (process: ServerProcess, target: String) {
    let database = try await PostgresFixture.shared().createDatabase(named: name)
    let quota = try ServerProcess(binary: try builtProduct(named: "maas-quota"), environmentPrefix: "MAAS_QUOTA_", environment: [
      "MAAS_QUOTA_DATABASE_URL": database.appURL,
      "MAAS_QUOTA_MIGRATION_DATABASE_URL": database.ownerURL,
      "MAAS_QUOTA_HOST": "127.0.0.1", "MAAS_QUOTA_PORT": "0", "MAAS_QUOTA_LOG_LEVEL": "warning",
    ])
    do {
      return (quota, "127.0.0.1:\(try await quota.listeningPort())")
    } catch {
      quota.kill()
      throw error
    }
  }
}
