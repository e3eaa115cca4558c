import Foundation
import Postgres

// Reserve, Commit and Release are each two round trips, like Consume. The first carries BEGIN,
// the statement that locks the counter row, and a second statement that reads what the decision
// needs (the key's remembered answer, the reservation, the lapsed holds). That read is a statement
// of its own because of READ COMMITTED: a statement sees what was committed when it started, and
// the one that waits for the lock started before the lock's previous holder committed, so only a
// statement that starts once the lock is held sees everything earlier holders wrote. The server
// starts the second only after the first has finished (`PostgresTransaction.queryBatch`), so
// both still cost one round trip. The second round trip carries the writes and COMMIT
// (`queryAndCommit`). A replayed answer writes nothing, and its COMMIT is the second round trip.
extension QuotaStore {
  /// Reserve: checks and sets aside `command.amount` of a stock resource in one step; with
  /// `command.commit`, commits it in the same step (COMMITTED, counted as used, in the ledger).
  ///
  /// Lapsed reservations of the tenant's resource are expired first, in the same transaction,
  /// so a crashed caller's hold stops counting the moment it lapses, with no sweeper involved.
  /// - Throws: `QuotaError` when refused, or a database error.
  public func reserve(_ command: ReserveCommand) async throws -> Reservation {
    try await retryingKeyRace {
      try await pool.transaction(tenant: command.tenantID) { tx in
        let now = self.clock.now()
        let tenant = command.tenantID
        let resource = command.resource
        let rows = try await tx.queryBatch([
          Self.lockingCounterWithLimit(tenant: tenant, resource: resource, windowStart: Self.stockWindowStart),
          // Lapsed holds are expired only when the call is not a retry: a replay writes nothing.
          PostgresStatement(
            """
            WITH prior AS (
              SELECT fingerprint, answer FROM quota.idempotency WHERE tenant_id = $1 AND method = $6 AND key = $7
            ), lapsed AS (
              UPDATE quota.reservations SET state = $4, update_time = $3
              WHERE tenant_id = $1 AND resource = $2 AND state = $5 AND expire_time <= $3 AND NOT EXISTS (SELECT FROM prior)
              RETURNING amount
            )
            SELECT (SELECT coalesce(sum(amount), 0)::bigint FROM lapsed) AS freed,
              (SELECT fingerprint FROM prior) AS fingerprint, (SELECT answer FROM prior) AS answer
            """,
            [
              tenant, resource.rawValue, now, ReservationState.expired.rawValue, ReservationState.held.rawValue,
              ReserveCommand.method, command.idempotencyKey,
            ]),
        ])
        let counter = try self.counterWithLimit(rows[0], tenant: tenant, resource: resource)
        let found = rows[1][0]
        if let prior = try IdempotencyRecord(row: found) { return try prior.replay(for: command, as: Reservation.self) }
        let freed = try found.decode(Int64.self, column: "freed")
        let reserved = counter.reserved - freed
        let admission = QuotaAdmission.admit(
          resource: resource, used: counter.used, reserved: reserved, amount: command.amount, limit: counter.limit)
        let answer = admission.map { _ in Reservation(id: UUID().uuidString.lowercased(), command: command, now: now) }
        let remembered = try Self.remembering(answer, of: command, tenant: tenant, resource: resource, now: now)
        switch answer {
        case .success(let reservation):
          // A Reserve with commit counts as used at once, and the ledger records it as a Commit
          // would; a plain one is held (reserved) until Commit, Release or its expiry.
          let committed = reservation.state == .committed
          _ = try await tx.queryAndCommit(
            """
            WITH \(Self.rememberingAnswer), hold AS (
              INSERT INTO quota.reservations (id, tenant_id, resource, amount, state, create_time, expire_time, update_time)
              VALUES ($9::uuid, $1, $2, $10, $11, $8, $12, $8)
            ), entry AS (
              INSERT INTO quota.ledger (tenant_id, resource, quantity, usage_time, window_start, source, reservation_id)
              SELECT $1, $2, $10, $8, $3, 'commit', $9::uuid WHERE $15
            )
            UPDATE quota.counters SET reserved = $13, used = used + $14 WHERE tenant_id = $1 AND resource = $2 AND window_start = $3
            """,
            remembered + [
              reservation.id, reservation.amount, reservation.state.rawValue, reservation.expiresAt,
              committed ? reserved : reserved + command.amount, committed ? command.amount : 0, committed,
            ])
        case .failure:
          // Holds expired above are given back even though this call is refused.
          _ = try await tx.queryAndCommit(
            """
            WITH \(Self.rememberingAnswer)
            UPDATE quota.counters SET reserved = $9 WHERE tenant_id = $1 AND resource = $2 AND window_start = $3 AND $10 > 0
            """,
            remembered + [reserved, freed])
        }
        return answer
      }
    }.get()
  }

