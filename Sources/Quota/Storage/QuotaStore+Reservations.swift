import Foundation
import Postgres

extension QuotaStore {
  /// Reserve: checks and sets aside `command.amount` of a stock resource in one step.
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
        let counter = try await self.lockCounterWithLimit(
          tx, tenant: tenant, resource: resource, windowStart: Self.stockWindowStart)
        let limit = counter.limit
        return try await self.idempotent(command, in: tx, now: now) { () async throws -> Result<Reservation, QuotaError> in
          let freed = try await self.expireLapsed(tx, tenant: tenant, resource: resource, now: now)
          let reserved = counter.reserved - freed
          let admission = QuotaAdmission.admit(
            resource: resource, used: counter.used, reserved: reserved, amount: command.amount, limit: limit)
          if case .failure(let refusal) = admission {
            if freed > 0 { try await self.setReserved(tx, tenant: tenant, resource: resource, to: reserved) }
            return .failure(refusal)
          }
          let reservation = Reservation(id: UUID().uuidString.lowercased(), command: command, now: now)
          _ = try await tx.execute(
            """
            INSERT INTO quota.reservations (id, tenant_id, resource, amount, state, create_time, expire_time, update_time)
            VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $6)
            """,
            [
              reservation.id, tenant, resource.rawValue, reservation.amount, reservation.state.rawValue,
              reservation.createdAt, reservation.expiresAt,
            ])
          try await self.setReserved(tx, tenant: tenant, resource: resource, to: reserved + command.amount)
          return .success(reservation)
        }
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
        try await self.requireTenant(tx, tenant)
        // The resource decides which counter to lock; it never changes, so reading it unlocked is
        // safe, and locking the counter before the reservation keeps one lock order with Reserve.
        let found = try await tx.query("SELECT resource FROM quota.reservations WHERE tenant_id = $1 AND id = $2", [tenant, uuid])
        guard let row = found.first, let resource = QuotaResource(rawValue: try row.decode(Int.self, at: 0)) else {
          throw QuotaError.reservationNotFound(id)
        }
        _ = try await self.lockCounter(tx, tenant: tenant, resource: resource, windowStart: Self.stockWindowStart)
        return try await self.idempotent(command, in: tx, now: now) { () async throws -> Result<Reservation, QuotaError> in
          let reservation = try await self.lockReservation(tx, tenant: tenant, id: uuid)
          let (transition, answer) = decide(reservation, now)
          if let transition { try await self.apply(transition, tx, now: now) }
          return answer
        }
      }
    }.get()
  }

  private func lockReservation(_ tx: PostgresTransaction, tenant: String, id: UUID) async throws -> Reservation {
    let rows = try await tx.query(
      """
      SELECT resource, amount, state, create_time, expire_time FROM quota.reservations
      WHERE tenant_id = $1 AND id = $2 FOR UPDATE
      """, [tenant, id])
    let row = rows[0]
    guard let resource = QuotaResource(rawValue: try row.decode(Int.self, column: "resource")),
      let state = ReservationState(rawValue: try row.decode(Int.self, column: "state"))
    else { throw PostgresError(kind: .decoding, message: "reservation \(id) has an unknown resource or state") }
    return Reservation(
      id: id.uuidString.lowercased(), tenantID: tenant, resource: resource,
      amount: try row.decode(Int64.self, column: "amount"), state: state,
      createdAt: try row.decode(Date.self, column: "create_time"),
      expiresAt: try row.decode(Date?.self, column: "expire_time"))
  }

  /// Writes a transition's new state, and its effect on the counter (locked by the caller) and,
  /// for changes to what is committed, on the ledger.
  private func apply(_ transition: ReservationTransition, _ tx: PostgresTransaction, now: Date) async throws {
    let reservation = transition.reservation
    _ = try await tx.execute(
      "UPDATE quota.reservations SET state = $3, expire_time = $4, update_time = $5 WHERE tenant_id = $1 AND id = $2::uuid",
      [reservation.tenantID, reservation.id, reservation.state.rawValue, reservation.expiresAt, now])
    let (usedDelta, reservedDelta): (Int64, Int64)
    switch transition.effect {
    case .none: return
    case .moveReservedToUsed(let amount): (usedDelta, reservedDelta) = (amount, -amount)
    case .freeReserved(let amount): (usedDelta, reservedDelta) = (0, -amount)
    case .freeUsed(let amount): (usedDelta, reservedDelta) = (-amount, 0)
    }
    _ = try await tx.execute(
      """
      UPDATE quota.counters SET used = used + $4, reserved = reserved + $5
      WHERE tenant_id = $1 AND resource = $2 AND window_start = $3
      """,
      [reservation.tenantID, reservation.resource.rawValue, Self.stockWindowStart, usedDelta, reservedDelta])
    if usedDelta != 0 {
      _ = try await tx.execute(
        """
        INSERT INTO quota.ledger (tenant_id, resource, quantity, usage_time, window_start, source, reservation_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7::uuid)
        """,
        [
          reservation.tenantID, reservation.resource.rawValue, usedDelta, now, Self.stockWindowStart,
          usedDelta > 0 ? "commit" : "release", reservation.id,
        ])
    }
  }

  /// Marks the tenant's lapsed holds of `resource` expired; returns the amount they held. The
  /// caller holds the counter's lock and takes the amount off `reserved`.
  private func expireLapsed(_ tx: PostgresTransaction, tenant: String, resource: QuotaResource, now: Date)
    async throws -> Int64
  {
    let rows = try await tx.query(
      """
      WITH lapsed AS (
        UPDATE quota.reservations SET state = $4, update_time = $3
        WHERE tenant_id = $1 AND resource = $2 AND state = $5 AND expire_time <= $3
        RETURNING amount
      )
      SELECT coalesce(sum(amount), 0)::bigint FROM lapsed
      """,
      [tenant, resource.rawValue, now, ReservationState.expired.rawValue, ReservationState.held.rawValue])
    return try rows[0].decode(Int64.self, at: 0)
  }

  private func setReserved(_ tx: PostgresTransaction, tenant: String, resource: QuotaResource, to reserved: Int64)
    async throws
  {
    _ = try await tx.execute(
      "UPDATE quota.counters SET reserved = $4 WHERE tenant_id = $1 AND resource = $2 AND window_start = $3",
      [tenant, resource.rawValue, Self.stockWindowStart, reserved])
  }
}
