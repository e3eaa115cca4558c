public import QuotaClient
import Foundation
import MaaSRuntime
public import Logging
public import Postgres
import Synchronization

/// The registry's state in Postgres, and its quota in the quota service.
///
/// Every operation is one transaction scoped to its tenant (`maas.tenant_id`; row-level security
/// holds it there even if a query forgot its filter). Mutations follow one shape (`mutate`):
/// claim the idempotency key, decide, write, remember the answer, commit. Quota calls happen
/// inside that transaction, so nothing is committed unless the quota service agreed, and what
/// the quota service holds for a transaction that did not commit is given back.
///
/// Errors: a refusal the caller should see again on retry (NOT_FOUND, ALREADY_EXISTS,
/// FAILED_PRECONDITION, RESOURCE_EXHAUSTED) comes back as a thrown `RegistryError` and is
/// remembered under the idempotency key; `RegistryError.quotaUnavailable` and
/// `.quotaTenantUnknown` are thrown but never remembered (nothing happened; a retry may succeed);
/// `PostgresError` is the database's problem; `QuotaGateError` a quota answer the registry did
/// not expect.
public final class RegistryStore: Sendable {
  let pool: PostgresPool
  let quota: any QuotaGate
  let clock: any RegistryClock
  let logger: Logger
  /// How long a quota hold may stay uncommitted; a crashed replica's holds lapse after it.
  let holdTTL: Duration
  /// ListModels pages already read; nil when caching is off.
  let listings: ListingCache<ListModelsQuery, KeptPage>?
  /// Catalogue version reads, one per tenant at a time, shared by the callers that asked while
  /// the previous one ran (see `catalogVersion`).
  let versionReads: KeyedBatcher<String, Void, Int64>
  /// The connections mutations may hold: all but `ConnectionShare.reservedForReads`. A mutation
  /// may wait on the quota service inside its transaction; when quota hangs, mutations then
  /// wait for a turn here (and fail UNAVAILABLE after the pool's acquire timeout) while reads go
  /// on with the connections left.
  let mutations: ConnectionShare

  /// Models kept in `listings` unless told otherwise: a few tens of megabytes at most.
  public static let defaultListingCacheModels = 20_000

  /// - Parameter listingCacheModels: how many models the kept ListModels pages may hold
  ///   together; 0 reads every page from the database.
  public init(
    pool: PostgresPool, quota: any QuotaGate, clock: any RegistryClock = SystemRegistryClock(), logger: Logger,
    holdTTL: Duration = .seconds(60), listingCacheModels: Int = RegistryStore.defaultListingCacheModels
  ) {
    self.pool = pool
    self.quota = quota
    self.clock = clock
    self.logger = logger
    self.holdTTL = holdTTL
    self.listings = listingCacheModels > 0 ? ListingCache(capacity: listingCacheModels) : nil
    self.versionReads = KeyedBatcher()
    self.mutations = ConnectionShare(of: pool)
  }

  /// ListModels pages answered from the cache so far (exported by `RegistryMetrics`).
  public var listingCacheHits: Int { listings?.hits ?? 0 }
  /// ListModels pages read from the database while the cache is on (exported by `RegistryMetrics`).
  public var listingCacheReads: Int { listings?.reads ?? 0 }
  /// Models the cache holds now, and the most it holds; nil when it is off.
  public var listingCacheItems: (held: Int, capacity: Int)? { listings.map { ($0.weight, $0.capacity) } }

  // MARK: - The shape of every mutation

  /// Runs `body` in a transaction of the command's tenant under its idempotency key.
  ///
  /// 1. Claims (tenant, method, key). A concurrent call with the same key waits here until the
  ///    first commits, then replays its answer; a remembered answer is replayed at once (the
  ///    same key with another request is INVALID_ARGUMENT "idempotency_key").
  /// 2. `body` decides and writes, taking quota through `effects`.
  /// 3. The answer, success or refusal, is remembered, and everything commits together.
  /// 4. After COMMIT: unused holds are released, and reservations freed by deletes are released
  ///    (what fails stays in `pending_releases` for the maintenance loop).
  ///
  /// If the transaction fails, every hold it took is released. If COMMIT's outcome is unknown
  /// (the connection broke), the remembered answer decides: written by this call's last attempt,
  /// the call succeeded after all; written by another call with the key (a retry that was
  /// waiting on this call's claim, and went ahead once it rolled back), the holds are released
  /// and that call's answer is this one's; absent, the holds are released.
  func mutate<Command: RegistryCommand, Value: Codable & Sendable>(
    _ command: Command,
    _ body: (_ tx: PostgresTransaction, _ now: Date, _ effects: QuotaEffects) async throws -> Result<Value, RegistryError>
  ) async throws -> Value {
    let effects = QuotaEffects(tenant: command.tenantID)
    let answer: Result<Value, RegistryError>
    do {
      answer = try await mutations.run {
        try await pool.transaction(tenant: command.tenantID) { tx in
          // A deadlock makes the pool run this again; what the failed attempt held goes back.
          await self.releaseAfterFailure(effects)
          let attempt = effects.beginAttempt()
          // Whole microseconds, as the database keeps them: what a call answers is what a later
          // read returns.
          let now = Date(timeIntervalSince1970: (self.clock.now().timeIntervalSince1970 * 1_000_000).rounded(.down) / 1_000_000)
          if let prior = try await self.claim(tx, command, now: now, attempt: attempt) {
            return try prior.replay(for: command, as: Value.self)
          }
          let answer = try await body(tx, now, effects)
          try await self.remember(tx, command, answer)
          return answer
        }
      }
    } catch {
      // Shielded from cancellation: a client that hangs up mid-COMMIT must not stop the check
      // of what committed, nor the release of what it held.
      return try await Task { try await self.recover(command, effects, from: error, as: Value.self) }.value
    }
    await self.settle(effects)
    return try answer.get()
  }

