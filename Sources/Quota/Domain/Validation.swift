public import Foundation
import MaaSRuntime

/// Field rules shared by every quota request. Each check appends to a list instead of returning
/// early, so a caller learns every problem with a request at once.
public enum QuotaFieldRules {
  /// Longest tenant id, in UTF-8 bytes (bytes rather than characters so storage can bound it).
  public static let maxTenantIDBytes = 128
  /// Longest idempotency key, in UTF-8 bytes: quota.proto says "1 to 128 bytes".
  public static let maxIdempotencyKeyBytes = 128
  /// Largest amount one request may ask for. A quarter of Int64 leaves headroom so that
  /// `used + reserved + amount` of a handful of admitted requests cannot reach Int64.max.
  public static let maxAmount: Int64 = .max / 4
  /// How far in the future RecordUsage's `usage_time` may be (quota.proto: 5 minutes), for
  /// clock skew between the reporter and the service.
  public static let usageTimeSkew: TimeInterval = 5 * 60

  static func tenantID(_ value: String, into problems: inout [FieldViolation]) {
    if value.isEmpty {
      problems.append(FieldViolation("tenant_id", .missing))
    } else {
      if value.utf8.count > maxTenantIDBytes {
        problems.append(FieldViolation("tenant_id", .tooLong(maxBytes: maxTenantIDBytes)))
      }
      if !isPrintable(value) { problems.append(FieldViolation("tenant_id", .notPrintable)) }
    }
  }

  static func idempotencyKey(_ value: String, into problems: inout [FieldViolation]) {
    if value.isEmpty {
      problems.append(FieldViolation("idempotency_key", .missing))
    } else if value.utf8.count > maxIdempotencyKeyBytes {
      problems.append(
        FieldViolation("idempotency_key", .tooLong(maxBytes: maxIdempotencyKeyBytes)))
    } else if value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
      // Any other text will do as a key, but Postgres text cannot hold a NUL.
      problems.append(FieldViolation("idempotency_key", .notPrintable))
    }
  }

  static func resource(
    _ value: QuotaResource?, kind: QuotaResource.Kind, into problems: inout [FieldViolation]
  ) -> QuotaResource? {
    guard let value else {
      problems.append(FieldViolation("resource", .unspecified))
      return nil
    }
    guard value.kind == kind else {
      problems.append(FieldViolation("resource", .wrongKind(expected: kind)))
      return nil
    }
    return value
  }

  static func amount(_ value: Int64, field: String, into problems: inout [FieldViolation]) {
    if value <= 0 {
      problems.append(FieldViolation(field, .notPositive))
    } else if value > maxAmount {
      problems.append(FieldViolation(field, .tooLarge(max: maxAmount)))
    }
  }

  /// Most labels one ledger entry keeps, and the longest key and value, in UTF-8 bytes.
  public static let maxLabels = 32
  public static let maxLabelKeyBytes = 63
  public static let maxLabelValueBytes = 256

  /// Label keys are short names (letters, digits, `.`, `_`, `-`, `/`), so they can be filtered on
  /// and shown as columns; values are any printable text.
  static func labels(_ labels: [String: String], into problems: inout [FieldViolation]) {
    if labels.count > maxLabels {
      problems.append(FieldViolation("labels", .tooLarge(max: Int64(maxLabels))))
    }
    for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
      let keyIsName =
        !key.isEmpty
        && key.unicodeScalars.allSatisfy {
          $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-/".unicodeScalars.contains($0))
        }
      if !keyIsName {
        problems.append(FieldViolation("labels", .notPrintable))
      } else if key.utf8.count > maxLabelKeyBytes {
        problems.append(FieldViolation("labels[\(key)]", .tooLong(maxBytes: maxLabelKeyBytes)))
      } else if value.utf8.count > maxLabelValueBytes {
        problems.append(FieldViolation("labels[\(key)]", .tooLong(maxBytes: maxLabelValueBytes)))
      } else if !value.isEmpty && !isPrintable(value.replacingOccurrences(of: " ", with: "_")) {
        problems.append(FieldViolation("labels[\(key)]", .notPrintable))
      }
    }
  }

  static func reservationID(_ value: String, into problems: inout [FieldViolation]) {
    if value.isEmpty { problems.append(FieldViolation("reservation_id", .missing)) }
  }

  /// Tenant ids travel in logs, metrics labels and SQL parameters: whitespace and control or
  /// format characters there are a mistake or an attack, never a real tenant.
  static func isPrintable(_ value: String) -> Bool {
    value.unicodeScalars.allSatisfy { scalar in
      if scalar.properties.isWhitespace { return false }
      switch scalar.properties.generalCategory {
      case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator,
        .paragraphSeparator:
        return false
      default:
        return true
      }
    }
  }

  static func finish<T>(_ problems: [FieldViolation], _ make: () -> T) -> Result<T, QuotaError> {
    problems.isEmpty ? .success(make()) : .failure(.invalidRequest(problems))
  }
}

