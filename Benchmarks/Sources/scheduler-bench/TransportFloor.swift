// The transport floor: what a placement's gRPC calls cost when nothing else is done, measured in
// the same run as the real cells, on the same cores.
//
// A placement is four unary calls over the shim: the caller's Schedule, the scheduler's Reserve
// at quota inside it, the caller's Release, and the scheduler's Release at quota inside that. The
// floor makes the same four, in the same shape, between bare servers that do no work: this bench
// calls a relay process twice per placement, and the relay makes one call to an echo process
// inside each, as maas-scheduler calls maas-quota (straight through `ShimClientTransport`, with
// the runtime's protobuf coders). No Postgres, no placement, no service runtime (logging,
// metrics, health): an upper bound of what maas-scheduler and maas-quota can reach on this
// machine for as long as each placement makes these four calls.
//
//   scheduler-bench serve-floor [--upstream PORT]   an echo server, or with --upstream a relay to one
import BenchSupport
import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import MaaSRuntime
import MaaSTesting

typealias Echo = Maas_Echo_V1_Echo

// MARK: - Servers

/// Serves Echo until SIGTERM: answered here, or (with `--upstream PORT`) by the echo server at
/// that port, called once per Get.
func serveFloor(_ arguments: ArraySlice<String>) async throws {
  var upstream: Int?
  try readValueFlags(arguments) { flag, value in
    guard flag == "--upstream", let port = Int(value) else { return false }
    upstream = port
    return true
  }
  // A bench server: SIGTERM ends it at once, with status 0 (there is nothing to drain).
  signal(SIGTERM, SIG_IGN)
  let terminate = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .main)
  terminate.setEventHandler { exit(0) }
  terminate.resume()

  let server = ShimServerTransport(host: "127.0.0.1", port: 0)
  let announce: @Sendable () async throws -> Void = {
    let port = try await server.listeningPort()
    FileHandle.standardOutput.write(Data("listening on 127.0.0.1:\(port)\n".utf8))
    try await Task.sleep(for: .seconds(86_400))
  }
  if let upstream {
    let client = ShimClientTransport(target: "127.0.0.1:\(upstream)")
    try await withGRPCClient(transport: client) { _ in
      try await withGRPCServer(transport: server, services: [RelayService(upstream: client)]) { _ in try await announce() }
    }
  } else {
    try await withGRPCServer(transport: server, services: [EchoService()]) { _ in try await announce() }
  }
}

/// Get answers what the upstream's Get answers; the streaming calls are not served.
struct RelayService: Echo.SimpleServiceProtocol {
  let upstream: ShimClientTransport
  /// A deadline with each call, as maas-scheduler's quota calls carry one.
  let metadata = CallTimeout(.seconds(5)).metadata

  func get(request: Maas_Echo_V1_EchoRequest, context: ServerContext) async throws -> Maas_Echo_V1_EchoResponse {
    try await self.upstream.unary(
      request, metadata: self.metadata, descriptor: Echo.Method.Get.descriptor, answering: Maas_Echo_V1_EchoResponse.self)
  }

  func expand(
    request: Maas_Echo_V1_EchoRequest, response: RPCWriter<Maas_Echo_V1_EchoResponse>, context: ServerContext
  ) async throws {
    throw RPCError(code: .unimplemented, message: "the floor relays Get only")
  }

  func collect(request: RPCAsyncSequence<Maas_Echo_V1_EchoRequest, any Error>, context: ServerContext) async throws
    -> Maas_Echo_V1_EchoResponse
  {
    throw RPCError(code: .unimplemented, message: "the floor relays Get only")
  }

  func update(
    request: RPCAsyncSequence<Maas_Echo_V1_EchoRequest, any Error>, response: RPCWriter<Maas_Echo_V1_EchoResponse>,
    context: ServerContext
  ) async throws {
    throw RPCError(code: .unimplemented, message: "the floor relays Get only")
  }
}

