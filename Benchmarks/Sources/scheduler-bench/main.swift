// Placement at fleet scale over the real transport, on a private cluster this program starts and
// stops, with maas-quota and maas-scheduler (the release builds, one process each) against it:
//
//   for N = 100, 1,000 and 10,000 nodes of 8 x H100-80GB, registered with RegisterNode over gRPC
//   (the fleet grows from one size to the next), closed-loop callers each making placements:
//   Schedule (1 replica x 1 GPU, EXCLUSIVE, LEAST_LOADED, a fresh workload of one of 100 tenants
//   drawn at random) then Release of that allocation, at 1, 16 and 64 callers, plus the mixed
//   requests (BINPACK, SPREAD, 2 and 4 GPUs) at 16 callers, and Heartbeats of random nodes at 64
//   callers (what the fleet needs at the default interval beside it). During every placement
//   cell the fleet also heartbeats at that need (N / 10 per second, paced, round-robin:
//   FleetHeartbeats), so the cells' figures carry what keeping the fleet READY costs. Every Schedule takes
//   the tenant's CONCURRENT_GPUS at maas-quota (a Reserve committed at once) and every Release gives them back, as in
//   production; the tenants' limits are far above what a run holds.
//
// A placement is a Schedule that succeeded and was then released. Each cell reports placements/s,
// the pair's p50/p99 and Schedule's and Release's apart, and the CPU each process used per
// placement. Checks at each size: the hold check (places without releasing, up to the whole
// fleet at 100 nodes, and asserts that no GPU uuid is answered twice and that the index counts
// exactly what is held), then that the index and the database are wholly free again.
// First, the transport floor (TransportFloor.swift): the same four gRPC calls per placement
// between servers that do nothing else, the most any design making them could reach here.
// Headline: placements/s at 10,000 nodes (the best concurrency) against the goal of 2,000/s and
// kube-scheduler's scheduler_perf floor of 680 pods/s at 5,000 nodes; Schedule's p99 at 16
// callers against 5 ms; and how maas-scheduler's CPU per placement grows from 100 to 10,000 nodes.
//
// Usage (from the repository root, which `make bench-scheduler` is):
//   scheduler-bench run [--seconds S] [--warm-up S] [--json PATH] [--bin-dir DIR] [--scheduler PATH]
//                       [--pool-size N] [--tenants N] [--sizes 100,1000,10000] [--hold N] [--no-fsync]
//     --bin-dir: where maas-quota and maas-scheduler are (default: beside this program, where
//     `make bench-scheduler` builds them); --scheduler: another maas-scheduler (an older build, to
//     compare); --pool-size: both services' MAAS_<SVC>_DATABASE_POOL_SIZE (default 10, their
//     default); --hold: GPUs the hold check holds at most (default 2,000; 0 skips it)
import BenchSupport
import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts

let concurrencies = [1, 16, 64]
let goalPlacementsPerSecond = 2_000.0
let goalP99Milliseconds = 5.0
/// Kubernetes' scheduler_perf holds 680-810 pods/s at 5,000 nodes as its floor.
let kubeSchedulerFloor = 680.0
/// The fleet heartbeats only during the cells (and the heartbeat cell): the grace, at its allowed
/// maximum, outlasts the run, so every node stays READY between cells and through a late heartbeat.
let heartbeatGraceSeconds = 3_600
/// Each call's deadline, as a caller such as the gateway sends one.
let callTimeout = Duration.seconds(10)

struct Options: RunOptions {
  var seconds = 5
  var warmUpSeconds = 1
  var jsonPath: String?
  var binDirectory = programDirectory.path
  var schedulerExecutable = ""
  var poolSize = 10
  var tenants = 100
  var sizes = [100, 1_000, 10_000]
  var hold = 2_000
  var fsync = true
}

