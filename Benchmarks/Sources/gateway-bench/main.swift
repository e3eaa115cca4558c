// ListModels end to end against the database's own limit, side by side in one run, on a private
// cluster this program starts and stops, with maas-quota, maas-registry and maas-gateway (the
// release builds, one process each) started against it:
//
//   pgbench   the registry's ListModels transaction for the first page (BEGIN READ ONLY, its two
//             set_configs, the list statement with LIMIT page size + 1, COMMIT; one pipeline, as
//             the registry sends it), as the same role, on the same server: the limit
//   gateway   ListModels through maas-gateway with the tenant's API key: authentication (the
//             key's record read from the gateway's database at most once a second), one API call
//             spent at maas-quota (Consume, a durable write, shared by the calls that overlap),
//             the call forwarded to maas-registry, and its answer passed back undecoded. The
//             registry runs as deployed: a page it has read is answered from its listing cache
//             after one key lookup finds the tenant's catalogue version unchanged; pgbench runs
//             the whole statement every time
//   registry  the same first page asked directly, with the tenant id, of a second maas-registry
//             whose listing cache is off (MAAS_REGISTRY_LIST_CACHE_MODELS=0), so every call runs
//             the transaction pgbench runs: the registry's own cost beside the limit
//
// for one tenant with 1,000 models (made through the gateway first), page size 50, at 1, 16 and
// 64 callers, with the CPU each process used in every cell. The callers are load, as pgbench is:
// they check each answer's shape on the wire and do not decode the models. Before the cells, one walk over every
// page through the gateway must return exactly the 1,000 models, each once, in name order, and
// pgbench's statement must answer the gateway's first page. The headline ratio is gateway QPS at
// 64 over pgbench's tps at 64 (goal at least 0.5), beside the gateway's p99 at 16 callers (goal
// under 10 ms).
//
// Usage (from the repository root, which `make bench-gateway` is):
//   gateway-bench run [--seconds S] [--warm-up S] [--json PATH] [--bin-dir DIR] [--pool-size N]
//                     [--models N] [--page-size N] [--no-fsync] [--load-client PATH]
//     --bin-dir: where maas-quota, maas-registry and maas-gateway are (default: beside this
//     program, where `make bench-gateway` builds them); --pool-size: every service's
//     MAAS_<SVC>_DATABASE_POOL_SIZE (default 10, the services' default); --no-fsync: the cluster
//     without fsync (see BenchCluster.start); --load-client: the callers' program, list_load
//     (default .build-bench/list_load, where `make bench-gateway` builds it)
import BenchSupport
import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts

let concurrencies = [1, 16, 64]
let goal = 0.5
let p99GoalMilliseconds = 10.0
let tenantName = "gateway-bench"
/// The registry's statement timeout, set on its pool and repeated in pgbench's script.
let statementTimeoutSeconds = 10
/// Each call's deadline, as a client such as maasctl sends one; the gateway forwards what is left.
let callTimeout = Duration.seconds(10)

struct Options: RunOptions {
  var seconds = 5
  var warmUpSeconds = 1
  var jsonPath: String?
  var binDirectory = programDirectory.path
  var poolSize = 10
  var models = 1_000
  var pageSize = 50
  var fsync = true
  /// The callers' program (`LoadClient`).
  var loadClient = ".build-bench/list_load"
}

