import QuotaClient
import Foundation
import GRPCCore
import GRPCShimTransport
import Logging
import MaaSContracts
import MaaSTesting
import Postgres
import PostgresMigrations
import Quota
import Registry
import Synchronization

let quietLogger = Logger(label: "maas.registry.test") { _ in SwiftLogNoOpLogHandler() }

let testTokens = PageTokens(secret: "registry-tests-page-token-secret")

/// A sha256 that passes validation.
let sha = String(repeating: "ab", count: 32)

extension Result {
  var failure: Failure? {
    if case .failure(let error) = self { return error }
    return nil
  }
  var success: Success? { try? get() }
}

/// A quota service in memory, for storage tests that need to control its answers (limits,
/// outages) without a network; the gRPC tests use the real one.
final class InMemoryQuota: QuotaGate {
  struct Reservation: Hashable {
    var tenant: String
    var stock: QuotaStock
    var amount: Int64
    var state: State
  }
  enum State { case held, committed, released }

  struct Books {
    var limits: [QuotaStock: Int64] = [.models: 100, .storageBytes: 50_000_000_000]
    var reservations: [String: Reservation] = [:]
    var keys: [String: String] = [:]
    var unavailable = false
    var failCommits = false
    var calls: [String] = []
    /// Runs once, after the next commit is recorded and before it answers.
    var afterNextCommit: (@Sendable (_ reservationID: String) async -> Void)?
    /// Reserve calls wait for this before answering, while it is set (`holdReserves`).
    var reserveGate: Signal?
  }

  let books = Mutex(Books())

  func setLimit(_ stock: QuotaStock, _ value: Int64) { books.withLock { $0.limits[stock] = value } }
  func setUnavailable(_ down: Bool) { books.withLock { $0.unavailable = down } }
  func setFailCommits(_ fail: Bool) { books.withLock { $0.failCommits = fail } }
  /// From now on Reserve hangs, as a quota service that stopped answering would, until
  /// `answerReserves`.
  func holdReserves() { books.withLock { $0.reserveGate = Signal() } }
  /// Reserve calls held so far.
  var heldReserveCount: Int { books.withLock { $0.reserveGate?.waiting ?? 0 } }
  /// Lets the held Reserve calls, and all later ones, go on.
  func answerReserves() { books.withLock { $0.reserveGate }?.fire() }
  /// `hook` runs inside the next commit call, once it is recorded (the caller still waiting).
  func afterNextCommit(_ hook: @escaping @Sendable (_ reservationID: String) async -> Void) {
    books.withLock { $0.afterNextCommit = hook }
  }

  /// Held plus committed, as the quota service counts against the limit.
  func inUse(_ tenant: String, _ stock: QuotaStock) -> Int64 {
    books.withLock { books in
      books.reservations.values.filter { $0.tenant == tenant && $0.stock == stock && $0.state != .released }
        .reduce(0) { $0 + $1.amount }
    }
  }

  func count(_ state: State) -> Int { books.withLock { $0.reservations.values.filter { $0.state == state }.count } }

  func reserve(tenant: String, stock: QuotaStock, amount: Int64, ttl: Duration, idempotencyKey: String) async throws -> String {
    await books.withLock { $0.reserveGate }?.wait()
    return try books.withLock { books in
      books.calls.append("reserve")
      if books.unavailable { throw QuotaGateError.unavailable("quota is down") }
      if let id = books.keys[idempotencyKey] { return id }
      let used = books.reservations.values.filter { $0.tenant == tenant && $0.stock == stock && $0.state != .released }
        .reduce(0) { $0 + $1.amount }
      let limit = books.limits[stock]!
      if used + amount > limit {
        throw QuotaGateError.exhausted("\(stock.rawValue): limit \(limit), used \(used), asked \(amount)")
      }
      let id = UUID().uuidString.lowercased()
      books.reservations[id] = Reservation(tenant: tenant, stock: stock, amount: amount, state: .held)
      books.keys[idempotencyKey] = id
      return id
    }
  }

