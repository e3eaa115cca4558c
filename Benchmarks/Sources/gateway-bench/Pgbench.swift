import BenchSupport
import Foundation
import Registry

/// The limit: the registry's own ListModels transaction for the first page, run by pgbench (C,
/// libpq) on the same server, as the same role, with the same statements in the same round trip:
///
///   BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY
///   SELECT set_config($1, $2, true)   -- statement_timeout, the pool's per-transaction bound
///   SELECT set_config($1, $2, true)   -- maas.tenant_id, row-level security's tenant
///   <RegistryStore.listModels' statement>, LIMIT page size + 1
///   COMMIT
///
/// all in one pipeline (`\startpipeline`), as `PostgresPool.transaction` sends BEGIN and its
/// settings with the first statement and `queryAndCommit` the COMMIT with the last: one round trip
/// per page. Statements are prepared once per connection (`-M prepared`), as the registry's client
/// prepares them; the parameters are the registry's for a first page (cursor ("", nil UUID), no
/// prefix, no labels, any state). As `maas_app` (no BYPASSRLS), so the row-level security policy
/// is paid here as it is in the registry. That is what the registry cannot beat however fast its
/// Swift is: what the database alone serves of the exact work behind each page.
///
/// The statement is the registry's own (`RegistryStore.unfilteredListStatement`), its `$n`
/// parameters made pgbench variables; the run checks that its first page is the gateway's.
///
/// Its connections plan as the registry's pool does: each prepared statement once
/// (`plan_cache_mode = force_generic_plan`, `genericPlans` in `RegistryService`), so the limit
/// gets the same saving the registry does.
///
/// Two threads (`-j 2`, fewer when there are fewer clients): the machine has two cores. Its
/// figures as `PgbenchRunner` reads them.
struct Pgbench {
  static let nilUUID = "00000000-0000-0000-0000-000000000000"

  /// The registry pool's session setting, kept in step with `RegistryService.definition` by hand.
  static let sessionOptions = "-c plan_cache_mode=force_generic_plan"

  /// `url` with the registry pool's session setting, in libpq's `options` parameter.
  static func registrySession(_ url: String) -> String {
    let value = sessionOptions.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_."))) ?? ""
    return url + (url.contains("?") ? "&" : "?") + "options=" + value
  }

  /// The pgbench variables of the registry's statement's parameters, `$1` to `$4` in order.
  static let parameterNames = ["tenant", "empty", "after_id", "limit"]

  /// The registry's statement of an unfiltered page, with pgbench variables for its parameters.
  static var listStatement: String {
    var statement = RegistryStore.unfilteredListStatement
    for (index, name) in parameterNames.enumerated() {
      statement = statement.replacingOccurrences(of: "$\(index + 1)", with: ":\(name)")
    }
    precondition(!statement.contains("$"), "the registry's list statement has a parameter this bench does not set")
    return statement
  }

  /// pgbench cannot define an empty variable on its command line (`-D name=` is refused) and
  /// its expressions have no strings, so each client sets `empty` with `\gset` once, in its first
  /// transaction (`ready` starts at 0): one extra round trip per client per run, outside the
  /// pipeline.
  static var script: String {
    """
    \\if :ready = 0
    SELECT '' AS empty, 1 AS ready \\gset
    \\endif
    \\startpipeline
    BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
    SELECT set_config(:timeout_name, :timeout_ms, true);
    SELECT set_config(:tenant_name, :tenant, true);
    \(Self.listStatement);
    COMMIT;
    \\endpipeline

    """
  }

  let runner: PgbenchRunner
  let variables: [String: String]

  /// - Parameters:
  ///   - statementTimeoutMilliseconds: the registry pool's `statement_timeout`, as it sets it.
  init(url: String, tenant: String, pageSize: Int, statementTimeoutMilliseconds: Int) throws {
    self.runner = try PgbenchRunner(url: Self.registrySession(url))
    self.variables = [
      "ready": "0", "tenant": tenant, "after_id": Self.nilUUID,
      "limit": String(pageSize + 1), "timeout_name": "statement_timeout",
      "timeout_ms": String(statementTimeoutMilliseconds), "tenant_name": "maas.tenant_id",
    ]
    try Self.script.write(to: self.scriptURL, atomically: true, encoding: .utf8)
  }

