// The quota service's Consume against the naive design's limit, side by side in one run, on a
// private cluster this program starts and stops (fsync on; see BenchCluster.start):
//
//   pgbench   UPDATE bench_counter SET used = used + 1 WHERE id = 1, one statement per
//             transaction: what one counter row allows when every call is its own transaction
//   hot       Consume (api_calls_per_day, amount 1) of one tenant, through gRPC to one
//             maas-quota process, which group-commits a tenant's concurrent calls
//   1,000     Consume of a tenant drawn at random from 1,000 for each call
//   floor     grpc.health.v1.Health/Check (empty service name) to the same maas-quota over the
//             same channel: a gRPC round trip with no work behind it, the transport's floor
//   store     Consume of another hot tenant through QuotaStore inside this process, no gRPC: the
//             quota design's own latency (it shares the two cores with the bench's callers)
//
// at 1, 16 and 64 callers, then the checks: GetQuota's `used` must equal the calls the bench saw
// admitted (both hot tenants, and summed over the 1,000), and a capped tenant (limit 5,000)
// hammered by 64 callers until each is refused must have exactly its limit admitted: overshoot 0.
// The headline ratio is hot-tenant Consume/s at 64 over pgbench's tps at 64 (goal at least 2),
// beside p99 at 16 callers for the hot tenant (goal under 2 ms), and, to read that p99 against,
// the floor's and the in-process store's p99 at 16.
//
// Usage (from the repository root, which `make bench-quota` is):
//   quota-bench run [--seconds S] [--warm-up S] [--json PATH] [--server PATH] [--pool-size N] [--no-fsync]
//     --server: the maas-quota executable (default: the one beside this program, where
//     `make bench-quota` builds it); --pool-size: its MAAS_QUOTA_DATABASE_POOL_SIZE (default 10,
//     the service's default); --no-fsync: the cluster without fsync, as postgres-bench runs it
//     (see BenchCluster.start for why this one keeps it by default)
//   quota-bench load --target HOST:PORT [--tenants N] [--callers N] [--seconds S]
//     only the Consume side, against a maas-quota already serving (for a profiler)
import BenchSupport
import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts

let concurrencies = [1, 16, 64]
let goal = 2.0
let p99GoalMilliseconds = 2.0
let hotTenant = "bench-hot"
/// The in-process store's hot tenant: its own, so that each hot tenant's accounting is checked
/// against the calls of one path.
let storeHotTenant = "bench-store-hot"
let cappedTenant = "bench-capped"
let manyTenants = (1...1_000).map { String(format: "bench-t%04d", $0) }
/// Far above what a run spends, so admission is really checked but never refuses.
let bigLimit: Int64 = 100_000_000
let cappedLimit: Int64 = 5_000
let cappedCallers = 64

struct Options: RunOptions {
  var seconds = 5
  var warmUpSeconds = 1
  var jsonPath: String?
  var server = programDirectory.appendingPathComponent("maas-quota").path
  var poolSize = 10
  var fsync = true
}

func run(_ options: Options) async throws {
  let cluster = try BenchCluster.start(fsync: options.fsync)
  defer { cluster.stop() }
  try cluster.resetTables()

  let logPath = URL(fileURLWithPath: options.jsonPath ?? ".bench/quota.json").deletingLastPathComponent()
    .appendingPathComponent("quota-maas-quota.log").path
  try FileManager.default.createDirectory(
    atPath: URL(fileURLWithPath: logPath).deletingLastPathComponent().path, withIntermediateDirectories: true)
  // maas-quota migrates the `quota` schema as the owner and serves as the app role.
  let server = try ServiceProcess.start(
    "maas-quota", executable: options.server, prefix: "MAAS_QUOTA", cluster: cluster, poolSize: options.poolSize, logPath: logPath)
  defer { server.stop() }

  let pgbench = try Pgbench(url: cluster.ownerURL)
  defer { pgbench.removeScratch() }

  let runID = String(UInt32.random(in: .min ... .max), radix: 36)
  let store = try StoreLoad.open(appURL: cluster.appURL, poolSize: options.poolSize, runID: runID)
  let report: Report
  do {
    report = try await withGRPCClient(transport: ShimClientTransport(target: server.target)) { client in
      let load = ConsumeLoad(quota: QuotaClient(wrapping: client), runID: runID)
      let floor = TransportFloorLoad(health: HealthClient(wrapping: client))
      return try await measureAll(load, floor: floor, store: store, pgbench: pgbench, cluster: cluster, options: options)
    }
  } catch {
    await store.close()
    throw error
  }
  await store.close()
  report.printTable()
  if let jsonPath = options.jsonPath {
    try writeJSON(report, to: jsonPath)
    print("wrote \(jsonPath)")
  }
}

