public import Foundation
import MaaSRuntime

/// A validated SetLimits: at most one limit per resource, and no resource both set and reset.
public struct SetLimitsCommand: Sendable, Hashable {
  public var tenantID: String
  public var limits: [QuotaResource: QuotaLimit]
  public var resetToDefault: Set<QuotaResource>
  public var idempotencyKey: String

  /// One `Limit` entry as the request gives it: `resource` is `nil` when unspecified or unknown.
  public struct Entry: Sendable, Hashable {
    public var resource: QuotaResource?
    public var value: Int64
    public var unlimited: Bool

    public init(resource: QuotaResource?, value: Int64, unlimited: Bool) {
      self.resource = resource
      self.value = value
      self.unlimited = unlimited
    }
  }

  /// - Parameter resetToDefault: `nil` entries are unspecified or unknown resources.
  public static func validate(
    tenantID: String, limits entries: [Entry], resetToDefault: [QuotaResource?],
    idempotencyKey: String
  ) -> Result<SetLimitsCommand, QuotaError> {
    var problems: [FieldViolation] = []
    QuotaFieldRules.tenantID(tenantID, into: &problems)
    var limits: [QuotaResource: QuotaLimit] = [:]
    for (index, entry) in entries.enumerated() {
      guard let resource = entry.resource else {
        problems.append(FieldViolation("limits[\(index)].resource", .unspecified))
        continue
      }
      if limits[resource] != nil {
        problems.append(FieldViolation("limits", .repeated(resource)))
        continue
      }
      // `value` is ignored when unlimited (resources.proto), so only a limited value is checked.
      if !entry.unlimited && entry.value < 0 {
        problems.append(FieldViolation("limits[\(index)].value", .outOfRange))
        continue
      }
      limits[resource] = entry.unlimited ? .unlimited : .limited(entry.value)
    }
    var resets: Set<QuotaResource> = []
    for (index, resource) in resetToDefault.enumerated() {
      guard let resource else {
        problems.append(FieldViolation("reset_to_default[\(index)]", .unspecified))
        continue
      }
      if limits[resource] != nil {
        problems.append(FieldViolation("reset_to_default", .alsoInLimits(resource)))
      } else if !resets.insert(resource).inserted {
        problems.append(FieldViolation("reset_to_default", .repeated(resource)))
      }
    }
    QuotaFieldRules.idempotencyKey(idempotencyKey, into: &problems)
    return QuotaFieldRules.finish(problems) {
      SetLimitsCommand(
        tenantID: tenantID, limits: limits, resetToDefault: resets, idempotencyKey: idempotencyKey)
    }
  }
}

/// A validated GetUsageReport: a tenant and a period that ends after it starts.
public struct UsageReportQuery: Sendable, Hashable {
  public var tenantID: String
  public var period: DateInterval

  public static func validate(tenantID: String, periodStart: Date?, periodEnd: Date?)
    -> Result<UsageReportQuery, QuotaError>
  {
    var problems: [FieldViolation] = []
    QuotaFieldRules.tenantID(tenantID, into: &problems)
    for (field, time) in [("period_start", periodStart), ("period_end", periodEnd)] {
      if let time, !TimestampRange.contains(time) { problems.append(FieldViolation(field, .outsideTimestampRange)) }
      if time == nil { problems.append(FieldViolation(field, .missing)) }
    }
    if let periodStart, let periodEnd, TimestampRange.contains(periodStart), TimestampRange.contains(periodEnd),
      periodEnd <= periodStart
    {
      problems.append(FieldViolation("period_end", .notAfterStart))
    }
    return QuotaFieldRules.finish(problems) {
      UsageReportQuery(
        tenantID: tenantID, period: DateInterval(start: periodStart!, end: periodEnd!))
    }
  }
}

/// A validated GetQuota: only the tenant.
public struct TenantQuery: Sendable, Hashable {
  public var tenantID: String

  public static func validate(tenantID: String) -> Result<TenantQuery, QuotaError> {
    var problems: [FieldViolation] = []
    QuotaFieldRules.tenantID(tenantID, into: &problems)
    return QuotaFieldRules.finish(problems) { TenantQuery(tenantID: tenantID) }
  }
}