func run(_ options: Options) async throws {
  let cluster = try BenchCluster.start(fsync: options.fsync)
  defer { cluster.stop() }
  try cluster.resetSchemas()

  let logDirectory = URL(fileURLWithPath: options.jsonPath ?? ".bench/scheduler.json").deletingLastPathComponent().path
  try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
  var started: [ServiceProcess] = []
  defer { for service in started.reversed() { service.stop() } }
  let quota = try ServiceProcess.start(
    "maas-quota", executable: options.binDirectory + "/maas-quota", prefix: "MAAS_QUOTA", cluster: cluster,
    poolSize: options.poolSize, logPath: logDirectory + "/scheduler-maas-quota.log")
  started.append(quota)
  let scheduler = try ServiceProcess.start(
    "maas-scheduler", executable: options.schedulerExecutable, prefix: "MAAS_SCHEDULER", cluster: cluster,
    poolSize: options.poolSize,
    extra: [
      "MAAS_SCHEDULER_QUOTA_TARGET": quota.target,
      "MAAS_SCHEDULER_HEARTBEAT_GRACE_SECONDS": String(heartbeatGraceSeconds),
    ],
    logPath: logDirectory + "/scheduler-maas-scheduler.log")
  started.append(scheduler)
  let cpu = CPUAccounting(
    services: [(scheduler.name, scheduler.pid), (quota.name, quota.pid)], postmaster: try cluster.postmasterPID())

  // First, while nothing else runs: the same calls with nothing done behind them.
  let floor = try await measureFloor(cluster: cluster, options: options, logDirectory: logDirectory)
  var report = try await withGRPCClient(transport: ShimClientTransport(target: scheduler.target)) { schedulerChannel in
    try await withGRPCClient(transport: ShimClientTransport(target: quota.target)) { quotaChannel in
      try await measureAll(
        scheduler: SchedulerClient(wrapping: schedulerChannel), quota: QuotaClient(wrapping: quotaChannel), cluster: cluster,
        cpu: cpu, options: options)
    }
  }
  report.floor = floor
  report.printTable()
  if let jsonPath = options.jsonPath {
    try writeJSON(report, to: jsonPath)
    print("wrote \(jsonPath)")
  }
  if !report.checksOK { throw BenchError("a correctness check failed (see the lines above the goals)") }
}