  /// After a failed transaction: the answer if it committed after all, else the error, with
  /// every hold given back.
  private func recover<Command: RegistryCommand, Value: Codable & Sendable>(
    _ command: Command, _ effects: QuotaEffects, from error: any Error, as: Value.Type
  ) async throws -> Value {
    if effects.hasCommittedHolds, let failure = error as? PostgresError, failure.sqlState == nil,
      failure.kind == .connection || failure.kind == .cancelled
    {
      do {
        if let record = try await self.recall(command) {
          if record.attempt == effects.attempt {
            self.logger.info("commit outcome was unknown; the call had committed", metadata: ["method": "\(Command.method)"])
            effects.forgetHolds()
            await self.settle(effects)
          } else {
            // This transaction rolled back (the key's row would be its own otherwise): what it
            // took, committed or not, belongs to no row.
            self.logger.info(
              "commit outcome was unknown; the call had not committed, another call with its key had",
              metadata: ["method": "\(Command.method)"])
            await self.releaseAfterFailure(effects)
          }
          return try record.replay(for: command, as: Value.self).get()
        }
      } catch {
        self.logger.error(
          "commit outcome unknown and the database cannot tell; committed quota is kept (it may be counted twice until released)",
          metadata: ["method": "\(Command.method)", "error": "\(error)"])
        effects.keepCommittedHolds()
      }
    }
    await self.releaseAfterFailure(effects)
    throw error
  }

  // MARK: - Quota inside a transaction

  /// Reserves `amount` of `stock` for the command; `.failure` (to be remembered) when it does
  /// not fit. Throws when the quota service cannot decide.
  func reserve<Command: RegistryCommand>(
    _ stock: QuotaStock, _ amount: Int64, for command: Command, _ effects: QuotaEffects
  ) async throws -> Result<String, RegistryError> {
    let key = QuotaKeys.reserve(method: Command.method, callerKey: command.idempotencyKey, attempt: UUID().uuidString.lowercased())
    do {
      let id = try await quota.reserve(tenant: command.tenantID, stock: stock, amount: amount, ttl: holdTTL, idempotencyKey: key)
      effects.held(id)
      return .success(id)
    } catch QuotaGateError.exhausted(let message) {
      return .failure(.quotaExhausted(message))
    } catch QuotaGateError.tenantUnknown(let message) {
      throw RegistryError.quotaTenantUnknown(message)
    } catch QuotaGateError.unavailable(let message) {
      throw RegistryError.quotaUnavailable(message)
    }
  }

  /// Commits a hold taken by `reserve`: the last step before the transaction commits.
  func commit(_ reservationID: String, _ effects: QuotaEffects) async throws {
    effects.committing(reservationID)
    do {
      try await quota.commit(tenant: effects.tenant, reservationID: reservationID, idempotencyKey: QuotaKeys.commit(reservationID))
    } catch QuotaGateError.unavailable(let message) {
      throw RegistryError.quotaUnavailable(message)
    } catch QuotaGateError.reservationGone(let message) {
      // Only a hold that outlived its TTL inside this transaction: the call took too long.
      throw RegistryError.quotaUnavailable("the quota hold lapsed before it was committed: \(message)")
    }
  }

  /// Records reservations of rows this transaction deletes, to be released once it commits (and
  /// by the maintenance loop if that fails).
  func free(_ reservationIDs: [String], _ tx: PostgresTransaction, now: Date, _ effects: QuotaEffects) async throws {
    guard !reservationIDs.isEmpty else { return }
    _ = try await tx.execute(
      """
      INSERT INTO registry.pending_releases (tenant_id, reservation_id, create_time)
      SELECT $1, unnest($2::text[]), $3 ON CONFLICT DO NOTHING
      """, [effects.tenant, reservationIDs, now])
    effects.freed(reservationIDs)
  }

  /// After COMMIT: releases holds the transaction did not use and reservations it freed.
  private func settle(_ effects: QuotaEffects) async {
    let (unused, freed) = effects.afterCommit()
    await shielded {
      for id in unused { _ = await self.release(tenant: effects.tenant, id) }
      var released: [String] = []
      for id in freed where await self.release(tenant: effects.tenant, id) { released.append(id) }
      await self.clearPendingReleases(tenant: effects.tenant, released)
    }
  }

