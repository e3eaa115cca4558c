import Foundation
import Quota
import Testing

@Suite("Reservations")
struct ReservationTests {
  static let created = utc(2026, 11, 22, 12)
  static let expiry = created.addingTimeInterval(300)
  static let before = expiry.addingTimeInterval(-1)

  static func reservation(_ state: ReservationState) -> Reservation {
    Reservation(
      id: "r1", tenantID: "acme", resource: .storageBytes, amount: 42, state: state,
      createdAt: created, expiresAt: state == .held || state == .expired ? expiry : nil)
  }

  enum Transition: String, Sendable { case commit, release, expire }

  struct Case: Sendable, CustomTestStringConvertible {
    var name: String
    var from: ReservationState
    var transition: Transition
    var at: Date
    var expected: Result<(ReservationState, CounterEffect), QuotaError>
    var testDescription: String { name }
  }

  static let cases: [Case] = [
    Case(name: "committing a held reservation moves its amount from reserved to used", from: .held,
      transition: .commit, at: before, expected: .success((.committed, .moveReservedToUsed(42)))),
    Case(name: "committing a committed reservation changes nothing", from: .committed,
      transition: .commit, at: before, expected: .success((.committed, .none))),
    Case(name: "committing a released reservation is refused", from: .released,
      transition: .commit, at: before, expected: .failure(.reservationNotHeld(.released))),
    Case(name: "committing an expired reservation is refused", from: .expired,
      transition: .commit, at: before, expected: .failure(.reservationNotHeld(.expired))),
    Case(name: "committing a held reservation at its expire instant is refused as expired", from: .held,
      transition: .commit, at: expiry, expected: .failure(.reservationNotHeld(.expired))),
    Case(name: "releasing a held reservation frees what it reserved", from: .held,
      transition: .release, at: before, expected: .success((.released, .freeReserved(42)))),
    Case(name: "releasing a committed reservation gives its amount back", from: .committed,
      transition: .release, at: before, expected: .success((.released, .freeUsed(42)))),
    Case(name: "releasing a released reservation changes nothing", from: .released,
      transition: .release, at: before, expected: .success((.released, .none))),
    Case(name: "releasing an expired reservation changes nothing", from: .expired,
      transition: .release, at: before, expected: .success((.expired, .none))),
    Case(name: "releasing a lapsed reservation expires it and frees what it reserved", from: .held,
      transition: .release, at: expiry, expected: .success((.expired, .freeReserved(42)))),
    Case(name: "expiring a lapsed reservation frees what it reserved", from: .held,
      transition: .expire, at: expiry, expected: .success((.expired, .freeReserved(42)))),
    Case(name: "expiring a reservation one second early is refused", from: .held,
      transition: .expire, at: before, expected: .failure(.reservationNotDue(expiresAt: expiry))),
    Case(name: "expiring a committed reservation is refused", from: .committed,
      transition: .expire, at: expiry, expected: .failure(.reservationNotHeld(.committed))),
    Case(name: "expiring a released reservation is refused", from: .released,
      transition: .expire, at: expiry, expected: .failure(.reservationNotHeld(.released))),
    Case(name: "expiring an expired reservation is refused", from: .expired,
      transition: .expire, at: expiry, expected: .failure(.reservationNotHeld(.expired))),
  ]

  @Test("Reservation transitions", arguments: cases)
  func transitions(_ c: Case) {
    let start = Self.reservation(c.from)
    let result: Result<ReservationTransition, QuotaError> =
      switch c.transition {
      case .commit: start.committing(at: c.at)
      case .release: .success(start.releasing(at: c.at))
      case .expire: start.expiring(at: c.at)
      }
    switch (result, c.expected) {
    case (.success(let t), .success(let (state, effect))):
      #expect(t.reservation.state == state)
      #expect(t.effect == effect)
      #expect(t.reservation.amount == start.amount)
      if effect == .none { #expect(t.reservation == start) }
    case (.failure(let error), .failure(let expected)):
      #expect(error == expected)
      #expect(error.category == .failedPrecondition)
    default:
      Issue.record("got \(result), expected \(c.expected)")
    }
  }

  @Test("Commit and release clear the expire instant, expiry keeps it")
  func expireInstant() {
    let held = Self.reservation(.held)
    #expect(held.committing(at: Self.before).success?.reservation.expiresAt == nil)
    #expect(held.releasing(at: Self.before).reservation.expiresAt == nil)
    #expect(held.expiring(at: Self.expiry).success?.reservation.expiresAt == Self.expiry)
  }

  @Test("A Commit of a lapsed hold expires it, freeing what it held, and is refused; a released one changes nothing")
  func commitOutcome() {
    let lapsed = Self.reservation(.held).commitOutcome(at: Self.expiry)
    #expect(lapsed.transition?.reservation.state == .expired)
    #expect(lapsed.transition?.effect == .freeReserved(42))
    #expect(lapsed.answer.failure == .reservationNotHeld(.expired))
    let held = Self.reservation(.held).commitOutcome(at: Self.before)
    #expect(held.transition?.effect == .moveReservedToUsed(42))
    #expect(held.answer.success?.state == .committed)
    let released = Self.reservation(.released).commitOutcome(at: Self.before)
    #expect(released.transition == nil)
    #expect(released.answer.failure == .reservationNotHeld(.released))
  }

  @Test("A reservation lapses at its expire instant, not before")
  func lapse() {
    let held = Self.reservation(.held)
    #expect(!held.hasLapsed(at: Self.before))
    #expect(held.hasLapsed(at: Self.expiry))
    #expect(!Self.reservation(.committed).hasLapsed(at: .distantFuture))
  }

  @Test("A new reservation is held and expires its TTL after now")
  func newReservation() throws {
    let command = try ReserveCommand.validate(
      tenantID: "acme", resource: .models, amount: 1, idempotencyKey: "k", ttl: .seconds(90)
    ).get()
    let r = Reservation(id: "r9", command: command, now: Self.created)
    #expect(r.state == .held)
    #expect(r.createdAt == Self.created)
    #expect(r.expiresAt == Self.created.addingTimeInterval(90))
  }

  @Test("TTL bounds", arguments: [
    (Duration?.none, Result<Duration, FieldViolation>.success(.seconds(300))),
    (.seconds(1), .success(.seconds(1))),
    (.milliseconds(1), .success(.milliseconds(1))),
    (.seconds(86_400), .success(.seconds(86_400))),
    (.seconds(86_400) + .nanoseconds(1), .failure(FieldViolation("ttl", .outOfRange))),
    (.zero, .failure(FieldViolation("ttl", .outOfRange))),
    (.seconds(-5), .failure(FieldViolation("ttl", .outOfRange))),
  ])
  func ttl(_ ttl: Duration?, _ expected: Result<Duration, FieldViolation>) {
    #expect(ReservationTTL.resolve(ttl) == expected)
  }
}
