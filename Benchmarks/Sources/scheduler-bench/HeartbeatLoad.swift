import BenchSupport
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import Synchronization

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
    if let problem = await heartbeat(name, scheduler: scheduler, timeout: timeout) { return .failed(BenchError(problem)) }
    return .answered(window: nil)
  }
}

/// One Heartbeat of node `name`: nil when it answered READY, else what went wrong.
func heartbeat(_ name: String, scheduler: SchedulerClient, timeout: CallTimeout) async -> String? {
  do {
    let answer = try await scheduler.heartbeat(.with { $0.nodeName = name }, metadata: timeout.metadata)
    return answer.state == .ready ? nil : "Heartbeat of \(name) answered \(answer.state)"
  } catch {
    return "\(error)"
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

/// The fleet's own heartbeats, sent beside a placement cell: `heartbeatsNeeded(nodes:)` per
/// second, paced from the start and round-robin over the nodes, as the nodes of a production
/// fleet at the default interval would send them. So a cell's placements/s and CPU per placement
/// include what keeping the fleet READY costs the scheduler, which grows with the fleet.
final class FleetHeartbeats: Sendable {
  struct Outcome: Encodable {
    var sent: Int
    var failed: Int
    var seconds: Double
    var firstError: String?
    var perSecond: Double { self.seconds > 0 ? Double(self.sent) / self.seconds : 0 }

    enum CodingKeys: String, CodingKey { case sent, failed, seconds, perSecond = "per_s", firstError = "first_error" }

    func encode(to encoder: any Encoder) throws {
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(self.sent, forKey: .sent)
      try container.encode(self.failed, forKey: .failed)
      try container.encode(self.seconds, forKey: .seconds)
      try container.encode(self.perSecond, forKey: .perSecond)
      try container.encodeIfPresent(self.firstError, forKey: .firstError)
    }
  }

  let scheduler: SchedulerClient
  let nodes: Int
  let perSecond: Double
  let timeout: CallTimeout
  /// Heartbeats waiting for their answer at most. A real fleet has one sender per node, each
  /// waiting for its own answer, so a slow scheduler delays every node's heartbeat but holds back
  /// none: as many as there are nodes (bounded, for the bench's own memory).
  let maxInFlight: Int
  private let stopping = Atomic<Bool>(false)

  init(scheduler: SchedulerClient, nodes: Int, timeout: CallTimeout) {
    self.scheduler = scheduler
    self.nodes = nodes
    self.perSecond = heartbeatsNeeded(nodes: nodes)
    self.timeout = timeout
    self.maxInFlight = min(nodes, 4_096)
  }

  /// Ends `run()`: no more heartbeats are sent, and those sent are answered (not cancelled).
  func stop() { self.stopping.store(true, ordering: .relaxed) }

  /// Sends until `stop()`, then waits for the answers of those sent.
  func run() async -> Outcome {
    let clock = ContinuousClock()
    let start = clock.now
    var outcome = Outcome(sent: 0, failed: 0, seconds: 0)
    func record(_ error: String?) {
      guard let error else { return }
      outcome.failed += 1
      if outcome.firstError == nil { outcome.firstError = error }
    }
    await withTaskGroup(of: String?.self) { group in
      var pending = 0
      while !self.stopping.load(ordering: .relaxed) {
        let due = Int(start.duration(to: clock.now).seconds * self.perSecond)
        while outcome.sent < due && !self.stopping.load(ordering: .relaxed) {
          if pending >= self.maxInFlight, let answered = await group.next() {
            record(answered)
            pending -= 1
            continue
          }
          let name = nodeName(outcome.sent % self.nodes)
          group.addTask { await heartbeat(name, scheduler: self.scheduler, timeout: self.timeout) }
          outcome.sent += 1
          pending += 1
        }
        try? await Task.sleep(for: .milliseconds(5))
      }
      for await answered in group { record(answered) }
    }
    outcome.seconds = start.duration(to: clock.now).seconds
    return outcome
  }
}