  /// After a failed transaction: gives back every hold it took. A hold whose commit was
  /// attempted may be committed, and would not lapse: if it cannot be released now, it is
  /// recorded for the maintenance loop.
  private func releaseAfterFailure(_ effects: QuotaEffects) async {
    let (held, committing) = effects.afterFailure()
    guard !held.isEmpty || !committing.isEmpty else { return }
    await shielded {
      for id in held { _ = await self.release(tenant: effects.tenant, id) }
      var stuck: [String] = []
      for id in committing where !(await self.release(tenant: effects.tenant, id)) { stuck.append(id) }
      if !stuck.isEmpty {
        do {
          try await self.pool.transaction(tenant: effects.tenant) { tx in
            try await self.free(stuck, tx, now: self.clock.now(), QuotaEffects(tenant: effects.tenant))
          }
        } catch {
          self.logger.error(
            "could not release or record quota reservations; they stay counted until released by hand",
            metadata: ["tenant": "\(effects.tenant)", "reservations": "\(stuck)", "error": "\(error)"])
        }
      }
    }
  }

  /// Releases one reservation; true when it is released (or the quota service no longer has it).
  func release(tenant: String, _ reservationID: String) async -> Bool {
    do {
      try await quota.release(tenant: tenant, reservationID: reservationID, idempotencyKey: QuotaKeys.release(reservationID))
      return true
    } catch QuotaGateError.reservationGone(let message) {
      logger.warning("released a reservation the quota service does not know", metadata: ["reservation": "\(reservationID)", "error": "\(message)"])
      return true
    } catch {
      logger.warning("could not release a quota reservation; retrying later", metadata: ["reservation": "\(reservationID)", "error": "\(error)"])
      return false
    }
  }

  func clearPendingReleases(tenant: String, _ ids: [String]) async {
    guard !ids.isEmpty else { return }
    do {
      _ = try await pool.transaction(tenant: tenant) { tx in
        try await tx.execute(
          "DELETE FROM registry.pending_releases WHERE tenant_id = $1 AND reservation_id = ANY($2::text[])", [tenant, ids])
      }
    } catch {
      logger.warning("could not clear released reservations; the maintenance loop releases them again", metadata: ["error": "\(error)"])
    }
  }

  /// Runs `body` to completion even if the calling task is cancelled (a client that hangs up
  /// must not leave quota held).
  private func shielded(_ body: @escaping @Sendable () async -> Void) async {
    await Task { await body() }.value
  }
}

/// The quota a mutation has taken and freed, for what happens after its transaction.
final class QuotaEffects: Sendable {
  private enum HoldState { case held, committing }
  private struct State {
    var holds: [(id: String, state: HoldState)] = []
    var freed: [String] = []
  }

  let tenant: String
  private let state = Mutex(State())
  /// The transaction attempt running now (a deadlock makes the pool run the body again); kept
  /// apart from `state`, which a failure clears, because recovery asks it after the failure.
  private let currentAttempt = Mutex<UUID?>(nil)

  init(tenant: String) { self.tenant = tenant }

  /// Starts a transaction attempt: the id its idempotency claim carries.
  func beginAttempt() -> UUID {
    let attempt = UUID()
    currentAttempt.withLock { $0 = attempt }
    return attempt
  }

  var attempt: UUID? { currentAttempt.withLock { $0 } }

  func held(_ id: String) { state.withLock { $0.holds.append((id, .held)) } }

  func committing(_ id: String) {
    state.withLock { state in
      if let index = state.holds.firstIndex(where: { $0.id == id }) { state.holds[index].state = .committing }
    }
  }

  func freed(_ ids: [String]) { state.withLock { $0.freed += ids } }

  var hasCommittedHolds: Bool { state.withLock { $0.holds.contains { $0.state == .committing } } }

  /// The transaction committed after all: its committed holds belong to its rows.
  func forgetHolds() { state.withLock { $0.holds.removeAll { $0.state == .committing } } }

  /// Nobody knows whether the transaction committed: keep its committed holds.
  func keepCommittedHolds() { forgetHolds() }

  /// After COMMIT: holds never committed (unused), and reservations freed. Clears both.
  func afterCommit() -> (unused: [String], freed: [String]) {
    state.withLock { state in
      defer { state = State() }
      return (state.holds.filter { $0.state == .held }.map(\.id), state.freed)
    }
  }

  /// After a rollback: every hold, by whether its commit was attempted. Clears everything (a
  /// rolled-back transaction freed nothing).
  func afterFailure() -> (held: [String], committing: [String]) {
    state.withLock { state in
      defer { state = State() }
      return (state.holds.filter { $0.state == .held }.map(\.id), state.holds.filter { $0.state == .committing }.map(\.id))
    }
  }
}
