import BenchSupport
import Foundation

/// `.bench/gateway.json`, and the table printed from it.
struct Report: Encodable {
  /// Gateway ListModels QPS at 64 callers / pgbench's list tps at 64 clients.
  var ratio: Double
  var goal: Double
  var p99MillisecondsAt16: Double
  var p99GoalMilliseconds: Double
  /// clients -> tps.
  var pgbenchListTPS: [String: Double]
  var pgbench: [String: Cell]
  var gatewayList: [String: Cell]
  var registryDirect: [String: Cell]
  var walkCheck: WalkCheck
  /// EXPLAIN of the list statement as a pooled connection runs it (after ANALYZE).
  var listPlan: [String]
  var pgbenchScript: String
  /// pgbench's connection options: the registry pool's session settings.
  var pgbenchSessionOptions: String
  var pgbenchVersion: String
  var models: Int
  var pageSize: Int
  var date: String
  var secondsPerCell: Int
  var warmUpSeconds: Int
  var concurrencies: [Int]
  var fsync: Bool
  /// Each service's MAAS_<SVC>_DATABASE_POOL_SIZE.
  var poolSize: Int
  var cores: Int
  var notes: [String]

  enum CodingKeys: String, CodingKey {
    case ratio, goal, pgbench, date, concurrencies, fsync, notes, models, cores
    case p99MillisecondsAt16 = "p99_ms_at_16"
    case p99GoalMilliseconds = "p99_goal_ms"
    case pgbenchListTPS = "pgbench_list_tps"
    case gatewayList = "gateway_list"
    case registryDirect = "registry_direct_list"
    case walkCheck = "walk_check"
    case listPlan = "list_plan"
    case pgbenchScript = "pgbench_script"
    case pgbenchSessionOptions = "pgbench_session_options"
    case pgbenchVersion = "pgbench_version"
    case pageSize = "page_size"
    case secondsPerCell = "seconds_per_cell"
    case warmUpSeconds = "warm_up_seconds"
    case poolSize = "pool_size"
  }

  /// The report of a run's cells (empty when the correctness check stopped the run first).
  init(
    pgbench: [String: Cell], gatewayList: [String: Cell], registryDirect: [String: Cell], walkCheck: WalkCheck,
    listPlan: [String], options: Options, notes: [String]
  ) {
    let gatewayAt64 = gatewayList["64"]?.measurement.perSecond ?? 0
    let pgbenchAt64 = pgbench["64"]?.measurement.perSecond ?? 0
    self.ratio = pgbenchAt64 > 0 ? gatewayAt64 / pgbenchAt64 : 0
    self.goal = gateway_bench.goal
    self.p99MillisecondsAt16 = gatewayList["16"]?.measurement.p99Milliseconds ?? 0
    self.p99GoalMilliseconds = gateway_bench.p99GoalMilliseconds
    self.pgbenchListTPS = pgbench.mapValues(\.measurement.perSecond)
    self.pgbench = pgbench
    self.gatewayList = gatewayList
    self.registryDirect = registryDirect
    self.walkCheck = walkCheck
    self.listPlan = listPlan
    self.pgbenchScript = Pgbench.script
    self.pgbenchSessionOptions = Pgbench.sessionOptions
    self.pgbenchVersion = PgbenchRunner.version
    self.models = options.models
    self.pageSize = options.pageSize
    self.date = ISO8601DateFormatter().string(from: Date())
    self.secondsPerCell = options.seconds
    self.warmUpSeconds = options.warmUpSeconds
    self.concurrencies = gateway_bench.concurrencies
    self.fsync = options.fsync
    self.poolSize = options.poolSize
    self.cores = ProcessInfo.processInfo.activeProcessorCount
    self.notes = notes
  }

  var ratioMet: Bool { self.ratio >= self.goal }
  var p99Met: Bool { self.p99MillisecondsAt16 < self.p99GoalMilliseconds }

  private func rows(_ concurrency: Int) -> [(String, Cell)] {
    let key = String(concurrency)
    return [
      ("pgbench: the registry's list transaction", self.pgbench[key]),
      ("ListModels via gateway (end to end)", self.gatewayList[key]),
      ("ListModels to registry directly, cache off", self.registryDirect[key]),
    ].compactMap { label, cell in cell.map { (label, $0) } }
  }