/// A validated Reserve: a stock resource, a sane amount and a resolved TTL.
public struct ReserveCommand: Sendable, Hashable {
  public var tenantID: String
  public var resource: QuotaResource
  public var amount: Int64
  public var idempotencyKey: String
  public var ttl: Duration
  /// Committed in the same step: the reservation is COMMITTED at once (no expiry) and its
  /// amount counts as used.
  public var commit: Bool = false

  /// - Parameter resource: `nil` for RESOURCE_UNSPECIFIED or a number this build does not know.
  /// - Parameter ttl: `nil` when the request leaves it unset (5 minutes).
  public static func validate(
    tenantID: String, resource: QuotaResource?, amount: Int64, idempotencyKey: String,
    ttl: Duration?, commit: Bool = false
  ) -> Result<ReserveCommand, QuotaError> {
    var problems: [FieldViolation] = []
    QuotaFieldRules.tenantID(tenantID, into: &problems)
    let resource = QuotaFieldRules.resource(resource, kind: .stock, into: &problems)
    QuotaFieldRules.amount(amount, field: "amount", into: &problems)
    QuotaFieldRules.idempotencyKey(idempotencyKey, into: &problems)
    let resolved = ReservationTTL.resolve(ttl)
    if case .failure(let violation) = resolved { problems.append(violation) }
    return QuotaFieldRules.finish(problems) {
      ReserveCommand(
        tenantID: tenantID, resource: resource!, amount: amount, idempotencyKey: idempotencyKey,
        ttl: (try? resolved.get())!, commit: commit)
    }
  }
}

/// A validated Consume: a flow resource and a sane amount.
public struct ConsumeCommand: Sendable, Hashable {
  public var tenantID: String
  public var resource: QuotaResource
  public var amount: Int64
  public var idempotencyKey: String

  public static func validate(
    tenantID: String, resource: QuotaResource?, amount: Int64, idempotencyKey: String
  ) -> Result<ConsumeCommand, QuotaError> {
    var problems: [FieldViolation] = []
    QuotaFieldRules.tenantID(tenantID, into: &problems)
    let resource = QuotaFieldRules.resource(resource, kind: .flow, into: &problems)
    QuotaFieldRules.amount(amount, field: "amount", into: &problems)
    QuotaFieldRules.idempotencyKey(idempotencyKey, into: &problems)
    return QuotaFieldRules.finish(problems) {
      ConsumeCommand(
        tenantID: tenantID, resource: resource!, amount: amount, idempotencyKey: idempotencyKey)
    }
  }
}

/// A validated RecordUsage: a flow resource, a sane quantity, a usage time not in the future.
public struct RecordUsageCommand: Sendable, Hashable {
  public var tenantID: String
  public var resource: QuotaResource
  public var quantity: Int64
  public var usageTime: Date
  public var idempotencyKey: String
  /// Facts kept with the ledger entry ("allocation_id", "node", ...).
  public var labels: [String: String]

  /// - Parameter now: the injected clock's instant; `usage_time` may lead it by 5 minutes.
  public static func validate(
    tenantID: String, resource: QuotaResource?, quantity: Int64, usageTime: Date?,
    idempotencyKey: String, labels: [String: String] = [:], now: Date
  ) -> Result<RecordUsageCommand, QuotaError> {
    var problems: [FieldViolation] = []
    QuotaFieldRules.tenantID(tenantID, into: &problems)
    let resource = QuotaFieldRules.resource(resource, kind: .flow, into: &problems)
    QuotaFieldRules.amount(quantity, field: "quantity", into: &problems)
    if let usageTime {
      if !TimestampRange.contains(usageTime) {
        problems.append(FieldViolation("usage_time", .outsideTimestampRange))
      } else if usageTime > now.addingTimeInterval(QuotaFieldRules.usageTimeSkew) {
        problems.append(FieldViolation("usage_time", .inFuture))
      }
    } else {
      problems.append(FieldViolation("usage_time", .missing))
    }
    QuotaFieldRules.idempotencyKey(idempotencyKey, into: &problems)
    QuotaFieldRules.labels(labels, into: &problems)
    return QuotaFieldRules.finish(problems) {
      RecordUsageCommand(
        tenantID: tenantID, resource: resource!, quantity: quantity, usageTime: usageTime!,
        idempotencyKey: idempotencyKey, labels: labels)
    }
  }
}

/// A validated Commit or Release: both name a reservation and nothing else.
public struct ReservationCommand: Sendable, Hashable {
  public var tenantID: String
  public var reservationID: String
  public var idempotencyKey: String

  public static func validate(
    tenantID: String, reservationID: String, idempotencyKey: String
  ) -> Result<ReservationCommand, QuotaError> {
    var problems: [FieldViolation] = []
    QuotaFieldRules.tenantID(tenantID, into: &problems)
    QuotaFieldRules.reservationID(reservationID, into: &problems)
    QuotaFieldRules.idempotencyKey(idempotencyKey, into: &problems)
    return QuotaFieldRules.finish(problems) {
      ReservationCommand(
        tenantID: tenantID, reservationID: reservationID, idempotencyKey: idempotencyKey)
    }
  }
}
