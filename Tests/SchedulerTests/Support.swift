import QuotaClient
import Foundation
import Logging
import MaaSTesting
@testable import Scheduler
import Synchronization

let quietLogger = Logger(label: "maas.scheduler.test") { _ in SwiftLogNoOpLogHandler() }
let GiB: Int64 = 1 << 30
let epoch = Date(timeIntervalSince1970: 1_700_000_000)

/// A GPU of a type with the usual memory.
func gpu(_ uuid: String, _ model: String = "H100-80GB", memory: Int64 = 80 * GiB, mig: Bool = false) -> GPU {
  GPU(
    uuid: uuid, model: model, memoryBytes: memory,
    migProfiles: mig
      ? [MIGProfile(name: "1g.10gb", memoryBytes: 10 * GiB, slices: 1, maxInstances: 7),
         MIGProfile(name: "3g.40gb", memoryBytes: 40 * GiB, slices: 3, maxInstances: 2)]
      : [],
    migSlices: mig ? 7 : 0)
}

/// A READY node named `name` with `count` GPUs of `model` (uuids "<name>-g<i>").
func node(
  _ name: String, _ count: Int, model: String = "H100-80GB", memory: Int64 = 80 * GiB, mig: Bool = false,
  labels: [String: String] = [:], cordoned: Bool = false, heartbeat: Date = epoch, used: Int = 0
) -> Node {
  var gpus = (0..<count).map { gpu("\(name)-g\($0)", model, memory: memory, mig: mig) }
  for index in 0..<min(used, count) { gpus[index].exclusive = true }
  return Node(name: name, labels: labels, gpus: gpus, cordoned: cordoned, lastHeartbeat: heartbeat)
}

/// Registers node `name` with `count` H100s (uuids "<name>-g<i>") through the store.
func register(_ store: SchedulerStore, _ name: String, gpus count: Int) async throws {
  _ = try await store.registerNode(
    try RegisterNodeCommand.validate(name: name, labels: [:], gpus: (0..<count).map { gpu("\(name)-g\($0)") }).get())
}

/// A store on a fresh database `name`, with a quota in memory, a clock the test moves, a grace of
/// an hour (no node falls silent unless a test moves the clock that far), and one node "a" of
/// `gpus` H100s ("a-g0", ...); the database is given too, for looking behind the store's back.
func withStore(
  named name: String, gpus: Int, _ body: (SchedulerStore, InMemoryQuota, TestClock, MigratedDatabase) async throws -> Void
) async throws {
  try await withMigratedDatabase(named: name, plan: try SchedulerSchema.plan(serviceRole: "maas_app")) { db in
    let quota = InMemoryQuota()
    let clock = TestClock()
    let store = SchedulerStore(pool: db.app, quota: quota, heartbeatGrace: .seconds(3600), logger: quietLogger, clock: clock.reading)
    try await register(store, "a", gpus: gpus)
    try await body(store, quota, clock, db)
  }
}

/// A quota service in memory for storage tests: limits per tenant, counts what is held.
final class InMemoryQuota: QuotaGate {
  struct Books {
    var limit: Int64 = 1_000_000
    /// While set, Release answers UNAVAILABLE, as a quota service that is down would.
    var down = false
    var held: [String: (tenant: String, amount: Int64, released: Bool)] = [:]
    /// Idempotency key -> reservation: a repeated Reserve answers the first one's, as the
    /// quota service does.
    var keys: [String: String] = [:]
    var reserves = 0
  }
  let books = Mutex(Books())

  func setLimit(_ limit: Int64) { books.withLock { $0.limit = limit } }

  func setDown(_ down: Bool) { books.withLock { $0.down = down } }

  func inUse(_ tenant: String) -> Int64 {
    books.withLock { $0.held.values.filter { $0.tenant == tenant && !$0.released }.reduce(0) { $0 + $1.amount } }
  }

  func reserve(tenant: String, stock: QuotaStock, amount gpus: Int64, ttl: Duration, idempotencyKey: String) async throws -> String {
    try books.withLock { books in
      books.reserves += 1
      if let id = books.keys[idempotencyKey] { return id }
      let used = books.held.values.filter { $0.tenant == tenant && !$0.released }.reduce(0) { $0 + $1.amount }
      if used + gpus > books.limit { throw QuotaGateError.exhausted("concurrent_gpus: limit \(books.limit), used \(used), asked \(gpus)") }
      let id = UUID().uuidString.lowercased()
      books.held[id] = (tenant, gpus, false)
      books.keys[idempotencyKey] = id
      return id
    }
  }

  /// Runs inside Schedule's transaction, just before its write and COMMIT: where a test breaks
  /// the database.
  let beforeCommitting = Mutex<(@Sendable () async throws -> Void)?>(nil)

  func commit(tenant: String, reservationID: String, idempotencyKey: String) async throws {
    if let hook = beforeCommitting.withLock({ $0 }) { try await hook() }
  }

  /// How many Reserve calls it answered, replays included.
  var reserveCalls: Int { books.withLock { $0.reserves } }

  /// Whether the reservation was taken and not given back.
  func isHeld(_ reservation: String) -> Bool {
    books.withLock { $0.held[reservation].map { !$0.released } ?? false }
  }

  func release(tenant: String, reservationID: String, idempotencyKey: String) async throws {
    try books.withLock { books in
      if books.down { throw QuotaGateError.unavailable("quota service down (test)") }
      books.held[reservationID]?.released = true
    }
  }
}

/// A clock tests move by hand.
final class TestClock: Sendable {
  private let current = Mutex(epoch)

  var now: Date { current.withLock { $0 } }

  func advance(by seconds: TimeInterval) { current.withLock { $0 += seconds } }

  var reading: @Sendable () -> Date { { [self] in now } }
}

/// The GPUs whose placements rows exceed them, read in one statement: more shared memory or MIG
/// slices than the GPU has, two exclusive holders, an exclusive holder beside others, counters
/// that differ from the rows, or MIG instances whose blocks of slice positions (`MIGLayout`: the
/// slices rounded up to a power of two, from the start) overlap or differ from the GPU's mask.
let overAllocatedGPUs = """
  SELECT g.uuid FROM scheduler.gpus g
    LEFT JOIN (
      SELECT q.*, CASE WHEN q.mig_slices > 0
                       THEN ((1::bigint << (1 << ceil(log(2, q.mig_slices))::integer)) - 1) << q.mig_start END AS block,
                  CASE WHEN q.mig_slices > 0 THEN 1 << ceil(log(2, q.mig_slices))::integer END AS width
        FROM scheduler.placements q
    ) p ON p.gpu_uuid = g.uuid
   GROUP BY g.uuid, g.memory_bytes, g.mig_slices, g.allocated_memory_bytes, g.allocated_mig_mask
  HAVING coalesce(bit_or(p.block), 0) <> g.allocated_mig_mask
      OR coalesce(sum(p.width), 0) <> bit_count(coalesce(bit_or(p.block), 0)::bit(64))
      OR coalesce(sum(p.memory_bytes) FILTER (WHERE NOT p.exclusive), 0) > g.memory_bytes
      OR coalesce(sum(p.mig_slices), 0) > g.mig_slices
      OR count(p.gpu_uuid) FILTER (WHERE p.exclusive) > 1
      OR (count(p.gpu_uuid) FILTER (WHERE p.exclusive) = 1 AND count(p.gpu_uuid) FILTER (WHERE NOT p.exclusive) > 0)
      OR coalesce(sum(p.memory_bytes) FILTER (WHERE NOT p.exclusive), 0) <> g.allocated_memory_bytes
  ORDER BY g.uuid
  """