  /// The plan's nodes down to the models table, without the aliases subplan: enough to see
  /// whether a page walks the listing index in order or reads and sorts every model the tenant has.
  var planSummary: String {
    var nodes: [String] = []
    for line in self.listPlan {
      let trimmed = line.trimmingCharacters(in: .whitespaces)
      if trimmed.hasPrefix("SubPlan") { break }
      guard nodes.isEmpty || trimmed.hasPrefix("->") else { continue }
      let node = trimmed.replacingOccurrences(of: "->  ", with: "")
      nodes.append(String(node.prefix { $0 != "(" }).trimmingCharacters(in: .whitespaces))
    }
    return nodes.joined(separator: " > ")
  }

  func printTable() {
    print("ListModels, first page of \(self.pageSize) of a tenant's \(self.models) models: client -> maas-gateway -> maas-registry -> Postgres"
      + " (one process each, pool \(self.poolSize)), beside pgbench running the registry's list transaction on the same server"
      + " (fsync \(self.fsync ? "on" : "off")); \(self.secondsPerCell) s per cell after a \(self.warmUpSeconds) s warm-up,"
      + " over 127.0.0.1, \(self.cores) cores shared by everything")
    print("")
    printTableHeader(["callers", "peer", "ops/s", "p50 (ms)", "p99 (ms)", "errors", "/ pgbench"])
    for concurrency in self.concurrencies {
      let limit = self.pgbench[String(concurrency)]?.measurement.perSecond ?? 0
      for (label, cell) in self.rows(concurrency) {
        let m = cell.measurement
        printTableRow(
          [String(concurrency), label, format(m.perSecond)] + m.latencyCells
            + [String(m.errors), format(limit > 0 ? m.perSecond / limit : 0, 2)])
      }
    }
    print("")
    print("Where the CPU went: cores used during the cell (CPU µs per operation)")
    print("")
    let groups = CPUAccounting.columns
    printTableHeader(["callers", "peer"] + groups + ["machine busy"])
    for concurrency in self.concurrencies {
      for (label, cell) in self.rows(concurrency) {
        let perOperation = cell.cpu.microsecondsPerOperation(cell.measurement.perSecond)
        let columns = groups.map { group -> String in
          let cores = cell.cpu.cores[group] ?? 0
          guard cores >= 0.005 else { return "-" }
          // Other work is not the cell's: its cost per operation means nothing.
          return group == "other" ? format(cores, 2) : "\(format(cores, 2)) (\(format(perOperation[group] ?? 0)))"
        }
        printTableRow([String(concurrency), label] + columns + ["\(format(cell.cpu.machineBusyShare * 100))%"])
      }
    }
    print("")
    print(goalLine(
      "ratio (gateway ListModels QPS at 64 / pgbench list tps at 64)", format(self.ratio, 2), goal: ">= \(format(self.goal, 1))",
      met: self.ratioMet))
    print(goalLine(
      "p99 at 16 callers, gateway ListModels", "\(format(self.p99MillisecondsAt16, 3)) ms",
      goal: "< \(format(self.p99GoalMilliseconds, 0)) ms", met: self.p99Met))
    let walk = self.walkCheck
    print("walk: \(walk.pages) pages of \(self.pageSize) through the gateway returned \(walk.models) models, \(walk.distinct) distinct,"
      + " of \(walk.expected) expected, in name order: \(walk.sortedByName ? "yes" : "NO"), in \(format(walk.seconds, 2)) s"
      + (walk.ok ? "   ok" : "   WRONG (missing: \(walk.missing.joined(separator: ", ")))"))
    print("pgbench's statement answers the gateway's first page (and page size + 1 rows): "
      + (walk.pgbenchStatementMatches ? "yes" : "NO"))
    print("the list statement's plan (as a pooled connection runs it, after ANALYZE): \(self.planSummary)")
    for line in self.notes { print("note: \(line)") }
  }
}

extension CPUAccounting {
  /// This bench's groups in the order its table shows them, and "other": the rest of the
  /// machine's busy time.
  static let columns = ["bench", "maas-gateway", "maas-registry", "maas-quota", "postgres", "pgbench", "other"]
}
