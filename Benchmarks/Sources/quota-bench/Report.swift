import BenchSupport
import Foundation

/// A hot tenant's usage after its cells (the gRPC one's, or the in-process store's): GetQuota's
/// `used` against the calls the bench saw admitted in the same window.
struct HotTenantCheck: Encodable {
  var tenant: String
  var limit: Int64
  var used: Int64
  /// Admitted in the window GetQuota reported (warm-ups included).
  var admitted: Int
  /// Admitted in an earlier window: non-zero only when the run crossed UTC midnight.
  var admittedInEarlierWindows: Int
  /// Calls that failed other than with RESOURCE_EXHAUSTED: each may or may not have been counted,
  /// so a mismatch up to this many is not a bug.
  var unknownOutcomes: Int
  var windowReset: String

  var mismatch: Int64 { self.used - Int64(self.admitted) }
  var overshoot: Int64 { max(0, self.used - self.limit) }

  enum CodingKeys: String, CodingKey {
    case tenant, limit, used, admitted, mismatch, overshoot
    case admittedInEarlierWindows = "admitted_in_earlier_windows"
    case unknownOutcomes = "unknown_outcomes"
    case windowReset = "window_reset"
  }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(self.tenant, forKey: .tenant)
    try container.encode(self.limit, forKey: .limit)
    try container.encode(self.used, forKey: .used)
    try container.encode(self.admitted, forKey: .admitted)
    try container.encode(self.mismatch, forKey: .mismatch)
    try container.encode(self.overshoot, forKey: .overshoot)
    try container.encode(self.admittedInEarlierWindows, forKey: .admittedInEarlierWindows)
    try container.encode(self.unknownOutcomes, forKey: .unknownOutcomes)
    try container.encode(self.windowReset, forKey: .windowReset)
  }
}

/// The capped cell: a tenant with a small limit, hammered by many callers until each is refused.
/// Exactly `limit` calls must be admitted, and GetQuota must say `used == limit`.
struct CappedTenantCheck: Encodable {
  var tenant: String
  var limit: Int64
  var callers: Int
  var admitted: Int
  var refused: Int
  var errors: Int
  var used: Int64
  var seconds: Double
  /// Whether the run crossed UTC midnight during the cell (the check is then meaningless).
  var crossedMidnight: Bool

  var overshoot: Int64 { max(0, Int64(self.admitted) - self.limit, self.used - self.limit) }
  /// Calls refused although the limit had room (also a bug, the other way round).
  var shortfall: Int64 { max(0, self.limit - Int64(self.admitted)) }

  enum CodingKeys: String, CodingKey {
    case tenant, limit, callers, admitted, refused, errors, used, seconds, overshoot, shortfall
    case crossedMidnight = "crossed_midnight"
  }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(self.tenant, forKey: .tenant)
    try container.encode(self.limit, forKey: .limit)
    try container.encode(self.callers, forKey: .callers)
    try container.encode(self.admitted, forKey: .admitted)
    try container.encode(self.refused, forKey: .refused)
    try container.encode(self.errors, forKey: .errors)
    try container.encode(self.used, forKey: .used)
    try container.encode(self.seconds, forKey: .seconds)
    try container.encode(self.overshoot, forKey: .overshoot)
    try container.encode(self.shortfall, forKey: .shortfall)
    try container.encode(self.crossedMidnight, forKey: .crossedMidnight)
  }
}

/// The 1,000 tenants' usage summed over GetQuota against the calls admitted for them.
struct ManyTenantsCheck: Encodable {
  var tenants: Int
  var used: Int64
  var admitted: Int
  var unknownOutcomes: Int
  /// False when the answers straddled UTC midnight or admissions fell in an earlier window.
  var comparable: Bool

  enum CodingKeys: String, CodingKey {
    case tenants, used, admitted, comparable, mismatch
    case unknownOutcomes = "unknown_outcomes"
  }