func measureAll(
  _ load: ConsumeLoad, floor: TransportFloorLoad, store: StoreLoad, pgbench: Pgbench, cluster: BenchCluster, options: Options
) async throws -> Report {
  note("registering \(manyTenants.count + 3) tenants")
  try await load.register([hotTenant, storeHotTenant] + manyTenants, apiCallsPerDay: bigLimit)
  try await load.register([cappedTenant], apiCallsPerDay: cappedLimit)

  var pgbenchCells: [String: PgbenchCell] = [:]
  var pgbenchTransactions = 0
  var hotCells: [String: ConsumeCell] = [:]
  var manyCells: [String: ConsumeCell] = [:]
  var floorCells: [String: ConsumeCell] = [:]
  var storeCells: [String: ConsumeCell] = [:]
  var hotAdmissions = Tally()
  var manyAdmissions = Tally()
  var storeAdmissions = Tally()

  for (index, concurrency) in concurrencies.enumerated() {
    let key = String(concurrency)
    // The peer that goes first rotates from one concurrency to the next, so that drift in the
    // machine's load (and the tables' growth) does not always favour the same one.
    for peer in ["pgbench", "hot", "many", "floor", "store"].rotated(by: index) {
      switch peer {
      case "pgbench":
        note("pgbench UPDATE, \(concurrency) clients")
        let (measurement, transactions) = try pgbench.measure(
          clients: concurrency, seconds: options.seconds, warmUpSeconds: options.warmUpSeconds)
        pgbenchCells[key] = PgbenchCell(measurement: measurement)
        pgbenchTransactions += transactions
      case "hot":
        note("Consume, one hot tenant, \(concurrency) callers")
        let (cell, admissions) = await load.measure(
          cell: "hot", tenants: [hotTenant], concurrency: concurrency, seconds: options.seconds,
          warmUpSeconds: options.warmUpSeconds)
        hotCells[key] = cell
        hotAdmissions.merge(admissions)
      case "floor":
        note("gRPC floor: Health/Check, \(concurrency) callers")
        floorCells[key] = await floor.measure(
          concurrency: concurrency, seconds: options.seconds, warmUpSeconds: options.warmUpSeconds)
      case "store":
        note("Consume in process (QuotaStore, no gRPC), one hot tenant, \(concurrency) callers")
        let (cell, admissions) = await store.measure(
          tenant: storeHotTenant, concurrency: concurrency, seconds: options.seconds, warmUpSeconds: options.warmUpSeconds)
        storeCells[key] = cell
        storeAdmissions.merge(admissions)
      default:
        note("Consume, \(manyTenants.count) tenants, \(concurrency) callers")
        let (cell, admissions) = await load.measure(
          cell: "many", tenants: manyTenants, concurrency: concurrency, seconds: options.seconds,
          warmUpSeconds: options.warmUpSeconds)
        manyCells[key] = cell
        manyAdmissions.merge(admissions)
      }
    }
  }

  var notes: [String] = []

  // The checks. Each compares within one window (UTC day): calls admitted before a midnight
  // that fell in the run are in a window GetQuota no longer shows.
  note("checking usage against admissions")
  func check(_ tenant: String, _ admissions: Tally) async throws -> HotTenantCheck {
    let quota = try await load.apiCallQuota(of: tenant)
    let check = HotTenantCheck(
      tenant: tenant, limit: quota.limit, used: quota.used,
      admitted: admissions.admittedByWindow[quota.windowReset] ?? 0,
      admittedInEarlierWindows: admissions.admittedByWindow.filter { $0.key != quota.windowReset }.values.reduce(0, +),
      unknownOutcomes: admissions.errors,
      windowReset: ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(quota.windowReset))))
    if check.admittedInEarlierWindows > 0 {
      notes.append("UTC midnight passed during the run: \(check.admittedInEarlierWindows) calls of \(tenant) were admitted in the previous day")
    }
    return check
  }
  let hotCheck = try await check(hotTenant, hotAdmissions)
  let storeCheck = try await check(storeHotTenant, storeAdmissions)

  let many = try await load.totalUsed(manyTenants)
  let manyAdmittedHere = many.windowReset.map { manyAdmissions.admittedByWindow[$0] ?? 0 } ?? 0
  let manyCheck = ManyTenantsCheck(
    tenants: manyTenants.count, used: many.used, admitted: manyAdmittedHere, unknownOutcomes: manyAdmissions.errors,
    comparable: many.windowReset != nil && manyAdmissions.admittedByWindow.count <= 1)

  note("capped tenant: limit \(cappedLimit), \(cappedCallers) callers until each is refused")
  let clock = ContinuousClock()
  let cappedStart = clock.now
  let capped = await load.drive(
    phase: "capped", tenants: [cappedTenant], concurrency: cappedCallers, until: cappedStart + .seconds(60), untilRefused: true)
  let cappedSeconds = cappedStart.duration(to: clock.now).seconds
  let cappedQuota = try await load.apiCallQuota(of: cappedTenant)
  let cappedCheck = CappedTenantCheck(
    tenant: cappedTenant, limit: cappedQuota.limit, callers: cappedCallers, admitted: capped.admitted,
    refused: capped.refused, errors: capped.errors, used: cappedQuota.used, seconds: cappedSeconds,
    crossedMidnight: capped.admittedByWindow.count > 1 || capped.admittedByWindow.keys.contains { $0 != cappedQuota.windowReset })
  if capped.refused < cappedCallers {
    notes.append("only \(capped.refused) of \(cappedCallers) capped-tenant callers were refused within 60 s")
  }
  if let error = capped.firstError { notes.append("capped cell: \(capped.errors) calls failed; the first: \(error)") }
  if cappedCheck.crossedMidnight { notes.append("UTC midnight passed during the capped cell: its check does not hold") }

  let counter = try cluster.counterValue()
  let overshoot = max(cappedCheck.overshoot, hotCheck.overshoot, storeCheck.overshoot)
  let hotAt64 = hotCells["64"]!.measurement.perSecond
  let pgbenchAt64 = pgbenchCells["64"]!.measurement.perSecond
  return Report(
    ratio: pgbenchAt64 > 0 ? hotAt64 / pgbenchAt64 : 0,
    goal: goal,
    p99MillisecondsAt16Hot: hotCells["16"]!.measurement.p99Milliseconds,
    p99GoalMilliseconds: p99GoalMilliseconds,
    transportFloorP99MillisecondsAt16: floorCells["16"]!.measurement.p99Milliseconds,
    storeP99MillisecondsAt16Hot: storeCells["16"]!.measurement.p99Milliseconds,
    overshoot: overshoot,
    pgbenchUpdateTPS: pgbenchCells.mapValues(\.measurement.perSecond),
    pgbench: pgbenchCells,
    pgbenchStatement: Pgbench.statement,
    pgbenchCounterMatches: counter == Int64(pgbenchTransactions),
    hotTenant: hotCells,
    tenants1000: manyCells,
    transportFloor: floorCells,
    storeInProcess: storeCells,
    hotTenantCheck: hotCheck,
    storeInProcessCheck: storeCheck,
    cappedTenantCheck: cappedCheck,
    tenants1000Check: manyCheck,
    date: ISO8601DateFormatter().string(from: Date()),
    secondsPerCell: options.seconds,
    warmUpSeconds: options.warmUpSeconds,
    concurrencies: concurrencies,
    fsync: options.fsync,
    poolSize: options.poolSize,
    pgbenchVersion: PgbenchRunner.version,
    notes: notes)
}