func run(_ options: Options) async throws {
  let cluster = try BenchCluster.start(fsync: options.fsync)
  defer { cluster.stop() }
  try cluster.resetSchemas()

  let logDirectory = URL(fileURLWithPath: options.jsonPath ?? ".bench/gateway.json").deletingLastPathComponent().path
  try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
  // Declared before the first start, so that whatever has started is stopped on every way out.
  let suite = ServiceSuite()
  defer { suite.stopAll() }
  let adminToken = (0..<4).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined()
  func start(_ name: String, _ prefix: String, _ extra: [String: String], logName: String? = nil) throws -> ServiceProcess {
    try suite.start(
      name, prefix: prefix, directory: options.binDirectory, cluster: cluster, poolSize: options.poolSize,
      extra: extra.merging(["\(prefix)_DATABASE_STATEMENT_TIMEOUT_SECONDS": String(statementTimeoutSeconds)]) { $1 },
      logDirectory: logDirectory, logName: logName)
  }
  let quota = try start("maas-quota", "MAAS_QUOTA", [:])
  let registry = try start("maas-registry", "MAAS_REGISTRY", ["MAAS_REGISTRY_QUOTA_TARGET": quota.target])
  let uncachedRegistry = try start(
    "maas-registry", "MAAS_REGISTRY", ["MAAS_REGISTRY_QUOTA_TARGET": quota.target, "MAAS_REGISTRY_LIST_CACHE_MODELS": "0"],
    logName: "maas-registry-uncached")
  let gateway = try start(
    "maas-gateway", "MAAS_GATEWAY",
    [
      "MAAS_GATEWAY_REGISTRY_TARGET": registry.target, "MAAS_GATEWAY_QUOTA_TARGET": quota.target,
      "MAAS_GATEWAY_ADMIN_TOKEN": adminToken,
    ])
  // Both registries count as maas-registry: only one of them is called in any cell.
  let cpu = CPUAccounting(
    services: [
      (gateway.name, gateway.pid), (registry.name, registry.pid), (uncachedRegistry.name, uncachedRegistry.pid),
      (quota.name, quota.pid),
    ],
    postmaster: try cluster.postmasterPID(), reapedChildrenGroup: "pgbench")

  let report = try await withGRPCClient(transport: ShimClientTransport(target: gateway.target)) { gatewayChannel in
    try await measureAll(
      gateway: GatewayClient(wrapping: gatewayChannel), admin: AdminClient(wrapping: gatewayChannel),
      targets: (gateway: gateway.target, registry: uncachedRegistry.target), adminToken: adminToken, cluster: cluster,
      cpu: cpu, options: options)
  }
  report.printTable()
  if let jsonPath = options.jsonPath {
    try writeJSON(report, to: jsonPath)
    print("wrote \(jsonPath)")
  }
  if !report.walkCheck.ok || !report.walkCheck.pgbenchStatementMatches {
    throw BenchError("the correctness check failed (see the walk line above)")
  }
}

