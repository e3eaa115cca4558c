import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import MaaSTesting
import Testing

@Suite("The maas-echo-server executable")
struct EchoServerProcessTests {
  @Test("It prints its port, answers health checks and exits 0 on SIGTERM")
  func servesAndStops() async throws {
    let server = try EchoServerProcess(environment: [
      "MAAS_ECHO_HOST": "127.0.0.1",
      "MAAS_ECHO_PORT": "0",
      "MAAS_ECHO_LOG_FORMAT": "json",
    ])
    defer { server.kill() }

    let line = try #require(try await server.firstLine(), "the server printed nothing on stdout")
    let port = try #require(line.wholeMatch(of: /listening on 127\.0\.0\.1:(\d+)/).flatMap { Int($0.1) })
    let statuses = try await withGRPCClient(transport: ShimClientTransport(target: "127.0.0.1:\(port)")) { client in
      let health = Grpc_Health_V1_Health.Client(wrapping: client)
      let overall = try await health.check(.with { $0.service = "" })
      let echo = try await health.check(.with { $0.service = "maas.echo.v1.Echo" })
      return [overall.status, echo.status]
    }
    #expect(statuses == [.serving, .serving])

    server.signal(SIGTERM)
    let exit = try await server.exitStatus()
    #expect(exit == .exited(0))
    // Every stderr line is a JSON log line, and the bound address was logged.
    let logs = server.standardError().split(separator: "\n")
    #expect(!logs.isEmpty)
    for log in logs {
      #expect((try? JSONSerialization.jsonObject(with: Data(log.utf8))) is [String: Any], "not JSON: \(log)")
    }
    #expect(logs.contains { $0.contains(#""message":"listening""#) && $0.contains(#""port":"\#(port)""#) })
  }

  @Test("It exits 2 and names every invalid variable before serving")
  func refusesInvalidConfiguration() async throws {
    let server = try EchoServerProcess(environment: [
      "MAAS_ECHO_PORT": "abc",
      "MAAS_ECHO_LOG_FORMAT": "xml",
    ])
    defer { server.kill() }

    #expect(try await server.firstLine() == nil)
    #expect(try await server.exitStatus() == .exited(2))
    let message = server.standardError()
    #expect(message.contains("MAAS_ECHO_PORT"))
    #expect(message.contains("\"abc\""))
    #expect(message.contains("MAAS_ECHO_LOG_FORMAT"))
  }
}

/// The built `maas-echo-server` running as a child process, its stdout and stderr piped.
final class EchoServerProcess: Sendable {
  enum Exit: Equatable, Sendable {
    case exited(Int32)
    case signalled(Int32)
  }

  private let process: Process
  private let output = Pipe()
  private let errors = Pipe()
  private let exited: AsyncStream<Exit>

  /// Starts the binary with the test's environment, minus any `MAAS_ECHO_*` the developer has
  /// set, plus `environment`.
  init(environment: [String: String]) throws {
    let process = Process()
    process.executableURL = try Self.binary()
    var merged = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("MAAS_ECHO_") }
    merged.merge(environment) { _, new in new }
    process.environment = merged
    process.standardOutput = self.output
    process.standardError = self.errors
    let (exited, exit) = AsyncStream.makeStream(of: Exit.self, bufferingPolicy: .bufferingNewest(1))
    process.terminationHandler = { process in
      exit.yield(process.terminationReason == .exit
        ? .exited(process.terminationStatus) : .signalled(process.terminationStatus))
      exit.finish()
    }
    self.process = process
    self.exited = exited
    try process.run()
  }

  /// `MAAS_ECHO_SERVER_BINARY` when set, else the built `maas-echo-server`.
  static func binary() throws -> URL {
    if let path = ProcessInfo.processInfo.environment["MAAS_ECHO_SERVER_BINARY"], !path.isEmpty {
      return URL(fileURLWithPath: path)
    }
    return try builtProduct(named: "maas-echo-server")
  }

  /// The first line on stdout without its newline, or nil when stdout closes first. Bounded:
  /// on timeout the process is killed, which closes the pipe and ends the read.
  func firstLine(within limit: Duration = .seconds(60)) async throws -> String? {
    let handle = self.output.fileHandleForReading
    let watchdog = Task {
      try await Task.sleep(for: limit)
      self.kill()
    }
    defer { watchdog.cancel() }
    let line = await Task.detached {
      // Blocking reads belong off the cooperative pool's few threads.
      var bytes: [UInt8] = []
      while true {
        let chunk = handle.readData(ofLength: 1)
        guard let byte = chunk.first else { return bytes.isEmpty ? nil : bytes }
        if byte == UInt8(ascii: "\n") { return bytes }
        bytes.append(byte)
      }
    }.value
    return line.map { String(decoding: $0, as: UTF8.self) }
  }

  /// Sends `signal` to the process.
  func signal(_ signal: Int32) {
    Foundation.kill(self.process.processIdentifier, signal)
  }

  /// SIGKILL, if it is still running; for cleanup and watchdogs.
  func kill() {
    if self.process.isRunning { self.signal(SIGKILL) }
  }

  /// How the process ended. Bounded: after `limit` it is killed, and the test fails on the
  /// `.signalled(SIGKILL)` that follows.
  func exitStatus(within limit: Duration = .seconds(60)) async throws -> Exit {
    let watchdog = Task {
      try await Task.sleep(for: limit)
      self.kill()
    }
    defer { watchdog.cancel() }
    var iterator = self.exited.makeAsyncIterator()
    guard let exit = await iterator.next() else { throw TimedOut(what: "the process to exit") }
    return exit
  }

  /// Everything written to stderr; call after the process has exited.
  func standardError() -> String {
    String(decoding: self.errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  }
}
