import Foundation
import Postgres
import QuotaClient

// Quota intents: what repairs the quota of a replica that died inside a Schedule.
//
// A Schedule takes its CONCURRENT_GPUS (Reserve with commit) inside the transaction that writes
// its allocation, so a replica that dies between the two (or whose COMMIT outcome is lost and who
// dies before it can look) leaves a committed hold that no allocation accounts for: the tenant is
// over-counted for good. So before that transaction, the Schedule commits a row naming the
// allocation it is about to write, the tenant and the amount (a transaction of its own, sent with
// that transaction's first round trip, without waiting for the disk flush); the quota key is
// derived from the same allocation id.
//
// The maintenance loop (`reconcileQuotaIntents`) then deletes the intents whose allocation was
// written, and for each other one older than a grace period (no live Schedule is that slow)
// asks the quota service for the reservation under that key (Reserve again with the same key and
// request, which answers the first call's reservation) and releases it. Two guards make sure it
// never releases what a Schedule still writes an allocation for:
// - each Schedule transaction takes a transaction-level advisory lock on its allocation id
//   first, and the loop skips an intent whose lock it cannot take;
// - each Schedule transaction checks, after that lock, that its intent still exists, and gives
//   up (ABORTED) if the loop has already handled it.
extension SchedulerStore {
  /// The quota service's idempotency key for the Schedule writing allocation `id`.
  static func quotaKey(for id: UUID) -> String { "scheduler:schedule:\(id.uuidString.lowercased())" }

  /// The advisory lock of the Schedule writing allocation `id`: (class, key) in Postgres's
  /// two-integer key space, apart from the single-bigint keys the migrator uses. Two allocations
  /// whose ids share a key only wait for each other.
  static func intentLock(for id: UUID) -> (Int32, Int32) {
    let bytes = id.uuid
    let key = UInt32(bytes.0) << 24 | UInt32(bytes.1) << 16 | UInt32(bytes.2) << 8 | UInt32(bytes.3)
    return (0x5343_4851, Int32(bitPattern: key))  // "SCHQ"
  }

  static let deleteIntent = "DELETE FROM scheduler.quota_intents WHERE tenant_id = $1 AND allocation_id = $2"

  /// The INSERT of the intent of the Schedule about to write allocation `id` (a repeated one does
  /// nothing), run under its tenant; `commit` sends it as a transaction of its own ahead of its
  /// first round trip. Committed without waiting for the flush: a Postgres crash that loses it
  /// also rolls back the transaction that would take the quota after it, unless the quota
  /// service had taken it already (then the hold is over-counted as before intents; the quota
  /// service's own database is another).
  func quotaIntent(_ id: UUID, for command: ScheduleCommand) -> PostgresStatement {
    PostgresStatement(
      """
      INSERT INTO scheduler.quota_intents (allocation_id, tenant_id, amount, create_time)
      SELECT $1, $2, $3, $4 WHERE set_config('synchronous_commit', 'off', true) IS NOT NULL
      ON CONFLICT (allocation_id) DO NOTHING
      """,
      [id, command.tenantID, command.quotaAmount, currentTime()])
  }

  /// Deletes the intent (if `taken` says it was written) of a Schedule that ended without its
  /// allocation and without a hold left to give back (refused, or found the workload placed), so
  /// the loop does not ask the quota service about it. A failure leaves it to the loop.
  func dropQuotaIntent(_ id: UUID, of command: ScheduleCommand, _ taken: TakenQuota) async {
    guard taken.intentSent else { return }
    let tenant = command.tenantID
    do {
      _ = try await pool.transaction(tenant: tenant) { tx in
        try await tx.queryAndCommit(Self.deleteIntent, [tenant, id])
      }
    } catch {
      logger.debug("could not delete a quota intent; the maintenance loop will", metadata: ["allocation": "\(id)", "error": "\(error)"])
    }
  }