  var mismatch: Int64 { self.used - Int64(self.admitted) }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(self.tenants, forKey: .tenants)
    try container.encode(self.used, forKey: .used)
    try container.encode(self.admitted, forKey: .admitted)
    try container.encode(self.mismatch, forKey: .mismatch)
    try container.encode(self.unknownOutcomes, forKey: .unknownOutcomes)
    try container.encode(self.comparable, forKey: .comparable)
  }
}

/// `.bench/quota.json`.
struct Report: Encodable {
  /// Hot-tenant Consume/s at 64 callers / pgbench UPDATE tps at 64 clients.
  var ratio: Double
  var goal: Double
  var p99MillisecondsAt16Hot: Double
  var p99GoalMilliseconds: Double
  /// Health/Check's p99 at 16 callers: the gRPC round trip alone.
  var transportFloorP99MillisecondsAt16: Double
  /// The in-process store's hot-tenant Consume p99 at 16 callers: the design without gRPC.
  var storeP99MillisecondsAt16Hot: Double
  /// The most any check saw admitted beyond a limit; 0 is the only right answer.
  var overshoot: Int64
  /// clients -> tps.
  var pgbenchUpdateTPS: [String: Double]
  var pgbench: [String: PgbenchCell]
  var pgbenchStatement: String
  var pgbenchCounterMatches: Bool
  var hotTenant: [String: ConsumeCell]
  var tenants1000: [String: ConsumeCell]
  /// Health/Check (empty service name) to the same maas-quota, over the same channel.
  var transportFloor: [String: ConsumeCell]
  /// Consume of its own hot tenant through QuotaStore in the bench's process.
  var storeInProcess: [String: ConsumeCell]
  var hotTenantCheck: HotTenantCheck
  var storeInProcessCheck: HotTenantCheck
  var cappedTenantCheck: CappedTenantCheck
  var tenants1000Check: ManyTenantsCheck
  var date: String
  var secondsPerCell: Int
  var warmUpSeconds: Int
  var concurrencies: [Int]
  var fsync: Bool
  /// MAAS_QUOTA_DATABASE_POOL_SIZE.
  var poolSize: Int
  var pgbenchVersion: String
  var notes: [String]

  enum CodingKeys: String, CodingKey {
    case ratio, goal, overshoot, pgbench, date, concurrencies, fsync, notes
    case p99MillisecondsAt16Hot = "p99_ms_at_16_hot"
    case p99GoalMilliseconds = "p99_goal_ms"
    case transportFloorP99MillisecondsAt16 = "transport_floor_p99_ms_at_16"
    case storeP99MillisecondsAt16Hot = "store_p99_ms_at_16_hot"
    case pgbenchUpdateTPS = "pgbench_update_tps"
    case pgbenchStatement = "pgbench_statement"
    case pgbenchCounterMatches = "pgbench_counter_matches"
    case hotTenant = "hot_tenant"
    case tenants1000 = "tenants_1000"
    case transportFloor = "transport_floor"
    case storeInProcess = "store_in_process"
    case hotTenantCheck = "hot_tenant_check"
    case storeInProcessCheck = "store_in_process_check"
    case cappedTenantCheck = "capped_tenant_check"
    case tenants1000Check = "tenants_1000_check"
    case secondsPerCell = "seconds_per_cell"
    case warmUpSeconds = "warm_up_seconds"
    case poolSize = "pool_size"
    case pgbenchVersion = "pgbench_version"
  }

