import BenchSupport
import Foundation

/// One cell: placements (Schedule then Release) by `concurrency` callers for a fleet size.
struct Cell: Encodable {
  /// The pair, timed by the caller loop: placements/s and the pair's latencies.
  var pair: BenchMeasurement
  var schedule: BenchMeasurement
  var release: BenchMeasurement
  var cpu: CPUUsage
  var refused: Int
  var firstError: String?
  /// The fleet's heartbeats sent beside the cell (warm-up included); none beside the floor's.
  var fleetHeartbeats: FleetHeartbeats.Outcome?

  /// CPU µs per placement in each group.
  var cpuPerPlacement: [String: Double] { self.cpu.microsecondsPerOperation(self.pair.perSecond) }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: ReportKey.self)
    try self.pair.encode(into: &container, rateKey: "placements_per_s", countKey: "placements")
    try container.encode(self.schedule.p50Milliseconds, forKey: "schedule_p50_ms")
    try container.encode(self.schedule.p99Milliseconds, forKey: "schedule_p99_ms")
    try container.encode(self.schedule.maxMilliseconds, forKey: "schedule_max_ms")
    try container.encode(self.release.p50Milliseconds, forKey: "release_p50_ms")
    try container.encode(self.release.p99Milliseconds, forKey: "release_p99_ms")
    try container.encode(self.release.maxMilliseconds, forKey: "release_max_ms")
    try container.encode(self.refused, forKey: "refused")
    try container.encode(self.cpu, forKey: "cpu")
    try container.encode(self.cpuPerPlacement, forKey: "cpu_us_per_placement")
    try container.encodeIfPresent(self.firstError, forKey: "first_error")
    try container.encodeIfPresent(self.fleetHeartbeats, forKey: "fleet_heartbeats")
  }
}

extension Cell {
  /// What a cell's callers measured, with the two halves of each placement that `steps` timed
  /// in its measured phase (`<label>-<callers>-m`).
  init(
    _ measured: CallerCell, label: String, callers: Int, steps: StepLatencies, cpu: CPUUsage,
    fleetHeartbeats: FleetHeartbeats.Outcome?
  ) {
    let latencies = steps.take(phase: "\(label)-\(callers)-m")
    let seconds = measured.measurement.seconds
    self.init(
      pair: measured.measurement, schedule: BenchMeasurement(latenciesNanoseconds: latencies.schedule, seconds: seconds),
      release: BenchMeasurement(latenciesNanoseconds: latencies.release, seconds: seconds), cpu: cpu,
      refused: measured.run.refused, firstError: measured.run.firstError, fleetHeartbeats: fleetHeartbeats)
  }
}

/// Registering one size's nodes (those it adds to the fleet before it).
struct Registration: Encodable {
  var nodes: Int
  var seconds: Double
  var perSecond: Double { self.seconds > 0 ? Double(self.nodes) / self.seconds : 0 }

  enum CodingKeys: String, CodingKey { case nodes, seconds, perSecond = "per_s" }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(self.nodes, forKey: .nodes)
    try container.encode(self.seconds, forKey: .seconds)
    try container.encode(self.perSecond, forKey: .perSecond)
  }
}

/// Everything measured at one fleet size.
struct SizeReport: Encodable {
  var nodes: Int
  var registered: Registration
  /// Callers -> cell, 1 x 1 EXCLUSIVE.
  var cells: [String: Cell]
  /// The mixed requests at 16 callers.
  var mixed: Cell?
  /// Every placement cell in the tables' order, with its row label: each caller count, then the mixed one.
  var placementCells: [(label: String, cell: Cell)] {
    concurrencies.compactMap { c in self.cells[String(c)].map { (String(c), $0) } } + (self.mixed.map { [("16 mixed", $0)] } ?? [])
  }
  /// Heartbeats of random nodes at `heartbeatCallers` callers.
  var heartbeats: HeartbeatCell?
  var holdCheck: HoldCheck?
  /// After the cells and the hold check.
  var freeCheck: FreeCheck
  /// GetCapacity's median time with the whole fleet registered and free.
  var capacityMilliseconds: Double
  /// The same with a label selector a quarter of the nodes carry (`zone=zone-1`).
  var capacityZoneMilliseconds: Double

  enum CodingKeys: String, CodingKey {
    case nodes, registered, cells
    case capacityMilliseconds = "get_capacity_p50_ms"
    case capacityZoneMilliseconds = "get_capacity_zone_p50_ms"
    case mixed = "mixed_16"
    case heartbeats = "heartbeat"
    case holdCheck = "hold_check"
    case freeCheck = "free_check"
  }

