public import Foundation
import Synchronization

/// A child process that serves something (a built server, or a Python peer), its stdout and
/// stderr piped and read as it runs (`PipeCollector`): how tests start `maas-echo-server`, the
/// services and the Python grpcio peers, to check what they print, how they exit and how several
/// replicas behave together.
///
/// Every wait here is bounded and polls without blocking Swift's cooperative threads: the
/// blocking pipe reads run on the collectors' threads, and the exit is recorded by the
/// termination handler, so it can be asked for any number of times.
public final class ServerProcess: Sendable {
  public enum Exit: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signalled(Int32)

    public var description: String {
      switch self {
      case .exited(let status): "exit status \(status)"
      case .signalled(let signal): "killed by signal \(signal)"
      }
    }
  }

  private let process: Process
  private let output: PipeCollector
  /// Nil when stderr goes into the stdout pipe (`mergingStandardError`).
  private let errors: PipeCollector?
  private let exited: ExitRecord

  /// Starts `binary` with the test's environment, minus every variable starting with
  /// `environmentPrefix` (what the developer has set must not leak in), plus `environment`.
  public convenience init(
    binary: URL, arguments: [String] = [], environmentPrefix: String, environment: [String: String]
  ) throws {
    var merged = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix(environmentPrefix) }
    merged.merge(environment) { _, new in new }
    try self.init(executable: binary, arguments: arguments, exactEnvironment: merged)
  }

  /// Starts `executable` with exactly `exactEnvironment`, in `directory` (the test's own when
  /// nil), stdin at /dev/null.
  /// - Parameter mergingStandardError: stderr goes into the stdout pipe, so the output reads
  ///   interleaved, as a person would see it (for scripts that report on both).
  public init(
    executable: URL, arguments: [String], exactEnvironment: [String: String], directory: String? = nil,
    mergingStandardError: Bool = false
  ) throws {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = exactEnvironment
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    process.standardInput = FileHandle.nullDevice
    let output = Pipe()
    let errors = mergingStandardError ? nil : Pipe()
    process.standardOutput = output
    process.standardError = errors ?? output
    let exited = ExitRecord()
    self.exited = exited
    process.terminationHandler = { process in
      let exit: Exit =
        process.terminationReason == .exit ? .exited(process.terminationStatus) : .signalled(process.terminationStatus)
      exited.value.withLock { $0 = exit }
    }
    self.process = process
    try process.run()
    // Read from the start: a server whose log fills an unread pipe blocks on its next line.
    self.output = PipeCollector(reading: output.fileHandleForReading)
    self.errors = errors.map { PipeCollector(reading: $0.fileHandleForReading) }
  }

  public var pid: Int32 { self.process.processIdentifier }

  /// How the process ended; nil while it runs.
  public var exit: Exit? { self.exited.value.withLock { $0 } }

  /// Everything on stdout so far (with stderr interleaved when merging).
  public var standardOutput: String { self.output.text }

  /// The first line on stdout without its newline, or nil when stdout closes first. Bounded:
  /// after `limit` the process is killed, and this answers nil.
  public func firstLine(within limit: Duration = .seconds(60)) async -> String? {
    guard let line = await self.output.firstLine(within: limit) else {
      if !self.output.ended { self.kill() }
      return nil
    }
    return line
  }

  /// Sends `signal`, unless the process has ended (its pid may belong to another by then).
  public func signal(_ signal: Int32) {
    if self.exit == nil { Foundation.kill(self.process.processIdentifier, signal) }
  }

  /// SIGKILL, if it is still running; for cleanup and watchdogs.
  public func kill() { self.signal(SIGKILL) }

  /// How the process ended, once it has and its pipes are read to the end; nil if it still runs
  /// after `limit`.
  public func waitForExit(within limit: Duration) async -> Exit? {
    _ = await waitUntil(within: limit) { self.exit != nil && self.output.ended && self.errors?.ended != false }
    return self.exit
  }

  /// How the process ended. Bounded: after `limit` it is killed, and the test fails on the
  /// `.signalled(SIGKILL)` that follows.
  public func exitStatus(within limit: Duration = .seconds(60)) async throws -> Exit {
    if let exit = await self.waitForExit(within: limit) { return exit }
    self.kill()
    guard let exit = await self.waitForExit(within: .seconds(10)) else { throw ServerProcessError.timedOut("the process to exit") }
    return exit
  }

  /// Stops the process: SIGTERM, then SIGKILL if it still runs after `grace`. Returns how it
  /// ended (nil only if not even SIGKILL ended it within seconds).
  @discardableResult
  public func stop(grace: Duration = .seconds(5)) async -> Exit? {
    if let exit = self.exit { return exit }
    self.signal(SIGTERM)
    if let exit = await self.waitForExit(within: grace) { return exit }
    self.kill()
    return await self.waitForExit(within: .seconds(5))
  }

  /// The end of what the process has written to stderr so far (its latest log lines, as UTF-8):
  /// for the message of a test that fails while the process still runs.
  public func standardErrorTail(bytes: Int = 4_000) -> String {
    String(decoding: (self.errors ?? self.output).data.suffix(bytes), as: UTF8.self)
  }

  /// Everything written to stderr, once the process has closed it (exited); what came so far if
  /// that takes longer than `limit`.
  public func standardError(within limit: Duration = .seconds(10)) async -> String {
    String(decoding: await (self.errors ?? self.output).all(within: limit), as: UTF8.self)
  }

  /// Where the termination handler, which outlives `init`, records the exit.
  private final class ExitRecord: Sendable {
    let value = Mutex<Exit?>(nil)
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
