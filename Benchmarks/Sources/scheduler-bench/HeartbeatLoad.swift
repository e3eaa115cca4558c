import BenchSupport
import GRPCCore
import GRPCShimTransport
import MaaSContracts

/// The grace a production scheduler runs with (MAAS_SCHEDULER_HEARTBEAT_GRACE_SECONDS' default),
/// and the interval it asks nodes to heartbeat at: a third of it.
let defaultHeartbeatGraceSeconds = 30.0
let defaultHeartbeatIntervalSeconds = defaultHeartbeatGraceSeconds / 3

/// Heartbeats a fleet of `nodes` sends at the default interval: the load a scheduler carries
/// beside its placements just to keep the fleet READY.
func heartbeatsNeeded(nodes: Int) -> Double { Double(nodes) / defaultHeartbeatIntervalSeconds }

/// The callers of the cell that measures the heartbeats a scheduler sustains.
let heartbeatCallers = 64

/// One Heartbeat of a node drawn at random from the first `nodes`; answered when the node is
/// READY (nothing holds or cordons the bench's nodes between cells).
func heartbeatCall(scheduler: SchedulerClient, nodes: Int, timeout: CallTimeout) -> Call {
  { _, _, _, random in
    let name = nodeName(Int(random.next() % UInt64(nodes)))
    do {
      let answer = try await scheduler.heartbeat(.with { $0.nodeName = name }, metadata: timeout.metadata)
      guard answer.state == .ready else { return .failed(BenchError("Heartbeat of \(name) answered \(answer.state)")) }
      return .answered(window: nil)
    } catch {
      return .failed(error)
    }
  }
}

/// The heartbeat cell at one fleet size, with the CPU of every process per heartbeat.
struct HeartbeatCell: Encodable {
  var nodes: Int
  var measurement: BenchMeasurement
  var cpu: CPUUsage
  var firstError: String?

  var needed: Double { heartbeatsNeeded(nodes: self.nodes) }
  var cpuPerHeartbeat: [String: Double] { self.cpu.microsecondsPerOperation(self.measurement.perSecond) }
  /// Cores the scheduler and its Postgres backends would spend on the fleet's heartbeats alone.
  var coresForNeeded: Double {
    let perHeartbeat = self.cpuPerHeartbeat
    return ((perHeartbeat["maas-scheduler"] ?? 0) + (perHeartbeat["pg:maas-scheduler"] ?? 0)) * self.needed / 1_000_000
  }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: ReportKey.self)
    try self.measurement.encode(into: &container, rateKey: "heartbeats_per_s", countKey: "heartbeats")
    try container.encode(heartbeatCallers, forKey: "callers")
    try container.encode(self.needed, forKey: "needed_per_s_at_default_interval")
    try container.encode(self.coresForNeeded, forKey: "scheduler_cores_for_needed")
    try container.encode(self.cpu, forKey: "cpu")
    try container.encode(self.cpuPerHeartbeat, forKey: "cpu_us_per_heartbeat")
    try container.encodeIfPresent(self.firstError, forKey: "first_error")
  }
}

func measureHeartbeats(
  nodes: Int, scheduler: SchedulerClient, cpu: CPUAccounting, options: Options, timeout: CallTimeout
) async -> HeartbeatCell {
  let (measured, usage) = await cpu.measureCallers(
    cell: "n\(nodes)-heartbeat", concurrency: heartbeatCallers, seconds: options.seconds, warmUpSeconds: options.warmUpSeconds,
    call: heartbeatCall(scheduler: scheduler, nodes: nodes, timeout: timeout))
  return HeartbeatCell(nodes: nodes, measurement: measured.measurement, cpu: usage, firstError: measured.run.firstError)
}
