import Foundation
import MaaSRuntime
public import Logging
public import Postgres

/// The quota service's state in Postgres: every operation is one transaction, scoped to its
/// tenant (row-level security holds it there), that applies the domain's rules to rows it has
/// locked, so admissions stay exact whatever the number of callers and replicas.
///
/// Serialisation point: the `counters` row of (tenant, resource, window). Every operation that
/// changes a counter locks that row first (`lockCounter`), then reads idempotency answers and
/// reservations, so two operations on the same counter never interleave, and a retried call
/// finds its first answer once it holds the lock. Those reads are statements after the locking
/// one (they may share its round trip, `PostgresTransaction.queryBatch`): under READ COMMITTED a
/// statement sees what was committed when it started, so rows read by the statement that waited
/// for the lock can predate what the lock's previous holder committed.
///
/// Errors: a refusal the caller should see again on retry (RESOURCE_EXHAUSTED, a reservation no
/// longer held) comes back as `Result.failure` and is remembered under the idempotency key;
/// `QuotaError` thrown (unknown tenant or reservation) is remembered nowhere; anything else
/// thrown is the database's problem (`PostgresError`).
public final class QuotaStore: Sendable {
  let pool: PostgresPool
  public let policy: QuotaPolicy
  let clock: any QuotaClock
  let logger: Logger
  /// Group commit for Consume (see `consume`).
  let batcher: KeyedBatcher<ConsumeKey, ConsumeCommand, Result<ConsumeReceipt, QuotaError>>

  /// - Parameters:
  ///   - maxConsumeBatch: most Consume calls of one tenant and resource applied in one
  ///     transaction (see `consume`).
  public init(
    pool: PostgresPool, policy: QuotaPolicy, clock: any QuotaClock = SystemQuotaClock(),
    logger: Logger, maxConsumeBatch: Int = 256
  ) {
    self.pool = pool
    self.policy = policy
    self.clock = clock
    self.logger = logger
    self.batcher = KeyedBatcher(maxBatch: maxConsumeBatch)
  }

  /// Stock resources keep one counter row, whose window "starts" at the Unix epoch.
  static let stockWindowStart = Date(timeIntervalSince1970: 0)

  // MARK: - Shared steps of a transaction

  /// - Throws: `QuotaError.tenantNotFound` when the service has never seen the tenant.
  func requireTenant(_ tx: PostgresTransaction, _ tenant: String) async throws {
    let rows = try await tx.query("SELECT 1 FROM quota.tenants WHERE tenant_id = $1", [tenant])
    if rows.isEmpty { throw QuotaError.tenantNotFound(tenant) }
  }

  /// Creates the counter row if needed and locks it until the transaction ends: the one place
  /// concurrent operations on a tenant's resource queue up.
  func lockCounter(_ tx: PostgresTransaction, tenant: String, resource: QuotaResource, windowStart: Date)
    async throws -> (used: Int64, reserved: Int64)
  {
    // The no-op DO UPDATE takes the row lock and returns the row in one round trip, whether the
    // row was just created or already there.
    let rows = try await tx.query(
      """
      INSERT INTO quota.counters AS c (tenant_id, resource, window_start) VALUES ($1, $2, $3)
      ON CONFLICT (tenant_id, resource, window_start) DO UPDATE SET used = c.used
      RETURNING used, reserved
      """, [tenant, resource.rawValue, windowStart])
    return (try rows[0].decode(Int64.self, column: "used"), try rows[0].decode(Int64.self, column: "reserved"))
  }

  /// `lockCounter` and `limit` in one round trip: creates or locks the counter row and returns
  /// it with the limit in force.
  /// - Throws: `QuotaError.tenantNotFound` when the service has never seen the tenant.
  func lockCounterWithLimit(_ tx: PostgresTransaction, tenant: String, resource: QuotaResource, windowStart: Date)
    async throws -> CounterWithLimit
  {
    let statement = Self.lockingCounterWithLimit(tenant: tenant, resource: resource, windowStart: windowStart)
    return try counterWithLimit(try await tx.query(statement.sql, statement.parameters), tenant: tenant, resource: resource)
  }

  /// The statement of `lockCounterWithLimit`, for sending with others in one round trip; its rows
  /// decode with `counterWithLimit`.
  static func lockingCounterWithLimit(tenant: String, resource: QuotaResource, windowStart: Date) -> PostgresStatement {
    PostgresStatement(
      """
      WITH tenant AS (
        SELECT l.value, l.resource IS NOT NULL AS own
        FROM quota.tenants t LEFT JOIN quota.limits l ON l.tenant_id = t.tenant_id AND l.resource = $2
        WHERE t.tenant_id = $1
      ), counter AS (
        INSERT INTO quota.counters AS c (tenant_id, resource, window_start) SELECT $1, $2, $3 FROM tenant
        ON CONFLICT (tenant_id, resource, window_start) DO UPDATE SET used = c.used
        RETURNING used, reserved
      )
      SELECT tenant.value, tenant.own, counter.used, counter.reserved FROM tenant, counter
      """, [tenant, resource.rawValue, windowStart])
  }

  /// The rows of `lockingCounterWithLimit`.
  /// - Throws: `QuotaError.tenantNotFound` when the service has never seen the tenant.
  func counterWithLimit(_ rows: PostgresRows, tenant: String, resource: QuotaResource) throws -> CounterWithLimit {
    guard let row = rows.first else { throw QuotaError.tenantNotFound(tenant) }
    let own = try row.decode(Bool.self, column: "own")
    let limit = own ? (try row.decode(Int64?.self, column: "value").map(QuotaLimit.limited) ?? .unlimited) : policy.defaults.limit(for: resource)
    return (limit, !own, try row.decode(Int64.self, column: "used"), try row.decode(Int64.self, column: "reserved"))
  }

  typealias CounterWithLimit = (limit: QuotaLimit, isDefault: Bool, used: Int64, reserved: Int64)

  /// Runs `body`, retrying once when another replica remembered an answer under the same key
  /// at the same moment (the unique violation rolls this attempt back; the retry replays the
  /// answer the other one stored).
  func retryingKeyRace<T>(_ body: () async throws -> T) async throws -> T {
    do {
      return try await body()
    } catch let error as PostgresError where error.sqlState == "23505" && error.constraint == "idempotency_pkey" {
      logger.debug("idempotency key raced with another call; replaying", metadata: ["error": "\(error)"])
      return try await body()
    }
  }
}