func measureAll(
  scheduler: SchedulerClient, quota: QuotaClient, cluster: BenchCluster, cpu: CPUAccounting, options: Options
) async throws -> Report {
  var cpu = cpu
  let runID = String(UInt32.random(in: .min ... .max), radix: 36)
  let tenants = (1...options.tenants).map { String(format: "sched-bench-t%03d", $0) }
  note("registering \(tenants.count) tenants at maas-quota (CONCURRENT_GPUS limit 1,000,000 each)")
  try await registerTenants(quota, tenants, limit: 1_000_000)

  // The deadline travels as grpc C++ enforces it (CallTimeout), as the services' own calls send theirs.
  let timeout = CallTimeout(callTimeout)
  let steps = StepLatencies()
  var sizes: [SizeReport] = []
  var notes: [String] = []
  var registeredSoFar = 0
  let clock = ContinuousClock()
  for nodes in options.sizes.sorted() where nodes > registeredSoFar {
    note("registering nodes \(registeredSoFar) to \(nodes - 1), 16 at a time")
    let registering = clock.now
    try await registerNodes(scheduler, registeredSoFar..<nodes, concurrency: 16)
    let registration = Registration(nodes: nodes - registeredSoFar, seconds: registering.duration(to: clock.now).seconds)
    note("registered \(registration.nodes) nodes in \(format(registration.seconds, 1)) s")
    registeredSoFar = nodes
    // The node and GPU tables just grew tenfold. The scheduler's pool plans each statement once,
    // so the plans made on the smaller fleet (the cells before) would stay until autovacuum's next
    // ANALYZE (within a minute or so) replaced them; which plans a cell measured would depend on
    // when that happened. Analyzed now, every cell sees the steady state. Only those two: the
    // allocation and quota tables are empty at this point of the first size, and analyzed empty
    // they got plans that read them whole while the cells grew them.
    note("analyzing the node and GPU tables")
    try cluster.sql(cluster.ownerURL, "ANALYZE scheduler.nodes, scheduler.gpus;")
    // Every RegisterNode has answered, so the scheduler's index should hold the whole fleet now;
    // how long it takes to, if not, is reported (a refresh that overwrote registrations).
    let checking = clock.now
    var before = try await FreeCheck.take(scheduler, cluster: cluster, nodes: nodes)
    let first = before
    while !before.ok && checking.duration(to: clock.now) < .seconds(30) {
      try await Task.sleep(for: .milliseconds(250))
      before = try await FreeCheck.take(scheduler, cluster: cluster, nodes: nodes)
    }
    guard before.ok else { throw BenchError("the fleet is not whole and free 30 s after registering: \(before)") }
    let catchUp = checking.duration(to: clock.now).seconds
    if catchUp > 0.2 {
      notes.append(
        "\(nodes) nodes: after every RegisterNode had answered, GetCapacity took \(format(catchUp, 1)) s to count the whole fleet"
          + " (at first: \(first.indexNodes) nodes, \(first.indexFreeGPUs) of \(first.indexTotalGPUs) GPUs free)")
    }

    let capacityTime = try await capacityMilliseconds(scheduler)
    let capacityZoneTime = try await capacityMilliseconds(scheduler, selector: ["zone": "zone-1"])
    // Nodes are labelled zone-0..3 by index, so zone-1 is every fourth, free and READY.
    let zone = try await capacity(scheduler, selector: ["zone": "zone-1"])
    let zoneNodes = (0..<nodes).filter { $0 % 4 == 1 }.count
    guard zone.nodes == zoneNodes, zone.totalGpus == zoneNodes * gpusPerNode else {
      throw BenchError("GetCapacity for zone-1 counted \(zone.nodes) nodes and \(zone.totalGpus) GPUs; expected \(zoneNodes) and \(zoneNodes * gpusPerNode)")
    }

    var cells: [String: Cell] = [:]
    for concurrency in concurrencies {
      note("\(nodes) nodes, \(concurrency) callers")
      cpu.backends = try cluster.serviceBackends()
      cells[String(concurrency)] = await measureCell(
        "n\(nodes)", nodes: nodes, concurrency: concurrency, mix: .single, scheduler: scheduler, tenants: tenants, runID: runID,
        steps: steps, cpu: cpu, options: options, timeout: timeout)
    }
    note("\(nodes) nodes, 16 callers, mixed requests")
    cpu.backends = try cluster.serviceBackends()
    let mixed = await measureCell(
      "n\(nodes)-mixed", nodes: nodes, concurrency: 16, mix: .mixed, scheduler: scheduler, tenants: tenants, runID: runID, steps: steps,
      cpu: cpu, options: options, timeout: timeout)
    note("\(nodes) nodes, \(heartbeatCallers) callers of Heartbeat")
    cpu.backends = try cluster.serviceBackends()
    let heartbeats = await measureHeartbeats(nodes: nodes, scheduler: scheduler, cpu: cpu, options: options, timeout: timeout)
    var hold: HoldCheck?
    if options.hold > 0 {
      let target = min(options.hold, nodes * gpusPerNode)
      note("hold check at \(nodes) nodes: holding up to \(target) GPUs")
      hold = try await holdCheck(
        scheduler: scheduler, cluster: cluster, nodes: nodes, target: target, tenants: tenants, runID: runID, timeout: timeout)
    }
    let free = try await FreeCheck.take(scheduler, cluster: cluster, nodes: nodes)
    sizes.append(
      SizeReport(
        nodes: nodes, registered: registration, cells: cells, mixed: mixed, heartbeats: heartbeats, holdCheck: hold, freeCheck: free,
        capacityMilliseconds: capacityTime, capacityZoneMilliseconds: capacityZoneTime))
  }

  let quotaHeld = try await quotaStillHeld(quota, tenants)
  for size in sizes {
    for (key, cell) in size.cells.sorted(by: { $0.key < $1.key }) where cell.pair.errors > 0 {
      notes.append("\(size.nodes) nodes, \(key) callers: \(cell.pair.errors) errors; the first: \(cell.firstError ?? "?")")
    }
    if let mixed = size.mixed, mixed.pair.errors > 0 {
      notes.append("\(size.nodes) nodes, mixed: \(mixed.pair.errors) errors; the first: \(mixed.firstError ?? "?")")
    }
    for (_, cell) in size.placementCells {
      guard let beats = cell.fleetHeartbeats, beats.failed > 0 else { continue }
      notes.append(
        "\(size.nodes) nodes: \(beats.failed) of the fleet's heartbeats beside a cell failed; the first: \(beats.firstError ?? "?")")
    }
    if let beats = size.heartbeats, beats.measurement.errors > 0 {
      notes.append("\(size.nodes) nodes, Heartbeat: \(beats.measurement.errors) errors; the first: \(beats.firstError ?? "?")")
    }
  }
  let others = sizes.flatMap { size in size.cells.values.map { $0.cpu.cores["other"] ?? 0 } }
  if let most = others.max(), most >= 0.25 {
    notes.append(
      "other work on the machine used up to \(format(most, 2)) cores during the cells (column `other`): the cells competed"
        + " with it, so throughput and tail latencies are pessimistic; CPU per placement is the steadier figure")
  }
  notes.append(
    "p99_ms_<N>_nodes is Schedule's p99 at 16 callers; placements_per_s_<N>_nodes the best cell's (best_callers_<N>_nodes)")
  notes.append(
    "during each placement cell the fleet heartbeats at its need at the default interval (nodes / 10 per second, paced,"
      + " round-robin), so the cells' figures include that load; MAAS_SCHEDULER_HEARTBEAT_GRACE_SECONDS=\(heartbeatGraceSeconds)"
      + " keeps every node READY between cells and through a late heartbeat; the index refresh interval is the default")
  return Report(sizes: sizes, quotaHeldAfter: quotaHeld, options: options, notes: notes)
}

