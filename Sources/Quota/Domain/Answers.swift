public import Foundation

/// What an admitted Consume answers (`ConsumeResponse`).
public struct ConsumeReceipt: Sendable, Hashable, Codable {
  public var resource: QuotaResource
  /// Usage in the current window, including this call.
  public var used: Int64
  /// The limit in force when the call was admitted.
  public var limit: QuotaLimit
  /// When the window the call was counted in ends.
  public var windowResetTime: Date

  public init(resource: QuotaResource, used: Int64, limit: QuotaLimit, windowResetTime: Date) {
    self.resource = resource
    self.used = used
    self.limit = limit
    self.windowResetTime = windowResetTime
  }
}

/// What RecordUsage answers (`RecordUsageResponse`).
public struct UsageRecordReceipt: Sendable, Hashable, Codable {
  /// The ledger entry's id.
  public var entryID: String
  /// Usage of the resource in the window containing the usage time, including this entry.
  public var windowUsed: Int64

  public init(entryID: String, windowUsed: Int64) {
    self.entryID = entryID
    self.windowUsed = windowUsed
  }
}

/// One resource's limit and usage for one tenant (`ResourceQuota`).
public struct ResourceUsage: Sendable, Hashable, Codable {
  public var resource: QuotaResource
  public var limit: QuotaLimit
  /// Whether `limit` is the service's default rather than the tenant's own.
  public var isDefault: Bool
  public var used: Int64
  /// Held by reservations that have neither been committed, released nor lapsed.
  public var reserved: Int64
  /// When the current window ends; `nil` for stock resources.
  public var windowResetTime: Date?

  public init(
    resource: QuotaResource, limit: QuotaLimit, isDefault: Bool, used: Int64, reserved: Int64,
    windowResetTime: Date?
  ) {
    self.resource = resource
    self.limit = limit
    self.isDefault = isDefault
    self.used = used
    self.reserved = reserved
    self.windowResetTime = windowResetTime
  }
}

/// A tenant's limits and usage for every resource, in resource order (`GetQuotaResponse`).
public struct QuotaSnapshot: Sendable, Hashable, Codable {
  public var tenantID: String
  public var resources: [ResourceUsage]

  public init(tenantID: String, resources: [ResourceUsage]) {
    self.tenantID = tenantID
    self.resources = resources
  }
}

/// One resource's line of a usage report (`UsageLine`).
public struct UsageReportLine: Sendable, Hashable {
  /// The exact counter: spent within the period (flow), or held at its end (stock).
  public var used: Int64
  public var billing: BillingLine
}

/// A tenant's usage over a period, priced (`UsageReport`).
public struct UsageReport: Sendable, Hashable {
  public var tenantID: String
  public var period: DateInterval
  public var lines: [UsageReportLine]
  public var statement: BillingStatement
}

/// A mutating request as its idempotency key remembers it: the method the key is scoped to, and
/// a fingerprint of everything else in the request, so that the same key with a different
/// request is told apart from a retry.
public protocol IdempotentCommand: Sendable {
  var tenantID: String { get }
  var idempotencyKey: String { get }
  /// The method name, e.g. "consume": keys of different methods never collide.
  static var method: String { get }
  /// The request's fields other than tenant and key, in a fixed text form.
  var fingerprint: String { get }
}

extension ReserveCommand: IdempotentCommand {
  public static let method = "reserve"
  public var fingerprint: String {
    let base = "resource=\(resource.rawValue) amount=\(amount) ttl=\(ttl.components.seconds).\(ttl.components.attoseconds)"
    // Unchanged for a plain Reserve, so that answers remembered before `commit` existed replay.
    return commit ? base + " commit" : base
  }
}

extension ConsumeCommand: IdempotentCommand {
  public static let method = "consume"
  public var fingerprint: String { "resource=\(resource.rawValue) amount=\(amount)" }
}

extension RecordUsageCommand: IdempotentCommand {
  public static let method = "record_usage"
  public var fingerprint: String {
    let labelText = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    return "resource=\(resource.rawValue) quantity=\(quantity) "
      + "time=\(usageTime.timeIntervalSince1970) labels=\(labelText)"
  }
}

extension SetLimitsCommand: IdempotentCommand {
  public static let method = "set_limits"
  public var fingerprint: String {
    let set = limits.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue)=\($0.value)" }
    let reset = resetToDefault.map(\.rawValue).sorted()
    return "limits=\(set) reset=\(reset)"
  }
}

/// Commit and Release name the same fields but are different methods.
public struct CommitCommand: IdempotentCommand, Hashable {
  public var reservation: ReservationCommand
  public init(_ reservation: ReservationCommand) { self.reservation = reservation }
  public static let method = "commit"
  public var tenantID: String { reservation.tenantID }
  public var idempotencyKey: String { reservation.idempotencyKey }
  public var fingerprint: String { "reservation=\(reservation.reservationID)" }
}

public struct ReleaseCommand: IdempotentCommand, Hashable {
  public var reservation: ReservationCommand
  public init(_ reservation: ReservationCommand) { self.reservation = reservation }
  public static let method = "release"
  public var tenantID: String { reservation.tenantID }
  public var idempotencyKey: String { reservation.idempotencyKey }
  public var fingerprint: String { "reservation=\(reservation.reservationID)" }
}