  /// What `reconcileQuotaIntents` did in one round.
  public struct IntentRound: Sendable, Hashable {
    /// Intents whose allocation was written: deleted, nothing else to do.
    public var settled = 0
    /// Intents without an allocation whose hold (if the quota service had one) was released.
    public var givenBack = 0
    /// Intents left for a later round: a Schedule still holds them, or the quota service did not
    /// answer.
    public var skipped = 0
  }

  /// One round of the repair described at the top of this file, over intents older than
  /// `grace` (at most `limit` without an allocation).
  /// - Throws: a database error (what is not done yet stays for the next round).
  public func reconcileQuotaIntents(olderThan grace: Duration, limit: Int = 100) async throws -> IntentRound {
    let cutoff = currentTime().addingTimeInterval(-grace.seconds)
    var round = IntentRound()
    round.settled = try await pool.query("SELECT scheduler.settle_quota_intents($1)", [cutoff])[0].decode(Int.self, at: 0)
    let due = try await pool.query(
      "SELECT tenant_id, allocation_id, amount FROM scheduler.due_quota_intents($1, $2)", [cutoff, Int32(clamping: limit)])
    for row in due {
      let tenant = try row.decode(String.self, at: 0)
      let id = try row.decode(UUID.self, at: 1)
      let amount = try row.decode(Int64.self, at: 2)
      switch try await settleIntent(id, tenant: tenant, amount: amount) {
      case .settled: round.settled += 1
      case .givenBack: round.givenBack += 1
      case .skipped: round.skipped += 1
      }
    }
    return round
  }

  private enum IntentOutcome { case settled, givenBack, skipped }

  /// One intent, under its advisory lock (not waited for: a Schedule holding it is alive) in a
  /// transaction of its tenant: deleted when its allocation exists; otherwise its hold is looked
  /// up and released, then it is deleted.
  private func settleIntent(_ id: UUID, tenant: String, amount: Int64) async throws -> IntentOutcome {
    let (lockClass, lockKey) = Self.intentLock(for: id)
    return try await pool.transaction(tenant: tenant) { tx in
      // Two statements: the second one's snapshot is taken after the lock, so it sees whatever
      // the Schedule that held the lock committed.
      let rows = try await tx.queryBatch([
        PostgresStatement("SELECT pg_try_advisory_xact_lock($1, $2)", [lockClass, lockKey]),
        PostgresStatement(
          """
          SELECT EXISTS (SELECT 1 FROM scheduler.allocations WHERE tenant_id = $1 AND id = $2),
                 EXISTS (SELECT 1 FROM scheduler.quota_intents WHERE tenant_id = $1 AND allocation_id = $2)
          """, [tenant, id]),
      ])
      guard try rows[0][0].decode(Bool.self, at: 0), try rows[1][0].decode(Bool.self, at: 1) else { return .skipped }
      let outcome: IntentOutcome
      if try rows[1][0].decode(Bool.self, at: 0) {
        outcome = .settled
      } else {
        do {
          // The same request under the same key: the quota service answers the reservation the
          // dead Schedule took (or takes one now, if its call never arrived), then it is released.
          let reservation = try await quota.acquire(
            tenant: tenant, stock: .concurrentGPUs, amount: amount, idempotencyKey: Self.quotaKey(for: id))
          try await quota.release(tenant: tenant, reservationID: reservation, idempotencyKey: "scheduler:release:\(reservation)")
          logger.notice(
            "gave back the quota hold of a Schedule that did not write its allocation",
            metadata: ["tenant": "\(tenant)", "allocation": "\(id)", "reservation": "\(reservation)", "gpus": "\(amount)"])
        } catch QuotaGateError.exhausted, QuotaGateError.tenantUnknown, QuotaGateError.reservationGone {
          // Nothing is held under that key (the Schedule was refused, or the tenant is gone).
        } catch {
          logger.warning(
            "could not settle a quota intent; retried next round", metadata: ["allocation": "\(id)", "error": "\(error)"])
          return .skipped
        }
        outcome = .givenBack
      }
      _ = try await tx.queryAndCommit(Self.deleteIntent, [tenant, id])
      return outcome
    }
  }
}