  /// Commit: turns a held reservation into usage.
  /// - Throws: `QuotaError.reservationNotFound`, `.reservationNotHeld` (released or expired; a
  ///   lapsed one is expired by this call), or a database error.
  public func commit(_ command: CommitCommand) async throws -> Reservation {
    try await transition(command, id: command.reservation.reservationID) { reservation, now in
      reservation.commitOutcome(at: now)
    }
  }

  /// Release: gives a held or committed reservation back; a finished one is returned unchanged.
  /// - Throws: `QuotaError.reservationNotFound`, or a database error.
  public func release(_ command: ReleaseCommand) async throws -> Reservation {
    try await transition(command, id: command.reservation.reservationID) { reservation, now in
      let transition = reservation.releasing(at: now)
      return (transition, .success(transition.reservation))
    }
  }

  /// The transaction Commit and Release share: lock the counter, then the reservation, decide
  /// with `decide`, apply the transition and its effect on the counter and the ledger.
  private func transition<Command: IdempotentCommand>(
    _ command: Command, id: String,
    decide: @escaping @Sendable (Reservation, Date) -> (ReservationTransition?, Result<Reservation, QuotaError>)
  ) async throws -> Reservation {
    // Ids are UUIDs the service assigned; anything else names no reservation.
    guard let uuid = UUID(uuidString: id) else { throw QuotaError.reservationNotFound(id) }
    return try await retryingKeyRace {
      try await pool.transaction(tenant: command.tenantID) { tx in
        let now = self.clock.now()
        let tenant = command.tenantID
        let rows = try await tx.queryBatch([
          // The reservation's resource decides which counter to lock; it never changes, so reading
          // it before the lock is safe, and locking the counter before the reservation keeps one
          // lock order with Reserve.
          PostgresStatement(
            """
            WITH known AS (
              SELECT FROM quota.tenants WHERE tenant_id = $1
            ), reservation AS (
              SELECT resource FROM quota.reservations WHERE tenant_id = $1 AND id = $2
            ), counter AS (
              INSERT INTO quota.counters AS c (tenant_id, resource, window_start) SELECT $1, resource, $3 FROM reservation
              ON CONFLICT (tenant_id, resource, window_start) DO UPDATE SET used = c.used
              RETURNING resource
            )
            SELECT EXISTS (SELECT FROM known) AS known, (SELECT resource FROM counter) AS resource
            """, [tenant, uuid, Self.stockWindowStart]),
          // Every writer of a reservation holds its counter's lock, so this lock never waits and
          // the state read here is the one the last holder committed.
          PostgresStatement(
            """
            SELECT r.resource, r.amount, r.state, r.create_time, r.expire_time, i.fingerprint, i.answer
            FROM quota.reservations r
            LEFT JOIN quota.idempotency i ON i.tenant_id = r.tenant_id AND i.method = $3 AND i.key = $4
            WHERE r.tenant_id = $1 AND r.id = $2
            FOR UPDATE OF r
            """, [tenant, uuid, Command.method, command.idempotencyKey]),
        ])
        guard try rows[0][0].decode(Bool.self, column: "known") else { throw QuotaError.tenantNotFound(tenant) }
        guard try rows[0][0].decode(Int?.self, column: "resource") != nil, let row = rows[1].first else {
          throw QuotaError.reservationNotFound(id)
        }
        if let prior = try IdempotencyRecord(row: row) { return try prior.replay(for: command, as: Reservation.self) }
        let reservation = try Self.reservation(row, id: uuid, tenant: tenant)
        let (transition, answer) = decide(reservation, now)
        try await self.remember(answer, of: command, applying: transition, to: reservation, tx, now: now)
        return answer
      }
    }.get()
  }

