public import Foundation
import MaaSRuntime

/// Why the quota domain refused something. Tests and handlers match cases, never message text;
/// `description` is what a RESOURCE_EXHAUSTED or FAILED_PRECONDITION status carries.
public enum QuotaError: Error, Sendable, Hashable, Codable, CustomStringConvertible {
  /// The request itself is malformed; every problem found, each naming its field.
  case invalidRequest([FieldViolation])
  /// An amount was zero or negative.
  case nonPositiveAmount(Int64)
  /// `used + reserved + amount` does not fit in Int64: refused rather than wrapped or trapped.
  case counterOverflow(resource: QuotaResource, used: Int64, reserved: Int64, requested: Int64)
  /// The request does not fit under the limit. `used` includes reserved amounts; `resetsAt` is
  /// when the window ends for flow resources and `nil` for stock ones.
  case exhausted(
    resource: QuotaResource, limit: Int64, used: Int64, requested: Int64, resetsAt: Date?)
  /// Reserve on a flow resource, or Consume/RecordUsage on a stock one.
  case wrongResourceKind(QuotaResource, expected: QuotaResource.Kind)
  /// Commit or expiry of a reservation that is no longer held.
  case reservationNotHeld(ReservationState)
  /// Expiry asked for before the reservation's expire instant.
  case reservationNotDue(expiresAt: Date)
  /// The service has never seen the tenant (only SetLimits registers one).
  case tenantNotFound(String)
  /// No reservation with that id, or one of another tenant: the two answer alike.
  case reservationNotFound(String)

  /// How the handlers should answer, without the domain knowing gRPC.
  public enum Category: Sendable, Hashable {
    case invalidArgument(field: String)
    case resourceExhausted
    case failedPrecondition
    case notFound(field: String)
  }

  public var category: Category {
    switch self {
    case .invalidRequest(let violations):
      .invalidArgument(field: violations.first?.field ?? "request")
    case .nonPositiveAmount, .counterOverflow: .invalidArgument(field: "amount")
    case .wrongResourceKind: .invalidArgument(field: "resource")
    case .exhausted: .resourceExhausted
    case .reservationNotHeld, .reservationNotDue: .failedPrecondition
    case .tenantNotFound: .notFound(field: "tenant_id")
    case .reservationNotFound: .notFound(field: "reservation_id")
    }
  }

  public var description: String {
    switch self {
    case .invalidRequest(let violations):
      return violations.map(\.description).joined(separator: "; ")
    case .nonPositiveAmount(let amount):
      return "amount: must be greater than 0, got \(amount)"
    case let .counterOverflow(resource, used, reserved, requested):
      return "amount: \(resource) used \(used) + reserved \(reserved) + asked \(requested) "
        + "would overflow a 64-bit counter"
    case let .exhausted(resource, limit, used, requested, resetsAt):
      // The format quota.proto gives: "api_calls_per_day: limit 10000, used 10000, asked 1,
      // resets 2025-01-02T00:00:00Z".
      var text = "\(resource): limit \(limit), used \(used), asked \(requested)"
      if let resetsAt { text += ", resets \(UTC.timestamp(resetsAt))" }
      return text
    case let .wrongResourceKind(resource, expected):
      return "resource: \(resource) is not a \(expected) resource"
    case .reservationNotHeld(let state):
      return "reservation is \(state), not held"
    case .reservationNotDue(let expiresAt):
      return "reservation is held until \(UTC.timestamp(expiresAt))"
    case .tenantNotFound(let tenant):
      return "tenant_id: no tenant \"\(tenant)\" (SetLimits registers a tenant)"
    case .reservationNotFound(let id):
      return "reservation_id: no reservation \"\(id)\""
    }
  }
}

/// One problem with one request field.
public struct FieldViolation: Error, Sendable, Hashable, Codable, CustomStringConvertible {
  public enum Problem: Sendable, Hashable, Codable {
    case missing
    case tooLong(maxBytes: Int)
    case notPrintable
    case unspecified
    case notPositive
    case tooLarge(max: Int64)
    case wrongKind(expected: QuotaResource.Kind)
    case outOfRange
    case inFuture
    /// A time no google.protobuf.Timestamp can hold.
    case outsideTimestampRange
    /// The idempotency key was used before by a different request of the same method.
    case reusedForDifferentRequest
    /// A resource named twice in one list.
    case repeated(QuotaResource)
    /// A resource both given a limit and reset to the default.
    case alsoInLimits(QuotaResource)
    /// An end that is not after its start.
    case notAfterStart
  }

  /// The proto field name, as the INVALID_ARGUMENT message names it (e.g. "idempotency_key").
  public var field: String
  public var problem: Problem

  public init(_ field: String, _ problem: Problem) {
    self.field = field
    self.problem = problem
  }

  public var description: String {
    let reason =
      switch problem {
      case .missing: "is required"
      case .tooLong(let max): "is longer than \(max) bytes"
      case .notPrintable: "contains whitespace or control characters"
      case .unspecified: "must be a known resource"
      case .notPositive: "must be greater than 0"
      case .tooLarge(let max): "must be at most \(max)"
      case .wrongKind(let kind): "must be a \(kind) resource"
      case .outOfRange: "is out of range"
      case .inFuture: "is too far in the future"
      case .outsideTimestampRange: TimestampRange.violation
      case .reusedForDifferentRequest: "was already used for a different request"
      case .repeated(let resource): "names \(resource) more than once"
      case .alsoInLimits(let resource): "names \(resource), which limits also sets"
      case .notAfterStart: "must be after period_start"
      }
    return "\(field): \(reason)"
  }
}