  func commit(tenant: String, reservationID: String, idempotencyKey: String) async throws {
    try books.withLock { books in
      books.calls.append("commit")
      if books.unavailable || books.failCommits { throw QuotaGateError.unavailable("quota is down") }
      guard let reservation = books.reservations[reservationID], reservation.tenant == tenant else {
        throw QuotaGateError.reservationGone("no reservation")
      }
      guard reservation.state != .released else { throw QuotaGateError.reservationGone("released") }
      books.reservations[reservationID]!.state = .committed
    }
    let hook = books.withLock { books in
      defer { books.afterNextCommit = nil }
      return books.afterNextCommit
    }
    await hook?(reservationID)
  }

  func release(tenant: String, reservationID: String, idempotencyKey: String) async throws {
    try books.withLock { books in
      books.calls.append("release")
      if books.unavailable { throw QuotaGateError.unavailable("quota is down") }
      guard books.reservations[reservationID]?.tenant == tenant else { throw QuotaGateError.reservationGone("no reservation") }
      books.reservations[reservationID]!.state = .released
    }
  }
}

/// A fresh database with the registry schema migrated, a store on it connected as the service
/// role (row-level security applies), and the owner's pool for checking rows behind its back.
struct StoreFixture {
  let store: RegistryStore
  let quota: InMemoryQuota
  let app: PostgresPool
  let owner: PostgresPool
  let database: PostgresTestDatabase

  /// Another replica of the registry on the same database and quota.
  func secondReplica() -> RegistryStore { RegistryStore(pool: app, quota: quota, logger: quietLogger) }

  /// Rows of a registry table for one tenant, as the owner sees them.
  func count(_ table: String, tenant: String) async throws -> Int {
    precondition(["models", "versions", "aliases", "idempotency", "pending_releases"].contains(table))
    let rows = try await owner.query("SELECT count(*) FROM registry.\(table) WHERE tenant_id = $1", [tenant])
    return try rows[0].decode(Int.self, at: 0)
  }
}

/// Opens pools on a fresh database `name`, migrates `plan` as the owner, and runs `body`.
func withDatabase<Result>(
  _ name: String, plan: MigrationPlan, _ body: (_ app: PostgresPool, _ owner: PostgresPool) async throws -> Result
) async throws -> Result {
  try await withMigratedDatabase(named: name, plan: plan) { db in try await body(db.app, db.owner) }
}

/// Runs `body` with a registry store on a database of its own, `name` being unique per test.
func withStore<Result>(_ name: String, _ body: (StoreFixture) async throws -> Result) async throws -> Result {
  try await withMigratedDatabase(named: name, plan: try RegistrySchema.plan(serviceRole: "maas_app")) { db in
    let quota = InMemoryQuota()
    let store = RegistryStore(pool: db.app, quota: quota, logger: quietLogger)
    return try await body(StoreFixture(store: store, quota: quota, app: db.app, owner: db.owner, database: db.database))
  }
}

/// The registry over the real transport, calling the real quota service over the real
/// transport, each on a database of its own.
struct ServiceFixture {
  let registry: Maas_Registry_V1_ModelRegistry.Client<ShimClientTransport>
  let quota: Maas_Quota_V1_Quota.Client<ShimClientTransport>
  /// The registry's raw client, for calls with hand-made bytes.
  let registryClient: GRPCClient<ShimClientTransport>
  let registryOwner: PostgresPool
  let store: RegistryStore

  /// Registers `tenant` with the quota service, with optional limits.
  func register(_ tenant: String, models: Int64? = nil, storageBytes: Int64? = nil) async throws {
    _ = try await quota.setLimits(.with {
      $0.tenantID = tenant
      if let models { $0.limits.append(.with { $0.resource = .models; $0.value = models }) }
      if let storageBytes { $0.limits.append(.with { $0.resource = .storageBytes; $0.value = storageBytes }) }
      $0.idempotencyKey = "register-\(UUID().uuidString)"
    })
  }