  /// The cell with the most placements/s.
  var best: (callers: Int, cell: Cell)? { bestCell(self.cells) }
}

/// Of cells by callers, the one with the most placements/s.
func bestCell(_ cells: [String: Cell]) -> (callers: Int, cell: Cell)? {
  cells.compactMap { key, cell in Int(key).map { ($0, cell) } }.max { $0.1.pair.perSecond < $1.1.pair.perSecond }
}

/// `.bench/scheduler.json`, and the table printed from it.
struct Report: Encodable {
  var sizes: [SizeReport]
  /// CONCURRENT_GPUS the tenants still hold at maas-quota (used + reserved) after the run: 0.
  var quotaHeldAfter: Int64
  var options: Options
  var notes: [String]
  /// The transport floor, measured before the sizes.
  var floor: FloorReport?
  var date = ISO8601DateFormatter().string(from: Date())
  var cores = ProcessInfo.processInfo.activeProcessorCount

  func size(_ nodes: Int) -> SizeReport? { self.sizes.first { $0.nodes == nodes } }

  /// Headline throughput at a size: the best cell's placements/s (over the concurrencies).
  func placementsPerSecond(_ nodes: Int) -> Double { self.size(nodes)?.best?.cell.pair.perSecond ?? 0 }

  /// Headline latency at a size: Schedule's p99 at 16 callers.
  func p99Milliseconds(_ nodes: Int) -> Double { self.size(nodes)?.cells["16"]?.schedule.p99Milliseconds ?? 0 }

  /// The scheduler's CPU µs per placement at 64 callers (or the highest concurrency run).
  func schedulerCPU(_ nodes: Int) -> Double? {
    guard let size = self.size(nodes), let top = concurrencies.reversed().first(where: { size.cells[String($0)] != nil }),
      let cell = size.cells[String(top)]
    else { return nil }
    return cell.cpuPerPlacement["maas-scheduler"]
  }

  var largest: Int { self.sizes.map(\.nodes).max() ?? 0 }
  var smallest: Int { self.sizes.map(\.nodes).min() ?? 0 }

  /// Scheduler CPU per placement at the largest size over that at the smallest: 1.0 is flat.
  var costGrowth: Double? {
    guard let low = self.schedulerCPU(self.smallest), let high = self.schedulerCPU(self.largest), low > 0 else { return nil }
    return high / low
  }

