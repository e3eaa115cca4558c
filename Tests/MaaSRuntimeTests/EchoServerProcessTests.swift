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
    let server = try ServerProcess(echoEnvironment: [
      "MAAS_ECHO_HOST": "127.0.0.1",
      "MAAS_ECHO_PORT": "0",
      "MAAS_ECHO_LOG_FORMAT": "json",
    ])
    defer { server.kill() }

    let line = try #require(await server.firstLine(), "the server printed nothing on stdout")
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
    let logs = await server.standardError().split(separator: "\n")
    #expect(!logs.isEmpty)
    for log in logs {
      #expect((try? JSONSerialization.jsonObject(with: Data(log.utf8))) is [String: Any], "not JSON: \(log)")
    }
    #expect(logs.contains { $0.contains(#""message":"listening""#) && $0.contains(#""port":"\#(port)""#) })
  }

  @Test("It exits 2 and names every invalid variable before serving")
  func refusesInvalidConfiguration() async throws {
    let server = try ServerProcess(echoEnvironment: [
      "MAAS_ECHO_PORT": "abc",
      "MAAS_ECHO_LOG_FORMAT": "xml",
    ])
    defer { server.kill() }

    #expect(await server.firstLine() == nil)
    #expect(try await server.exitStatus() == .exited(2))
    let message = await server.standardError()
    #expect(message.contains("MAAS_ECHO_PORT"))
    #expect(message.contains("\"abc\""))
    #expect(message.contains("MAAS_ECHO_LOG_FORMAT"))
  }
}

extension ServerProcess {
  /// The diagnostic server, without any `MAAS_ECHO_*` the developer has set.
  convenience init(echoEnvironment environment: [String: String]) throws {
    try self.init(binary: Self.binary(), environmentPrefix: "MAAS_ECHO_", environment: environment)
  }

  /// `MAAS_ECHO_SERVER_BINARY` when set, else the built `maas-echo-server`.
  static func binary() throws -> URL {
    if let path = ProcessInfo.processInfo.environment["MAAS_ECHO_SERVER_BINARY"], !path.isEmpty {
      return URL(fileURLWithPath: path)
    }
    return try builtProduct(named: "maas-echo-server")
  }
}