// MARK: - Entry

func parseRun(_ arguments: ArraySlice<String>) throws -> Options {
  try Options().parsed(arguments) { flag, flags, options in
    switch flag {
    case "--server": options.server = try flags.path(after: flag)
    case "--pool-size": options.poolSize = max(1, try flags.wholeNumber(after: flag))
    case "--no-fsync": options.fsync = false
    default: return false
    }
    return true
  }
}

/// `load`: the Consume side alone, against a running maas-quota, for a profiler. Registers its
/// own tenants (named after this run) first.
func load(_ arguments: ArraySlice<String>) async throws {
  var target: String?
  var tenantCount = 1
  var callers = 64
  var seconds = 10
  try readValueFlags(arguments) { flag, value in
    let positive = positiveNumber(value)
    switch flag {
    case "--target": target = value
    case "--tenants" where positive != nil: tenantCount = positive!
    case "--callers" where positive != nil: callers = positive!
    case "--seconds" where positive != nil: seconds = positive!
    default: return false
    }
    return true
  }
  guard let target else { throw BenchError("load needs --target HOST:PORT") }
  try await withGRPCClient(transport: ShimClientTransport(target: target)) { client in
    let runID = String(UInt32.random(in: .min ... .max), radix: 36)
    let load = ConsumeLoad(quota: QuotaClient(wrapping: client), runID: runID)
    let tenants = (1...tenantCount).map { "load-\(runID)-\($0)" }
    try await load.register(tenants, apiCallsPerDay: bigLimit)
    let (cell, _) = await load.measure(cell: "load", tenants: tenants, concurrency: callers, seconds: seconds, warmUpSeconds: 1)
    print("Consume, \(tenantCount) tenants, \(callers) callers: \(format(cell.measurement.perSecond)) calls/s,"
      + " \(cell.measurement.latencySummary), \(cell.refused) refused")
  }
}

await runBench(
  usage: [
    "usage: quota-bench run [--seconds S] [--warm-up S] [--json PATH] [--server PATH] [--pool-size N] [--no-fsync]",
    "       quota-bench load --target HOST:PORT [--tenants N] [--callers N] [--seconds S]",
  ],
  commands: ["run": { try await run(try parseRun($0)) }, "load": load])
