// Unary round trips through three server paths, side by side in one run:
//
//   shim  GRPCServer over ShimServerTransport (grpc C++), called by GRPCClient over the shim
//   nio   GRPCServer over grpc-swift-nio-transport's HTTP/2 (the peer a Swift user would pick),
//         called by GRPCClient over the same NIO transport
//   c++   the shim's C++ echo server with no Swift on the server path (the limit the Swift layer
//         is measured against), called by GRPCClient over the shim
//
// Each server runs in its own process; the load runs in this one. Usage:
//   transport-bench run --harness PATH [--seconds S] [--json PATH]
//   transport-bench serve shim|nio
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCShimTransport
import MaaSContracts
import MaaSTesting

typealias Echo = Maas_Echo_V1_Echo

// MARK: - Servers

func serve(_ kind: String) async throws {
  // Started by Foundation's Process from async code, this process inherits blocked SIGTERM and
  // SIGINT; unblocked, the parent's terminate() ends it as it should.
  var stopSignals = sigset_t()
  sigemptyset(&stopSignals)
  sigaddset(&stopSignals, SIGTERM)
  sigaddset(&stopSignals, SIGINT)
  pthread_sigmask(SIG_UNBLOCK, &stopSignals, nil)
  switch kind {
  case "shim":
    let transport = ShimServerTransport(host: "127.0.0.1", port: 0)
    try await withGRPCServer(transport: transport, services: [EchoService()]) { _ in
      announce(port: try await transport.listeningPort())
      try await Task.sleep(for: .seconds(3600))
    }
  case "nio":
    let transport = HTTP2ServerTransport.Posix(
      address: .ipv4(host: "127.0.0.1", port: 0),
      transportSecurity: .plaintext
    )
    try await withGRPCServer(transport: transport, services: [EchoService()]) { _ in
      let address = try await transport.listeningAddress
      announce(port: address.ipv4!.port)
      try await Task.sleep(for: .seconds(3600))
    }
  default:
    fatalError("unknown server kind \(kind)")
  }
}

/// Tells the parent the port, unbuffered: stdout is a pipe here, and stdio would hold the line.
func announce(port: Int) {
  FileHandle.standardOutput.write(Data("listening on 127.0.0.1:\(port)\n".utf8))
}

/// Starts a server process and reads its port from its first line.
func startServer(_ executable: String, _ arguments: [String]) throws -> (Process, Int) {
  let process = Process()
  process.executableURL = URL(fileURLWithPath: executable)
  process.arguments = arguments
  let output = Pipe()
  process.standardOutput = output
  try process.run()
  var line = Data()
  while true {
    let byte = output.fileHandleForReading.readData(ofLength: 1)
    if byte.isEmpty || byte == Data("\n".utf8) { break }
    line.append(byte)
  }
  let text = String(decoding: line, as: UTF8.self)
  guard let port = text.split(separator: ":").last.flatMap({ Int($0) }) else {
    process.terminate()
    throw BenchError("\(executable) did not report a port: \(text)")
  }
  return (process, port)
}

struct BenchError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}

// MARK: - Load

struct Measurement: Codable {
  var qps: Double
  var p50_us: Double
  var p99_us: Double
  var calls: Int
}