  private var scriptURL: URL { self.runner.scratch.appendingPathComponent("list-models.sql") }

  func removeScratch() {
    self.runner.removeScratch()
  }

  /// The names the script's statement answers, in order, run once through psql as the same role
  /// with the same values (psql's `:'name'` quoting for pgbench's `:name`): what the run checks
  /// against the gateway's first page, so that pgbench is known to do the registry's work.
  func statementNames(cluster: BenchCluster) throws -> [String] {
    var statement = Self.listStatement
    for name in self.variables.keys.sorted(by: { $0.count > $1.count }) + ["empty"] {
      let pattern = try NSRegularExpression(pattern: "(?<!:):\(name)\\b")
      statement = pattern.stringByReplacingMatches(
        in: statement, range: NSRange(statement.startIndex..., in: statement), withTemplate: ":'\(name)'")
    }
    var variables = self.variables
    variables["empty"] = ""
    let text = try cluster.sql(
      self.runner.url,
      """
      BEGIN READ ONLY;
      SET LOCAL maas.tenant_id = :'tenant';
      SELECT s.name FROM (\(statement)) s ORDER BY s.name, s.id;
      COMMIT;
      """,
      variables: variables)
    return text.split(separator: "\n").map(String.init)
  }

  /// The plan a pooled connection runs the statement with: prepared with `$n` parameters, as the
  /// registry's client prepares it, on a connection with the pool's session setting (so the
  /// generic plan), executed six times (as `auto` would settle on the generic plan only after five
  /// custom ones, should the setting go), then explained.
  func plan(cluster: BenchCluster) throws -> [String] {
    let statement = RegistryStore.unfilteredListStatement
    let arguments = ":'tenant', '', :'after_id', :'limit'"
    let text = try cluster.sql(
      self.runner.url,
      """
      BEGIN READ ONLY;
      SET LOCAL maas.tenant_id = :'tenant';
      PREPARE list_models(text, text, uuid, bigint) AS \(statement);
      \\o /dev/null
      EXECUTE list_models(\(arguments));
      EXECUTE list_models(\(arguments));
      EXECUTE list_models(\(arguments));
      EXECUTE list_models(\(arguments));
      EXECUTE list_models(\(arguments));
      EXECUTE list_models(\(arguments));
      \\o
      EXPLAIN EXECUTE list_models(\(arguments));
      COMMIT;
      """,
      variables: self.variables)
    return text.split(separator: "\n").map(String.init)
  }

  /// A warm-up run, then the measured one, its CPU accounted.
  func measure(clients: Int, seconds: Int, warmUpSeconds: Int, cpu: CPUAccounting) throws -> Cell {
    let defines = self.variables.sorted { $0.key < $1.key }.flatMap { ["-D", "\($0.key)=\($0.value)"] }
    let common = PgbenchRunner.clientArguments(clients: clients, threads: min(2, clients)) + defines + ["-f", self.scriptURL.path]
    // The services' pooled connections; pgbench's own come and go with each run.
    let backends = cpu.postgresTicks().children
    if warmUpSeconds > 0 {
      try self.runner.warmUp(common, seconds: warmUpSeconds)
      cpu.waitForPostgresChildren(atMost: backends)
    }
    let before = cpu.snapshot()
    var usage: CPUUsage?
    let result = try self.runner.measure(common, seconds: seconds, logName: "list-\(clients)") {
      cpu.waitForPostgresChildren(atMost: backends)
      usage = CPUAccounting.usage(from: before, to: cpu.snapshot())
    }
    let failed = result.measurement.errors > 0
    return Cell(measurement: result.measurement, cpu: usage!, firstError: failed ? result.output.stderr : nil)
  }
}
