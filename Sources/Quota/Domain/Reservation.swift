public import Foundation

/// Mirrors `maas.quota.v1.ReservationState`.
public enum ReservationState: Int, Sendable, Hashable, Codable, CustomStringConvertible {
  /// Counts against the limit (as reserved) until committed, released or expired.
  case held = 1
  /// Turned into usage; stays counted (as used) until released.
  case committed = 2
  /// Given back by Release, before or after commit.
  case released = 3
  /// Neither committed nor released before its expire instant; given back automatically.
  case expired = 4

  public var description: String {
    switch self {
    case .held: "held"
    case .committed: "committed"
    case .released: "released"
    case .expired: "expired"
    }
  }
}

/// What a transition does to the tenant's counters for the reservation's resource. Storage applies
/// it in the same transaction as the state change, so a reservation is counted exactly once.
public enum CounterEffect: Sendable, Hashable {
  /// The transition changed nothing (a repeated commit, a release of a finished reservation).
  case none
  /// Commit: `reserved -= amount`, `used += amount`.
  case moveReservedToUsed(Int64)
  /// Release or expiry of a held reservation: `reserved -= amount`.
  case freeReserved(Int64)
  /// Release of a committed reservation: `used -= amount`.
  case freeUsed(Int64)
}

/// A reservation after a transition, and what the transition does to the counters.
public struct ReservationTransition: Sendable, Hashable {
  public var reservation: Reservation
  public var effect: CounterEffect
}

/// An amount of a stock resource set aside for one tenant.
public struct Reservation: Sendable, Hashable, Codable {
  public var id: String
  public var tenantID: String
  public var resource: QuotaResource
  public var amount: Int64
  public var state: ReservationState
  public var createdAt: Date
  /// When a held reservation expires; `nil` once committed or released (as on the wire), kept
  /// once expired so the answer says when it lapsed.
  public var expiresAt: Date?

  public init(
    id: String, tenantID: String, resource: QuotaResource, amount: Int64,
    state: ReservationState, createdAt: Date, expiresAt: Date?
  ) {
    self.id = id
    self.tenantID = tenantID
    self.resource = resource
    self.amount = amount
    self.state = state
    self.createdAt = createdAt
    self.expiresAt = expiresAt
  }

  /// A new held reservation of a validated Reserve, expiring `ttl` after `now`.
  /// A new reservation: HELD until `command.ttl` from `now`, or COMMITTED (no expiry) for a
  /// Reserve with `commit`.
  public init(id: String, command: ReserveCommand, now: Date) {
    self.init(
      id: id, tenantID: command.tenantID, resource: command.resource, amount: command.amount,
      state: command.commit ? .committed : .held, createdAt: now,
      expiresAt: command.commit ? nil : now.addingTimeInterval(command.ttl.timeInterval))
  }

  /// Whether the reservation has lapsed at `now`: held, and `now` at or past its expire instant.
  /// At the instant itself it has expired, so "released automatically at expire_time" holds.
  public func hasLapsed(at now: Date) -> Bool {
    guard state == .held, let expiresAt else { return false }
    return now >= expiresAt
  }

  /// Commit: held -> committed. Committing a committed reservation returns it unchanged; one
  /// that is released, expired or lapsed at `now` fails with `.reservationNotHeld`.
  public func committing(at now: Date) -> Result<ReservationTransition, QuotaError> {
    switch state {
    case .committed:
      return .success(ReservationTransition(reservation: self, effect: .none))
    case .released, .expired:
      return .failure(.reservationNotHeld(state))
    case .held:
      // A lapsed reservation is expired whatever its stored state says, so a late commit cannot
      // resurrect quota that another request may already have been admitted into.
      if hasLapsed(at: now) { return .failure(.reservationNotHeld(.expired)) }
      var next = self
      next.state = .committed
      next.expiresAt = nil
      return .success(ReservationTransition(reservation: next, effect: .moveReservedToUsed(amount)))
    }
  }

  /// Everything a Commit request does: the transition storage writes (nil when nothing changes)
  /// and the answer. A lapsed hold is expired by it, so it stops counting even though the commit
  /// is refused FAILED_PRECONDITION.
  public func commitOutcome(at now: Date) -> (transition: ReservationTransition?, answer: Result<Reservation, QuotaError>) {
    if hasLapsed(at: now), case .success(let expiry) = expiring(at: now) {
      return (expiry, .failure(.reservationNotHeld(.expired)))
    }
    switch committing(at: now) {
    case .success(let transition): return (transition, .success(transition.reservation))
    case .failure(let error): return (nil, .failure(error))
    }
  }

  /// Release: held -> released, committed -> released (giving the amount back, e.g. when the
  /// model it paid for is deleted). Releasing a released or expired reservation returns it
  /// unchanged, as quota.proto says; releasing a lapsed one expires it instead. Never fails.
  public func releasing(at now: Date) -> ReservationTransition {
    switch state {
    case .released, .expired:
      return ReservationTransition(reservation: self, effect: .none)
    case .committed:
      var next = self
      next.state = .released
      return ReservationTransition(reservation: next, effect: .freeUsed(amount))
    case .held:
      if hasLapsed(at: now) {
        var next = self
        next.state = .expired
        return ReservationTransition(reservation: next, effect: .freeReserved(amount))
      }
      var next = self
      next.state = .released
      next.expiresAt = nil
      return ReservationTransition(reservation: next, effect: .freeReserved(amount))
    }
  }

  /// Expiry, as a sweeper runs it: held and lapsed -> expired. A reservation that is not held is
  /// `.reservationNotHeld`; one not yet due is `.reservationNotDue`.
  public func expiring(at now: Date) -> Result<ReservationTransition, QuotaError> {
    guard state == .held else { return .failure(.reservationNotHeld(state)) }
    // A held reservation always has an expire instant; one without it never lapses.
    let due = expiresAt ?? .distantFuture
    guard now >= due else { return .failure(.reservationNotDue(expiresAt: due)) }
    var next = self
    next.state = .expired
    return .success(ReservationTransition(reservation: next, effect: .freeReserved(amount)))
  }
}

/// How long a reservation may stay held (`ReserveRequest.ttl`).
public enum ReservationTTL {
  /// Used when the request leaves `ttl` unset.
  public static let defaultValue: Duration = .seconds(5 * 60)
  /// The longest allowed; longer is INVALID_ARGUMENT "ttl".
  public static let maximum: Duration = .seconds(24 * 60 * 60)

  /// The TTL to use: the default when unset; a zero or negative TTL or one over the maximum is a
  /// violation of "ttl". Exactly 24 hours is allowed ("at most").
  public static func resolve(_ ttl: Duration?) -> Result<Duration, FieldViolation> {
    guard let ttl else { return .success(defaultValue) }
    guard ttl > .zero, ttl <= maximum else { return .failure(FieldViolation("ttl", .outOfRange)) }
    return .success(ttl)
  }
}

extension Duration {
  /// Seconds as Foundation counts them, for `Date` arithmetic.
  var timeInterval: TimeInterval {
    self / .seconds(1)
  }
}
