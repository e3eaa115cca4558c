import Foundation
import Logging
import MaaSTesting
import Postgres
import PostgresMigrations
import Quota
import Synchronization

let quietLogger = Logger(label: "maas.quota.test") { _ in SwiftLogNoOpLogHandler() }

/// A clock tests move by hand, so expiry and window resets happen without sleeping.
final class ManualClock: QuotaClock {
  private let instant: Mutex<Date>

  init(_ start: Date) { self.instant = Mutex(start) }

  func now() -> Date { instant.withLock { $0 } }

  func advance(by interval: TimeInterval) { instant.withLock { $0 += interval } }

  func set(_ date: Date) { instant.withLock { $0 = date } }
}

/// A fresh database with the quota schema migrated, and a store on it connected as the service
/// role (row-level security applies), plus the owner's pool for checking rows behind its back.
struct StoreFixture {
  let store: QuotaStore
  let clock: ManualClock
  let app: PostgresPool
  let owner: PostgresPool
  let database: PostgresTestDatabase

  /// GetQuota of `tenant`.
  func usage(_ tenant: String) async throws -> QuotaSnapshot {
    try await store.quota(try TenantQuery.validate(tenantID: tenant).get())
  }

  /// The sum of the ledger's entries of one tenant's resource (in one window for flow ones).
  func ledgerSum(_ tenant: String, _ resource: QuotaResource, windowStart: Date? = nil) async throws -> Int64 {
    let rows = try await owner.query(
      """
      SELECT coalesce(sum(quantity), 0)::bigint FROM quota.ledger
      WHERE tenant_id = $1 AND resource = $2 AND ($3::timestamptz IS NULL OR window_start = $3)
      """, [tenant, resource.rawValue, windowStart])
    return try rows[0].decode(Int64.self, at: 0)
  }

  /// What `call` returned, and how many round trips to the database it took (the store's pool
  /// counts them; run nothing else on it meanwhile).
  func roundTrips<T>(_ call: () async throws -> T) async rethrows -> (T, Int) {
    let before = app.roundTrips
    let value = try await call()
    return (value, app.roundTrips - before)
  }

  /// A stock resource's counter row as stored, and what its reservations add up to by state.
  func stockCounter(_ tenant: String, _ resource: QuotaResource) async throws
    -> (used: Int64, reserved: Int64, committedSum: Int64, heldSum: Int64)
  {
    let rows = try await owner.query(
      """
      SELECT c.used, c.reserved,
        (SELECT coalesce(sum(amount), 0)::bigint FROM quota.reservations r
         WHERE r.tenant_id = c.tenant_id AND r.resource = c.resource AND r.state = $3) AS committed_sum,
        (SELECT coalesce(sum(amount), 0)::bigint FROM quota.reservations r
         WHERE r.tenant_id = c.tenant_id AND r.resource = c.resource AND r.state = $4) AS held_sum
      FROM quota.counters c WHERE c.tenant_id = $1 AND c.resource = $2
      """, [tenant, resource.rawValue, ReservationState.committed.rawValue, ReservationState.held.rawValue])
    return (
      try rows[0].decode(Int64.self, column: "used"), try rows[0].decode(Int64.self, column: "reserved"),
      try rows[0].decode(Int64.self, column: "committed_sum"), try rows[0].decode(Int64.self, column: "held_sum")
    )
  }

  /// A row count of a `quota` table for one tenant, seen by the owner.
  func count(_ table: String, tenant: String) async throws -> Int {
    precondition(["ledger", "idempotency", "reservations", "counters", "tenants", "limits"].contains(table))
    let rows = try await owner.query("SELECT count(*)::bigint FROM quota.\(table) WHERE tenant_id = $1", [tenant])
    return Int(try rows[0].decode(Int64.self, at: 0))
  }
}

/// Runs `body` with a store on a database of its own, `name` being unique per test.
func withStore<Result>(
  _ name: String,
  at start: Date = utc(2026, 11, 22, 12),
  policy: QuotaPolicy = QuotaPolicy(),
  _ body: (StoreFixture) async throws -> Result
) async throws -> Result {
  try await withMigratedDatabase(named: name, plan: try QuotaSchema.plan(serviceRole: "maas_app")) { db in
    let clock = ManualClock(start)
    let store = QuotaStore(pool: db.app, policy: policy, clock: clock, logger: quietLogger)
    return try await body(StoreFixture(store: store, clock: clock, app: db.app, owner: db.owner, database: db.database))
  }
}

// Commands built the way the API layer builds them, failing the test on invalid input.

func setLimits(
  _ tenant: String, _ limits: [QuotaResource: QuotaLimit] = [:], reset: [QuotaResource] = [], key: String = UUID().uuidString
) throws -> SetLimitsCommand {
  try SetLimitsCommand.validate(
    tenantID: tenant,
    limits: limits.map { resource, limit in
      switch limit {
      case .limited(let value): SetLimitsCommand.Entry(resource: resource, value: value, unlimited: false)
      case .unlimited: SetLimitsCommand.Entry(resource: resource, value: 0, unlimited: true)
      }
    },
    resetToDefault: reset, idempotencyKey: key
  ).get()
}

func consume(_ tenant: String, _ amount: Int64 = 1, of resource: QuotaResource = .apiCallsPerDay, key: String = UUID().uuidString)
  throws -> ConsumeCommand
{
  try ConsumeCommand.validate(tenantID: tenant, resource: resource, amount: amount, idempotencyKey: key).get()
}

func reserve(
  _ tenant: String, _ amount: Int64, of resource: QuotaResource = .models, ttl: Duration? = nil, key: String = UUID().uuidString,
  committing: Bool = false
) throws -> ReserveCommand {
  try ReserveCommand.validate(
    tenantID: tenant, resource: resource, amount: amount, idempotencyKey: key, ttl: ttl, commit: committing
  ).get()
}

func commit(_ tenant: String, _ id: String, key: String = UUID().uuidString) throws -> CommitCommand {
  CommitCommand(try ReservationCommand.validate(tenantID: tenant, reservationID: id, idempotencyKey: key).get())
}

func release(_ tenant: String, _ id: String, key: String = UUID().uuidString) throws -> ReleaseCommand {
  ReleaseCommand(try ReservationCommand.validate(tenantID: tenant, reservationID: id, idempotencyKey: key).get())
}

func record(
  _ tenant: String, _ quantity: Int64, of resource: QuotaResource = .gpuSeconds, at time: Date, now: Date,
  key: String = UUID().uuidString
) throws -> RecordUsageCommand {
  try RecordUsageCommand.validate(
    tenantID: tenant, resource: resource, quantity: quantity, usageTime: time, idempotencyKey: key, now: now
  ).get()
}

extension QuotaSnapshot {
  subscript(resource: QuotaResource) -> ResourceUsage { resources.first { $0.resource == resource }! }
}

/// The error `body` throws, if it is a `QuotaError`.
func quotaError(_ body: () async throws -> some Any) async -> QuotaError? {
  do {
    _ = try await body()
    return nil
  } catch {
    return error as? QuotaError
  }
}