/// `concurrency` tasks call Get back to back for `duration` after a warm-up.
func measure(
  client: GRPCClient<some ClientTransport>,
  concurrency: Int,
  duration: Duration
) async throws -> Measurement {
  let echo = Echo.Client(wrapping: client)
  let request = Maas_Echo_V1_EchoRequest.with { $0.text = "ping" }
  let clock = ContinuousClock()

  // Warm-up: connections up, code paths hot.
  let warmUpEnd = clock.now + .milliseconds(500)
  try await withThrowingTaskGroup(of: Void.self) { group in
    for _ in 0..<concurrency {
      group.addTask { while clock.now < warmUpEnd { _ = try await echo.get(request) } }
    }
    try await group.waitForAll()
  }

  let start = clock.now
  let end = start + duration
  let latencies = try await withThrowingTaskGroup(of: [Int64].self) { group in
    for _ in 0..<concurrency {
      group.addTask {
        var samples: [Int64] = []
        samples.reserveCapacity(100_000)
        while true {
          let before = clock.now
          if before >= end { break }
          _ = try await echo.get(request)
          let elapsed = before.duration(to: clock.now)
          samples.append(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        }
        return samples
      }
    }
    return try await group.reduce(into: [Int64]()) { $0.append(contentsOf: $1) }
  }
  let elapsed = start.duration(to: clock.now)
  let seconds = elapsed / .seconds(1)
  let sorted = latencies.sorted()
  func percentile(_ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1_000
  }
  return Measurement(
    qps: Double(sorted.count) / seconds,
    p50_us: percentile(0.50),
    p99_us: percentile(0.99),
    calls: sorted.count
  )
}

func run(harness: String, seconds: Int, jsonPath: String?) async throws {
  let me = CommandLine.arguments[0]
  let (shimServer, shimPort) = try startServer(me, ["serve", "shim"])
  let (nioServer, nioPort) = try startServer(me, ["serve", "nio"])
  let (cppServer, cppPort) = try startServer(harness, ["serve", "0"])
  defer {
    for process in [shimServer, nioServer, cppServer] { process.terminate() }
  }

  let concurrencies = [1, 16, 64]
  let duration = Duration.seconds(seconds)
  var results: [String: [String: Measurement]] = ["shim": [:], "nio": [:], "cpp": [:]]

  // Peers take turns at each concurrency, so drift in the machine's load hits all of them.
  for concurrency in concurrencies {
    let key = String(concurrency)
    results["shim"]![key] = try await withGRPCClient(
      transport: ShimClientTransport(target: "127.0.0.1:\(shimPort)")
    ) { try await measure(client: $0, concurrency: concurrency, duration: duration) }
    results["nio"]![key] = try await withGRPCClient(
      transport: try HTTP2ClientTransport.Posix(
        target: .ipv4(address: "127.0.0.1", port: nioPort),
        transportSecurity: .plaintext
      )
    ) { try await measure(client: $0, concurrency: concurrency, duration: duration) }
    results["cpp"]![key] = try await withGRPCClient(
      transport: ShimClientTransport(target: "127.0.0.1:\(cppPort)")
    ) { try await measure(client: $0, concurrency: concurrency, duration: duration) }
  }

  func format(_ value: Double, _ digits: Int = 0) -> String { String(format: "%.\(digits)f", value) }
  print("Unary Echo.Get round trips, \(seconds) s per cell, servers in their own processes")
  print("")
  print("| concurrency | server | QPS | p50 (µs) | p99 (µs) | QPS / nio |")
  print("|---:|---|---:|---:|---:|---:|")
  for concurrency in concurrencies {
    let key = String(concurrency)
    let nio = results["nio"]![key]!.qps
    for (name, label) in [("shim", "shim (Swift over grpc C++)"), ("nio", "grpc-swift-nio-transport"), ("cpp", "shim, C++ echo server")] {
      let m = results[name]![key]!
      print("| \(concurrency) | \(label) | \(format(m.qps)) | \(format(m.p50_us)) | \(format(m.p99_us)) | \(format(m.qps / nio, 2)) |")
    }
  }
  let ratio = results["shim"]!["64"]!.qps / results["nio"]!["64"]!.qps
  let swiftShare = results["shim"]!["64"]!.qps / results["cpp"]!["64"]!.qps
  print("")
  print("ratio (shim QPS / nio QPS at 64): \(format(ratio, 2))   goal: >= 1.5")
  print("p99 at 64: shim \(format(results["shim"]!["64"]!.p99_us)) µs vs nio \(format(results["nio"]!["64"]!.p99_us)) µs   goal: shim lower")
  print("shim QPS / C++ echo server QPS at 64: \(format(swiftShare, 2))")

  if let jsonPath {
    struct Report: Codable {
      var ratio: Double
      var shim_over_cpp_at_64: Double
      var seconds_per_cell: Int
      var results: [String: [String: Measurement]]
    }
    let report = Report(ratio: ratio, shim_over_cpp_at_64: swiftShare, seconds_per_cell: seconds, results: results)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try encoder.encode(report).write(to: URL(fileURLWithPath: jsonPath))
    print("wrote \(jsonPath)")
  }
}

// MARK: - Entry

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "serve":
  try await serve(arguments.dropFirst().first ?? "")
case "run":
  var harness: String?
  var seconds = 3
  var jsonPath: String?
  var rest = arguments.dropFirst()
  while let flag = rest.popFirst() {
    switch flag {
    case "--harness": harness = rest.popFirst()
    case "--seconds": seconds = rest.popFirst().flatMap { Int($0) } ?? seconds
    case "--json": jsonPath = rest.popFirst()
    default: throw BenchError("unknown flag \(flag)")
    }
  }
  guard let harness else { throw BenchError("--harness PATH is required") }
  try await run(harness: harness, seconds: seconds, jsonPath: jsonPath)
default:
  print("usage: transport-bench run --harness PATH [--seconds S] [--json PATH] | serve shim|nio")
  exit(2)
}