  /// Used (committed) and reserved of one stock resource, as the quota service reports it.
  func usage(_ tenant: String, _ resource: Maas_Quota_V1_Resource) async throws -> QuotaUsage {
    let answer = try await quota.getQuota(.with { $0.tenantID = tenant })
    let line = answer.resources.first { $0.resource == resource }!
    return QuotaUsage(line.used, line.reserved)
  }

  func count(_ table: String, tenant: String) async throws -> Int {
    precondition(["models", "versions", "aliases", "idempotency", "pending_releases"].contains(table))
    let rows = try await registryOwner.query("SELECT count(*) FROM registry.\(table) WHERE tenant_id = $1", [tenant])
    return try rows[0].decode(Int.self, at: 0)
  }
}

/// Starts the quota service (its own database) and the registry (another database) on loopback
/// servers, the registry calling the quota service over gRPC, and runs `body` with clients of both.
func withService(_ name: String, quotaTimeout: Duration = .seconds(5), _ body: (ServiceFixture) async throws -> Void)
  async throws
{
  try await withDatabase("\(name)_quota", plan: try QuotaSchema.plan(serviceRole: "maas_app")) { quotaApp, _ in
    let quotaStore = QuotaStore(pool: quotaApp, policy: QuotaPolicy(), logger: quietLogger)
    try await withLoopbackServer(services: [QuotaRPCService(store: quotaStore, logger: quietLogger)]) { quotaClient, quotaServer in
      let quota = Maas_Quota_V1_Quota.Client(wrapping: quotaClient)
      try await withDatabase("\(name)_registry", plan: try RegistrySchema.plan(serviceRole: "maas_app")) { app, owner in
        let store = RegistryStore(pool: app, quota: GRPCQuotaGate(channel: quotaServer.clientTransport, timeout: quotaTimeout), logger: quietLogger)
        let service = RegistryRPCService(store: store, tokens: testTokens, logger: quietLogger)
        try await withLoopbackServer(services: [service]) { client, _ in
          try await body(ServiceFixture(
            registry: Maas_Registry_V1_ModelRegistry.Client(wrapping: client), quota: quota, registryClient: client,
            registryOwner: owner, store: store))
        }
      }
    }
  }
}

/// A stock resource's usage as the quota service reports it.
struct QuotaUsage: Equatable, CustomStringConvertible {
  var used: Int64
  var reserved: Int64
  init(_ used: Int64, _ reserved: Int64) {
    self.used = used
    self.reserved = reserved
  }
  var description: String { "used \(used), reserved \(reserved)" }
}

/// The `RegistryError` `body` throws, if it throws one.
func registryError(_ body: () async throws -> some Any) async -> RegistryError? {
  do {
    _ = try await body()
    return nil
  } catch {
    return error as? RegistryError
  }
}

// Commands built the way the API layer builds them, failing the test on invalid input.

func createModel(
  _ tenant: String, _ name: String, labels: [String: String] = [:], key: String = UUID().uuidString
) throws -> CreateModelCommand {
  try CreateModelCommand.validate(tenantID: tenant, name: name, description: "", labels: labels, idempotencyKey: key).get()
}

func createVersion(
  _ tenant: String, _ model: String, _ version: String, size: Int64 = 0, labels: [String: String] = [:],
  key: String = UUID().uuidString
) throws -> CreateVersionCommand {
  try CreateVersionCommand.validate(
    tenantID: tenant, model: .name(model), version: version,
    artifact: Artifact(uri: "s3://bucket/\(model)/\(version)", format: "safetensors", sizeBytes: size, sha256: sha),
    labels: labels, idempotencyKey: key
  ).get()
}

func listModels(
  _ tenant: String, pageSize: Int32 = 1000, token: String = "", prefix: String = "", labels: [String: String] = [:],
  state: ModelState? = nil
) throws -> ListModelsQuery {
  try ListModelsQuery.validate(
    tenantID: tenant, pageSize: pageSize, pageToken: token, namePrefix: prefix, labelSelector: labels, state: .some(state),
    tokens: testTokens
  ).get()
}
