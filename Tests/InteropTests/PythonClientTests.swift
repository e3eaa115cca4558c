import GRPCCore
import GRPCShimTransport
import MaaSRuntime
import MaaSTesting
import Testing

/// Python grpcio calling in: Tests/Interop/echo_client.py runs its checks (all four RPC kinds,
/// metadata both ways, error statuses, a deadline, an unknown method, health) against a Swift
/// server on the shim transport.
@Suite("Python grpcio calling a Swift server")
struct PythonClientTests {
  @Test("A Python grpcio client calls a Swift server over the shim")
  func pythonClientCallsSwiftServer() async throws {
    try PythonPeer.requireSetUp()
    let transport = ShimServerTransport(host: "127.0.0.1", port: 0)
    try await withGRPCServer(transport: transport, services: [EchoService(), HealthService()]) { _ in
      let port = try await transport.listeningPort()
      let client = try ServerProcess.python(script: "echo_client.py", arguments: ["--target", "127.0.0.1:\(port)"])
      var exit = await client.waitForExit(within: .seconds(60))
      if exit == nil {
        Issue.record("echo_client.py was still running after 60 s; stopped it")
        exit = await client.stop()
      }
      let output = client.standardOutput
      #expect(exit == .exited(0), "echo_client.py ended with \(exit.map(String.init(describing:)) ?? "no exit"); output:\n\(output)")
      let summary = output.split(separator: "\n").last { $0.hasSuffix(" failed") && $0.contains(" passed, ") }
      #expect(summary?.hasSuffix(" passed, 0 failed") == true, "no \"N passed, 0 failed\" line; output:\n\(output)")
      #expect(summary?.hasPrefix("0 passed") == false, "echo_client.py ran no check; output:\n\(output)")
    }
  }
}