  var checksOK: Bool {
    self.quotaHeldAfter == 0 && self.sizes.allSatisfy { $0.freeCheck.ok && ($0.holdCheck?.ok ?? true) }
  }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: ReportKey.self)
    let headline = 10_000
    try container.encode(self.placementsPerSecond(headline), forKey: "placements_per_s_10000_nodes")
    try container.encode(self.p99Milliseconds(headline), forKey: "p99_ms_10000_nodes")
    try container.encode(self.placementsPerSecond(headline) / goalPlacementsPerSecond, forKey: "ratio_to_goal_10000_nodes")
    try container.encode(self.placementsPerSecond(headline) / kubeSchedulerFloor, forKey: "ratio_to_kube_scheduler_floor_10000_nodes")
    for size in self.sizes {
      try container.encode(self.placementsPerSecond(size.nodes), forKey: ReportKey("placements_per_s_\(size.nodes)_nodes"))
      try container.encode(self.p99Milliseconds(size.nodes), forKey: ReportKey("p99_ms_\(size.nodes)_nodes"))
      if let best = size.best { try container.encode(best.callers, forKey: ReportKey("best_callers_\(size.nodes)_nodes")) }
      if let beats = size.heartbeats {
        try container.encode(beats.measurement.perSecond, forKey: ReportKey("heartbeats_per_s_\(size.nodes)_nodes"))
      }
      if let cpu = self.schedulerCPU(size.nodes) {
        try container.encode(cpu, forKey: ReportKey("scheduler_cpu_us_per_placement_\(size.nodes)_nodes"))
      }
    }
    try container.encodeIfPresent(self.costGrowth, forKey: "scheduler_cpu_growth_smallest_to_largest")
    if let floor = self.floor {
      try container.encode(floor.best?.cell.pair.perSecond ?? 0, forKey: "floor_placements_per_s")
      try container.encode(floor.cells["16"]?.schedule.p99Milliseconds ?? 0, forKey: "floor_schedule_p99_ms_16_callers")
      try container.encode(floor.cells, forKey: "floor")
    }
    try container.encode(goalPlacementsPerSecond, forKey: "goal_placements_per_s")
    try container.encode(goalP99Milliseconds, forKey: "goal_p99_ms")
    try container.encode(kubeSchedulerFloor, forKey: "kube_scheduler_floor_per_s")
    try container.encode(Dictionary(uniqueKeysWithValues: self.sizes.map { (String($0.nodes), $0) }), forKey: "sizes")
    try container.encode(self.quotaHeldAfter, forKey: "quota_concurrent_gpus_held_after")
    try container.encode(self.checksOK, forKey: "checks_ok")
    try container.encode(self.date, forKey: "date")
    try container.encode(self.cores, forKey: "cores")
    try container.encode(self.options.seconds, forKey: "seconds_per_cell")
    try container.encode(self.options.warmUpSeconds, forKey: "warm_up_seconds")
    try container.encode(concurrencies, forKey: "concurrencies")
    try container.encode(self.options.fsync, forKey: "fsync")
    try container.encode(self.options.poolSize, forKey: "pool_size")
    try container.encode(self.options.tenants, forKey: "tenants")
    try container.encode(heartbeatGraceSeconds, forKey: "heartbeat_grace_s")
    try container.encode(RequestMix.single.label, forKey: "request")
    try container.encode(RequestMix.mixed.label, forKey: "mixed_request")
    try container.encode(self.options.schedulerExecutable, forKey: "scheduler")
    try container.encode(self.notes, forKey: "notes")
  }

  func printTable() {
    self.floor?.printTable()
    print("Schedule then Release over gRPC (bench -> maas-scheduler -> Postgres, with maas-quota's CONCURRENT_GPUS reserve"
      + " (committed at once) and release behind each), \(RequestMix.single.label), \(self.options.tenants) tenants,"
      + " nodes of \(gpusPerNode) x \(gpuModel); \(self.options.seconds) s per cell after a \(self.options.warmUpSeconds) s warm-up;"
      + " fsync \(self.options.fsync ? "on" : "off"), pool \(self.options.poolSize); \(self.cores) cores shared by everything")
    print("")
    printTableHeader(
      ["nodes", "callers", "placements/s", "pair p50 (ms)", "pair p99 (ms)", "Schedule p50", "Schedule p99", "Release p50",
       "Release p99", "errors", "/ 2,000 goal", "/ kube 680"])
    for size in self.sizes {
      for (label, cell) in size.placementCells {
        printTableRow(
          [String(size.nodes), label, format(cell.pair.perSecond)] + cell.pair.latencyCells + cell.schedule.latencyCells
            + cell.release.latencyCells
            + [String(cell.pair.errors), format(cell.pair.perSecond / goalPlacementsPerSecond, 2),
               format(cell.pair.perSecond / kubeSchedulerFloor, 2)])
      }
    }
    print("")
    print("Where the CPU went: cores used during the cell (CPU µs per placement)")
    print("")
    let groups = CPUAccounting.columns
    printTableHeader(["nodes", "callers"] + groups + ["machine busy"])
    for size in self.sizes {
      for (label, cell) in size.placementCells {
        let perPlacement = cell.cpuPerPlacement
        let columns = groups.map { group -> String in
          let cores = cell.cpu.cores[group] ?? 0
          guard cores >= 0.005 else { return "-" }
          return group == "other" ? format(cores, 2) : "\(format(cores, 2)) (\(format(perPlacement[group] ?? 0)))"
        }
        printTableRow([String(size.nodes), label] + columns + ["\(format(cell.cpu.machineBusyShare * 100))%"])
      }
    }
    print("")
    print("Heartbeat of a random node, \(heartbeatCallers) callers (beside the fleet's need: one per node every"
      + " \(format(defaultHeartbeatIntervalSeconds)) s at the default grace of \(format(defaultHeartbeatGraceSeconds)) s)")
    print("")
    printTableHeader(
      ["nodes", "heartbeats/s", "p50 (ms)", "p99 (ms)", "errors", "needed/s", "/ needed", "scheduler µs", "pg:scheduler µs",
       "scheduler cores for the need"])
    for size in self.sizes {
      guard let beats = size.heartbeats else { continue }
      let cpu = beats.cpuPerHeartbeat
      printTableRow(
        [String(size.nodes), format(beats.measurement.perSecond)] + beats.measurement.latencyCells
          + [String(beats.measurement.errors), format(beats.needed), format(beats.measurement.perSecond / beats.needed, 1),
             format(cpu["maas-scheduler"] ?? 0), format(cpu["pg:maas-scheduler"] ?? 0), format(beats.coresForNeeded, 2)])
    }
    print("")
    for size in self.sizes {
      let r = size.registered
      var line = "\(size.nodes) nodes: registered \(r.nodes) in \(format(r.seconds, 1)) s (\(format(r.perSecond))/s)"
        + "; GetCapacity p50 \(format(size.capacityMilliseconds, 2)) ms, with a selector a quarter of the nodes carry"
        + " \(format(size.capacityZoneMilliseconds, 2)) ms"
      if let hold = size.holdCheck {
        line += "; hold check: \(hold.allocations) allocations held \(hold.gpusHeld) GPUs, \(hold.distinctGPUs) distinct,"
          + " index counted \(hold.indexAllocatedGPUs)"
          + (hold.wholeFleet ? ", whole fleet, one more refused: \(hold.refusedWhenFull == true ? "yes" : "NO")" : "")
          + (hold.errors > 0 ? ", \(hold.errors) errors (first: \(hold.firstError ?? "?"))" : "")
          + (hold.ok ? "   ok" : "   WRONG")
      }
      let free = size.freeCheck
      line += "; afterwards: index \(free.indexNodes) nodes, \(free.indexFreeGPUs)/\(free.indexTotalGPUs) GPUs free,"
        + " database \(free.databaseHeldGPUs) held, \(free.databaseActiveAllocations) active" + (free.ok ? "   ok" : "   WRONG")
      print(line)
      let beside = size.placementCells.compactMap(\.cell.fleetHeartbeats)
      if let slowest = beside.map(\.perSecond).min(), let fastest = beside.map(\.perSecond).max() {
        let failed = beside.map(\.failed).reduce(0, +)
        print(
          "\(size.nodes) nodes: the fleet heartbeated beside each placement cell at \(format(slowest))-\(format(fastest))/s"
            + " (its need: \(format(heartbeatsNeeded(nodes: size.nodes)))/s), \(failed) failed"
            + (failed == 0 ? "   ok" : " (first: \(beside.compactMap(\.firstError).first ?? "?"))   WRONG"))
      }
    }
    print("maas-quota after the run: the tenants hold \(self.quotaHeldAfter) CONCURRENT_GPUS (used + reserved)"
      + (self.quotaHeldAfter == 0 ? "   ok" : "   WRONG"))
    print("")
    let largest = self.largest
    print(goalLine(
      "placements/s at \(largest) nodes (best of \(concurrencies.map(String.init).joined(separator: "/")) callers)",
      format(self.placementsPerSecond(largest)), goal: ">= \(format(goalPlacementsPerSecond))",
      met: self.placementsPerSecond(largest) >= goalPlacementsPerSecond))
    print(goalLine(
      "Schedule p99 at \(largest) nodes, 16 callers", "\(format(self.p99Milliseconds(largest), 3)) ms",
      goal: "< \(format(goalP99Milliseconds)) ms", met: self.p99Milliseconds(largest) > 0 && self.p99Milliseconds(largest) < goalP99Milliseconds))
    print("against kube-scheduler's scheduler_perf floor (\(format(kubeSchedulerFloor)) pods/s at 5,000 nodes): "
      + format(self.placementsPerSecond(largest) / kubeSchedulerFloor, 2))
    if let floor = self.floor, let best = floor.best {
      let p99 = floor.cells["16"]?.schedule.p99Milliseconds ?? 0
      print("transport floor (no work behind the calls): \(format(best.cell.pair.perSecond)) placements/s at \(best.callers)"
        + " callers (\(format(best.cell.pair.perSecond / goalPlacementsPerSecond, 2)) of the goal), Schedule p99 at 16 callers"
        + " \(format(p99, 3)) ms; at \(largest) nodes the services reach \(format(self.placementsPerSecond(largest) / best.cell.pair.perSecond, 2))"
        + " of the floor")
    }
    if let growth = self.costGrowth {
      let cpu = self.sizes.compactMap { size in self.schedulerCPU(size.nodes).map { "\(size.nodes): \(format($0)) µs" } }
      print("maas-scheduler CPU per placement at the top concurrency (\(cpu.joined(separator: ", "))):"
        + " \(format(growth, 2))x from \(self.smallest) to \(largest) nodes (1.00 is flat)")
    }
    for line in self.notes { print("note: \(line)") }
  }
}

extension CPUAccounting {
  /// This bench's groups in the order its table shows them (the pg: groups are parts of
  /// "postgres"), and "other": the rest of the machine's busy time.
  static let columns = ["bench", "maas-scheduler", "maas-quota", "postgres", "pg:maas-scheduler", "pg:maas-quota", "other"]
}