/// - Parameter targets: the gateway's, and the registry's whose listing cache is off.
func measureAll(
  gateway: GatewayClient, admin: AdminClient, targets: (gateway: String, registry: String), adminToken: String,
  cluster: BenchCluster, cpu: CPUAccounting, options: Options
) async throws -> Report {
  note("creating tenant \(tenantName) (models limit \(options.models), API calls unlimited) and its API key")
  let tenant = try await BenchTenant.create(admin: admin, adminToken: adminToken, name: tenantName, models: options.models)
  let clock = ContinuousClock()
  let creating = clock.now
  note("creating \(options.models) models through the gateway, 16 at a time")
  try await createModels(gateway: gateway, tenant: tenant, count: options.models, concurrency: 16)
  note("created them in \(format(creating.duration(to: clock.now).seconds, 1)) s")

  note("walking every page through the gateway")
  var (walk, firstPage) = try await walkAllPages(gateway: gateway, tenant: tenant, pageSize: options.pageSize, expected: options.models)
  let pgbench = try Pgbench(
    url: cluster.appURL, tenant: tenant.id, pageSize: options.pageSize, statementTimeoutMilliseconds: statementTimeoutSeconds * 1000)
  defer { pgbench.removeScratch() }
  let statementNames = try pgbench.statementNames(cluster: cluster)
  walk.pgbenchStatementMatches = statementNames.count == options.pageSize + 1 && Array(statementNames.prefix(options.pageSize)) == firstPage
  var notes: [String] = []
  // The tables were just filled: without statistics the planner picks another plan than it will
  // once autovacuum has analyzed them (within a minute or so), and which one a cell measured would
  // depend on when that happened. Analyzed now, every cell sees the steady state.
  note("analyzing the services' tables")
  try cluster.sql(cluster.ownerURL, "ANALYZE;")
  let plan = try pgbench.plan(cluster: cluster)
  if !walk.ok || !walk.pgbenchStatementMatches {
    // Measuring a wrong listing, or pgbench doing other work, would give figures that mean
    // nothing: stop here (the services and the cluster are stopped on the way out).
    notes.append("correctness check failed: not measured")
    return Report(
      pgbench: [:], gatewayList: [:], registryDirect: [:], walkCheck: walk, listPlan: plan, options: options, notes: notes)
  }

  let load = LoadClient(executable: options.loadClient)
  let gatewayList = try gatewayListRequest(tenant: tenant, target: targets.gateway, pageSize: options.pageSize)
  let registryList = try registryListRequest(tenant: tenant, target: targets.registry, pageSize: options.pageSize)

  var pgbenchCells: [String: Cell] = [:]
  var gatewayCells: [String: Cell] = [:]
  var registryCells: [String: Cell] = [:]
  for (index, concurrency) in concurrencies.enumerated() {
    let key = String(concurrency)
    // The peer that goes first rotates from one concurrency to the next, so that drift in the
    // machine's load does not always favour the same one.
    for peer in ["pgbench", "gateway", "registry"].rotated(by: index) {
      switch peer {
      case "pgbench":
        note("pgbench, the registry's list transaction, \(concurrency) clients")
        pgbenchCells[key] = try pgbench.measure(
          clients: concurrency, seconds: options.seconds, warmUpSeconds: options.warmUpSeconds, cpu: cpu)
      case "gateway":
        note("ListModels through the gateway, \(concurrency) callers")
        gatewayCells[key] = try load.measure(
          gatewayList, pageSize: options.pageSize, timeout: callTimeout, concurrency: concurrency, seconds: options.seconds,
          warmUpSeconds: options.warmUpSeconds, cpu: cpu)
      default:
        note("ListModels to the registry directly (its listing cache off), \(concurrency) callers")
        registryCells[key] = try load.measure(
          registryList, pageSize: options.pageSize, timeout: callTimeout, concurrency: concurrency, seconds: options.seconds,
          warmUpSeconds: options.warmUpSeconds, cpu: cpu)
      }
    }
  }

  for (label, cells) in [("gateway", gatewayCells), ("registry", registryCells), ("pgbench", pgbenchCells)] {
    for (key, cell) in cells.sorted(by: { $0.key < $1.key }) where cell.measurement.errors > 0 {
      notes.append("\(label) at \(key): \(cell.measurement.errors) errors; the first: \(cell.firstError ?? "?")")
    }
  }
  let others = [pgbenchCells, gatewayCells, registryCells].flatMap { $0.values.map { $0.cpu.cores["other"] ?? 0 } }
  if let most = others.max(), most >= 0.25 {
    notes.append(
      "other work on the machine used up to \(format(most, 2)) cores during the cells (column `other`): the cells competed"
        + " with it, so throughput and tail latencies are pessimistic; CPU per operation is the steadier figure")
  }
  notes.append(
    "the limit is pgbench running the registry's own first-page transaction (pipelined BEGIN READ ONLY, set_config of"
      + " statement_timeout and maas.tenant_id, the list statement with LIMIT \(options.pageSize + 1), COMMIT; prepared and planned once,"
      + " as the registry's pool plans) as maas_app, so row-level security applies as in the registry; the gateway also authenticates (the key's record, read at most once a"
      + " second) and spends an API call at quota for each call (one durable write per group of overlapping calls), work"
      + " pgbench's figure does not include")
  notes.append(
    "the gateway's registry runs as deployed, with its listing cache: after the first call, each page is answered from memory"
      + " once one key lookup finds the tenant's catalogue version unchanged (no model changes during the cells), a lookup"
      + " that the calls arriving while one runs share (the next one starts after they asked); the"
      + " `registry directly` cells call a second registry with the cache off, which runs pgbench's transaction on every call")
  notes.append("every cell lists the first page only; the walk covers the others once")
  notes.append(
    "the callers are list_load, in C++ over grpc C++ (as pgbench, the limit's load, is in C): one process per cell,"
      + " counted in `bench`, sending a request encoded once and checking each answer on the wire (\(options.pageSize) models"
      + " and a next-page token, counted off its encoding) without decoding the models, as pgbench does not build objects"
      + " from its rows; the walk decodes every page, through the generated Swift client")
  // Only a sort of the page itself counts: the labels' and aliases' subplans sort a few rows each.
  if plan.prefix(while: { !$0.contains("SubPlan") }).contains(where: { $0.contains("Sort") }) {
    notes.append(
      "the list statement's plan sorts: a page reads every model of the tenant after its cursor and sorts them (the first"
        + " page all \(options.models)), rather than reading \(options.pageSize + 1) rows of models_listing in order, so the first"
        + " page is the dearest and its cost grows with the tenant's models; pgbench's limit and the registry pay it alike")
  }

  return Report(
    pgbench: pgbenchCells, gatewayList: gatewayCells, registryDirect: registryCells, walkCheck: walk, listPlan: plan,
    options: options, notes: notes)
}

// MARK: - Entry

func parseRun(_ arguments: ArraySlice<String>) throws -> Options {
  let options = try Options().parsed(arguments) { flag, flags, options in
    switch flag {
    case "--bin-dir": options.binDirectory = try flags.path(after: flag)
    case "--pool-size": options.poolSize = max(1, try flags.wholeNumber(after: flag))
    case "--models": options.models = max(1, try flags.wholeNumber(after: flag))
    case "--page-size": options.pageSize = min(1_000, max(1, try flags.wholeNumber(after: flag)))
    case "--no-fsync": options.fsync = false
    case "--load-client": options.loadClient = try flags.path(after: flag)
    default: return false
    }
    return true
  }
  // Every measured call asks for a full first page with a next page behind it.
  guard options.models > options.pageSize else { throw BenchError("--models must exceed --page-size") }
  return options
}

await runBench(
  usage: [
    "usage: gateway-bench run [--seconds S] [--warm-up S] [--json PATH] [--bin-dir DIR] [--pool-size N]"
      + " [--models N] [--page-size N] [--no-fsync] [--load-client PATH]"
  ],
  commands: ["run": { try await run(try parseRun($0)) }])