// MARK: - Load

/// The floor's cells, by callers.
struct FloorReport {
  var cells: [String: Cell]

  /// The cell with the most placements/s.
  var best: (callers: Int, cell: Cell)? { bestCell(self.cells) }

  func printTable() {
    print("Transport floor: the same four unary calls per placement over the shim (bench -> relay -> echo twice), servers"
      + " doing nothing else; the relay stands in the maas-scheduler column, the echo server in maas-quota's")
    print("")
    printTableHeader(
      ["callers", "placements/s", "pair p50 (ms)", "pair p99 (ms)", "Schedule p50", "Schedule p99", "errors", "/ 2,000 goal",
       "bench µs", "relay µs", "echo µs", "machine busy"])
    for callers in concurrencies {
      guard let cell = self.cells[String(callers)] else { continue }
      let cpu = cell.cpuPerPlacement
      printTableRow(
        [String(callers), format(cell.pair.perSecond)] + cell.pair.latencyCells + cell.schedule.latencyCells
          + [String(cell.pair.errors), format(cell.pair.perSecond / goalPlacementsPerSecond, 2)]
          + ["bench", "maas-scheduler", "maas-quota"].map { format(cpu[$0] ?? 0) }
          + ["\(format(cell.cpu.machineBusyShare * 100))%"])
    }
    print("")
  }
}

/// Starts the echo and relay processes, runs a cell of floor placements at each concurrency, and
/// stops them. `cpu` counts the relay as maas-scheduler and the echo server as maas-quota, the
/// parts they stand for.
func measureFloor(cluster: BenchCluster, options: Options, logDirectory: String) async throws -> FloorReport {
  let executable = programDirectory.appendingPathComponent("scheduler-bench").path
  let echo = try ServiceProcess.launch(
    "floor-echo", executable: executable, arguments: ["serve-floor"], logPath: logDirectory + "/scheduler-floor-echo.log")
  defer { echo.stop() }
  let relay = try ServiceProcess.launch(
    "floor-relay", executable: executable, arguments: ["serve-floor", "--upstream", String(echo.port)],
    logPath: logDirectory + "/scheduler-floor-relay.log")
  defer { relay.stop() }
  let cpu = CPUAccounting(
    services: [("maas-scheduler", relay.pid), ("maas-quota", echo.pid)], postmaster: try cluster.postmasterPID())
  let timeout = CallTimeout(callTimeout)
  return try await withGRPCClient(transport: ShimClientTransport(target: relay.target)) { channel in
    let relayClient = Echo.Client(wrapping: channel)
    let steps = StepLatencies()
    var cells: [String: Cell] = [:]
    for concurrency in concurrencies {
      note("transport floor, \(concurrency) callers")
      let call: Call = { phase, _, n, _ in
        let request = Maas_Echo_V1_EchoRequest.with { $0.text = "floor-\(n)" }
        let clock = ContinuousClock()
        let start = clock.now
        do {
          let scheduled = try await relayClient.get(request, metadata: timeout.metadata)
          let middle = clock.now
          let released = try await relayClient.get(request, metadata: timeout.metadata)
          guard scheduled.text == request.text, released.text == request.text else {
            return .failed(BenchError("the relay answered \(scheduled.text) and \(released.text) to \(request.text)"))
          }
          steps.record(phase: phase, schedule: start.duration(to: middle).nanoseconds, release: middle.duration(to: clock.now).nanoseconds)
          return .answered(window: nil)
        } catch {
          return .failed(error)
        }
      }
      let (measured, usage) = await cpu.measureCallers(
        cell: "floor", concurrency: concurrency, seconds: options.seconds, warmUpSeconds: options.warmUpSeconds, call: call)
      cells[String(concurrency)] = Cell(
        measured, label: "floor", callers: concurrency, steps: steps, cpu: usage, fleetHeartbeats: nil)
    }
    return FloorReport(cells: cells)
  }
}
