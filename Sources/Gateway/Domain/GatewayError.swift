import MaaSRuntime

/// Why the gateway's own logic refused a request (the Admin service's tenants and keys).
/// Handlers turn these into statuses; tests match cases, never message text.
///
/// Errors of the services behind the gateway are not wrapped here: they pass through as the
/// statuses those services sent.
public enum GatewayError: Error, Sendable, Hashable, CustomStringConvertible {
  /// The request is malformed; every problem found, each naming its field.
  case invalidRequest([FieldViolation])
  /// No tenant with this id or name (`field` says which was asked for).
  case tenantNotFound(field: String, value: String)
  /// A tenant already has this name.
  case tenantNameTaken(String)
  /// No key with this id under the tenant asked for (a key of another tenant answers alike).
  case apiKeyNotFound(String)

  public var description: String {
    switch self {
    case .invalidRequest(let violations):
      violations.map(\.description).joined(separator: "; ")
    case .tenantNotFound(let field, let value):
      "\(field): no tenant \"\(value)\""
    case .tenantNameTaken(let name):
      "name: a tenant named \"\(name)\" already exists"
    case .apiKeyNotFound(let id):
      "key_id: no API key \"\(id)\" for this tenant"
    }
  }

  /// A request with one bad field.
  static func invalid(_ field: String, _ problem: FieldViolation.Problem) -> GatewayError {
    .invalidRequest([FieldViolation(field, problem)])
  }
}

/// One problem with one request field.
public struct FieldViolation: Error, Sendable, Hashable, CustomStringConvertible {
  public enum Problem: Sendable, Hashable {
    case missing
    case tooLong(maxBytes: Int)
    case badTenantName
    case notPrintable
    case outOfRange(ClosedRange<Int>)
    case inPast
    /// A time no google.protobuf.Timestamp can hold.
    case outsideTimestampRange
    case malformed
    /// Both or neither of a oneof's choices.
    case oneOfRequired
    /// The idempotency key was used before by a different request of the same method.
    case reusedForDifferentRequest
    /// A page token altered, or from a listing with other filters.
    case notFromThisListing
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
      switch self.problem {
      case .missing: "is required"
      case .tooLong(let max): "is longer than \(max) bytes"
      case .badTenantName: "must be 1 to 63 characters from [a-z0-9-], starting with a letter"
      case .notPrintable: "contains whitespace or control characters"
      case .outOfRange(let range): "must be \(range.lowerBound) to \(range.upperBound)"
      case .inPast: "is in the past"
      case .outsideTimestampRange: TimestampRange.violation
      case .malformed: "is malformed"
      case .oneOfRequired: "exactly one of id and name is required"
      case .reusedForDifferentRequest: "was already used for a different request"
      case .notFromThisListing: "is not a page token of this listing"
      }
    return "\(self.field): \(reason)"
  }
}