/// A cell of placement callers, with the CPU of every process accounted over the measured phase,
/// while the fleet of `nodes` heartbeats at its need (`FleetHeartbeats`).
func measureCell(
  _ label: String, nodes: Int, concurrency: Int, mix: RequestMix, scheduler: SchedulerClient, tenants: [String], runID: String,
  steps: StepLatencies, cpu: CPUAccounting, options: Options, timeout: CallTimeout
) async -> Cell {
  let call = placementCall(scheduler: scheduler, tenants: tenants, mix: mix, runID: runID, steps: steps, timeout: timeout)
  let fleet = FleetHeartbeats(scheduler: scheduler, nodes: nodes, timeout: timeout)
  let heartbeating = Task { await fleet.run() }
  let (measured, usage) = await cpu.measureCallers(
    cell: label, concurrency: concurrency, seconds: options.seconds, warmUpSeconds: options.warmUpSeconds, call: call)
  fleet.stop()
  let heartbeats = await heartbeating.value
  return Cell(measured, label: label, callers: concurrency, steps: steps, cpu: usage, fleetHeartbeats: heartbeats)
}

/// CONCURRENT_GPUS still used or reserved, summed over `tenants`: 0 once everything is released.
func quotaStillHeld(_ quota: QuotaClient, _ tenants: [String]) async throws -> Int64 {
  var total: Int64 = 0
  for tenant in tenants {
    let answer = try await quota.getQuota(.with { $0.tenantID = tenant })
    if let entry = answer.resources.first(where: { $0.resource == .concurrentGpus }) { total += entry.used + entry.reserved }
  }
  return total
}

// MARK: - Entry

func parseRun(_ arguments: ArraySlice<String>) throws -> Options {
  var options = try Options().parsed(arguments) { flag, flags, options in
    switch flag {
    case "--bin-dir": options.binDirectory = try flags.path(after: flag)
    case "--scheduler": options.schedulerExecutable = try flags.path(after: flag)
    case "--pool-size": options.poolSize = max(1, try flags.wholeNumber(after: flag))
    case "--tenants": options.tenants = max(1, try flags.wholeNumber(after: flag))
    case "--hold": options.hold = try flags.wholeNumber(after: flag)
    case "--sizes":
      let text = try flags.path(after: flag)
      let sizes = text.split(separator: ",").compactMap { positiveNumber(String($0)) }
      guard !sizes.isEmpty, sizes.count == text.split(separator: ",").count else { throw BenchError("--sizes needs numbers such as 100,1000") }
      options.sizes = sizes
    case "--no-fsync": options.fsync = false
    default: return false
    }
    return true
  }
  if options.schedulerExecutable.isEmpty { options.schedulerExecutable = options.binDirectory + "/maas-scheduler" }
  return options
}

await runBench(
  usage: [
    "usage: scheduler-bench run [--seconds S] [--warm-up S] [--json PATH] [--bin-dir DIR] [--scheduler PATH]"
      + " [--pool-size N] [--tenants N] [--sizes 100,1000,10000] [--hold N] [--no-fsync]"
  ],
  commands: ["run": { try await run(try parseRun($0)) }, "serve-floor": serveFloor])