  func printTable() {
    print("Quota Consume (gRPC, one maas-quota, pool \(self.poolSize)) vs pgbench's single-row UPDATE, on one Postgres"
      + " (fsync \(self.fsync ? "on" : "off")), \(self.secondsPerCell) s per cell after a \(self.warmUpSeconds) s warm-up, over 127.0.0.1")
    print("")
    printTableHeader(["callers", "peer", "ops/s", "p50 (ms)", "p99 (ms)", "errors", "/ pgbench UPDATE"])
    for concurrency in self.concurrencies {
      let key = String(concurrency)
      guard let pgbench = self.pgbench[key]?.measurement else { continue }
      let rows: [(String, BenchMeasurement, Int)] = [
        ("pgbench `\(self.pgbenchStatement)`", pgbench, 0),
        ("Consume, one hot tenant", self.hotTenant[key]!.measurement, self.hotTenant[key]!.refused),
        ("Consume, 1,000 tenants", self.tenants1000[key]!.measurement, self.tenants1000[key]!.refused),
        ("gRPC floor: Health/Check (empty call)", self.transportFloor[key]!.measurement, 0),
        ("Consume in process (QuotaStore, no gRPC), one hot tenant", self.storeInProcess[key]!.measurement,
         self.storeInProcess[key]!.refused),
      ]
      for (label, m, refused) in rows {
        let errors = refused > 0 ? "\(m.errors) (+\(refused) refused)" : "\(m.errors)"
        printTableRow(
          [String(concurrency), label, format(m.perSecond)] + m.latencyCells
            + [errors, format(pgbench.perSecond > 0 ? m.perSecond / pgbench.perSecond : 0, 2)])
      }
    }
    print("")
    print("gRPC floor: Health/Check with an empty service name to the same maas-quota over the same shim channel (no work"
      + " behind it). In process: QuotaStore in the bench's own process (no gRPC; the maas-quota process idles), whose"
      + " callers and store share the same 2 cores.")
    print("")
    print(goalLine(
      "ratio (hot-tenant Consume/s at 64 / pgbench UPDATE tps at 64)", format(self.ratio, 2), goal: ">= \(format(self.goal, 1))",
      met: self.ratio >= self.goal))
    print(goalLine(
      "p99 at 16 callers, hot tenant", "\(format(self.p99MillisecondsAt16Hot, 3)) ms", goal: "< \(format(self.p99GoalMilliseconds, 0)) ms",
      met: self.p99MillisecondsAt16Hot < self.p99GoalMilliseconds))
    print("  gRPC floor, Health/Check p99 at 16 callers: \(format(self.transportFloorP99MillisecondsAt16, 3)) ms"
      + " (an empty round trip through the same transport and server)")
    print("  in-process store p99 at 16 callers, hot tenant (no gRPC): \(format(self.storeP99MillisecondsAt16Hot, 3)) ms"
      + "   vs goal < \(format(self.p99GoalMilliseconds, 0)) ms"
      + (self.storeP99MillisecondsAt16Hot < self.p99GoalMilliseconds ? "   under" : "   over"))
    let capped = self.cappedTenantCheck
    print(goalLine("overshoot", "\(self.overshoot)", goal: "0", met: self.overshoot == 0))
    print("  capped tenant: limit \(capped.limit), \(capped.callers) callers until refused: admitted \(capped.admitted),"
      + " refused \(capped.refused), errors \(capped.errors), GetQuota used \(capped.used), shortfall \(capped.shortfall)")
    let hot = self.hotTenantCheck
    print("  hot tenant: limit \(hot.limit), GetQuota used \(hot.used), admitted in this window \(hot.admitted)"
      + " (used - admitted: \(hot.mismatch)), unknown outcomes \(hot.unknownOutcomes)")
    let store = self.storeInProcessCheck
    print("  in-process hot tenant: limit \(store.limit), GetQuota used \(store.used), admitted in this window \(store.admitted)"
      + " (used - admitted: \(store.mismatch)), unknown outcomes \(store.unknownOutcomes)")
    let many = self.tenants1000Check
    print("  1,000 tenants: GetQuota used summed \(many.used), admitted \(many.admitted) (used - admitted: \(many.mismatch))"
      + (many.comparable ? "" : ", not comparable (UTC midnight)"))
    if !self.pgbenchCounterMatches { print("  pgbench: bench_counter.used differs from pgbench's transaction count") }
    for line in self.notes { print("note: \(line)") }
  }
}