  private static func reservation(_ row: PostgresRow, id: UUID, tenant: String) throws -> Reservation {
    guard let resource = QuotaResource(rawValue: try row.decode(Int.self, column: "resource")),
      let state = ReservationState(rawValue: try row.decode(Int.self, column: "state"))
    else { throw PostgresError(kind: .decoding, message: "reservation \(id) has an unknown resource or state") }
    return Reservation(
      id: id.uuidString.lowercased(), tenantID: tenant, resource: resource,
      amount: try row.decode(Int64.self, column: "amount"), state: state,
      createdAt: try row.decode(Date.self, column: "create_time"),
      expiresAt: try row.decode(Date?.self, column: "expire_time"))
  }

  /// Remembers Commit's or Release's answer and writes its transition (if any): the reservation's
  /// new state, the effect on the counter (locked by the caller) and, for changes to what is
  /// committed, a ledger entry; then commits, all in one round trip.
  private func remember<Command: IdempotentCommand>(
    _ answer: Result<Reservation, QuotaError>, of command: Command, applying transition: ReservationTransition?,
    to current: Reservation, _ tx: PostgresTransaction, now: Date
  ) async throws {
    let next = transition?.reservation ?? current
    let (usedDelta, reservedDelta): (Int64, Int64)
    switch transition?.effect ?? .none {
    case .none: (usedDelta, reservedDelta) = (0, 0)
    case .moveReservedToUsed(let amount): (usedDelta, reservedDelta) = (amount, -amount)
    case .freeReserved(let amount): (usedDelta, reservedDelta) = (0, -amount)
    case .freeUsed(let amount): (usedDelta, reservedDelta) = (-amount, 0)
    }
    // Each part runs only when it changes something: the reservation when there is a transition,
    // the counter when it has an effect, the ledger when what is committed changes.
    _ = try await tx.queryAndCommit(
      """
      WITH \(Self.rememberingAnswer), moved AS (
        UPDATE quota.reservations SET state = $10, expire_time = $11, update_time = $8
        WHERE tenant_id = $1 AND id = $9::uuid AND $12
      ), counted AS (
        UPDATE quota.counters SET used = used + $13, reserved = reserved + $14
        WHERE tenant_id = $1 AND resource = $2 AND window_start = $3 AND ($13 <> 0 OR $14 <> 0)
      )
      INSERT INTO quota.ledger (tenant_id, resource, quantity, usage_time, window_start, source, reservation_id)
      SELECT $1, $2, $13, $8, $3, $15, $9::uuid WHERE $13 <> 0
      """,
      try Self.remembering(answer, of: command, tenant: current.tenantID, resource: current.resource, now: now) + [
        current.id, next.state.rawValue, next.expiresAt, transition != nil, usedDelta, reservedDelta,
        usedDelta > 0 ? "commit" : "release",
      ])
  }

  /// The CTE that remembers a call's answer under its idempotency key, for the writing
  /// statements above, whose first eight parameters are `remembering`'s.
  private static let rememberingAnswer = """
    answer AS (
      INSERT INTO quota.idempotency (tenant_id, method, key, fingerprint, answer, create_time)
      VALUES ($1, $4, $5, $6, $7, $8)
    )
    """

  /// $1 tenant, $2 resource, $3 the stock window, $4 method, $5 key, $6 fingerprint, $7 answer,
  /// $8 now: the parameters every writing statement of a reservation call starts with.
  private static func remembering<Command: IdempotentCommand, Answer: Codable>(
    _ answer: Result<Answer, QuotaError>, of command: Command, tenant: String, resource: QuotaResource, now: Date
  ) throws -> [(any PostgresEncodable)?] {
    [
      tenant, resource.rawValue, stockWindowStart, Command.method, command.idempotencyKey, command.fingerprint,
      try IdempotencyRecord.encode(answer), now,
    ]
  }
}
