import Foundation
import MaaSContracts
import SwiftProtobuf

// Domain values to and from `maas.quota.v1` messages. Only the API layer sees proto types.

extension QuotaResource {
  /// `nil` for RESOURCE_UNSPECIFIED and numbers this build does not know.
  init?(proto: Maas_Quota_V1_Resource) {
    self.init(rawValue: proto.rawValue)
  }

  var proto: Maas_Quota_V1_Resource { Maas_Quota_V1_Resource(rawValue: rawValue) ?? .unspecified }
}

extension QuotaWindow {
  var proto: Maas_Quota_V1_QuotaWindow {
    switch self {
    case .none: .none
    case .utcDay: .utcDay
    case .utcMonth: .utcMonth
    }
  }
}

extension Maas_Quota_V1_Limit {
  init(_ resource: QuotaResource, _ limit: QuotaLimit) {
    self.init()
    self.resource = resource.proto
    switch limit {
    case .limited(let value): self.value = value
    case .unlimited: self.unlimited = true
    }
  }
}

extension Maas_Quota_V1_GetQuotaResponse {
  init(_ snapshot: QuotaSnapshot) {
    self.init()
    tenantID = snapshot.tenantID
    resources = snapshot.resources.map { usage in
      Maas_Quota_V1_ResourceQuota.with {
        $0.resource = usage.resource.proto
        $0.limit = Maas_Quota_V1_Limit(usage.resource, usage.limit)
        $0.isDefault = usage.isDefault
        $0.used = usage.used
        $0.reserved = usage.reserved
        $0.window = usage.resource.window.proto
        if let reset = usage.windowResetTime { $0.windowResetTime = Google_Protobuf_Timestamp(date: reset) }
        $0.unit = usage.resource.unit
      }
    }
  }
}

extension Maas_Quota_V1_Reservation {
  init(_ reservation: Reservation) {
    self.init()
    id = reservation.id
    tenantID = reservation.tenantID
    resource = reservation.resource.proto
    amount = reservation.amount
    state = Maas_Quota_V1_ReservationState(rawValue: reservation.state.rawValue) ?? .unspecified
    createTime = Google_Protobuf_Timestamp(date: reservation.createdAt)
    if let expiresAt = reservation.expiresAt { expireTime = Google_Protobuf_Timestamp(date: expiresAt) }
  }
}

extension Maas_Quota_V1_ConsumeResponse {
  init(_ receipt: ConsumeReceipt) {
    self.init()
    resource = receipt.resource.proto
    used = receipt.used
    limit = Maas_Quota_V1_Limit(receipt.resource, receipt.limit)
    windowResetTime = Google_Protobuf_Timestamp(date: receipt.windowResetTime)
  }
}

extension Maas_Quota_V1_UsageReport {
  init(_ report: UsageReport) {
    self.init()
    tenantID = report.tenantID
    periodStart = Google_Protobuf_Timestamp(date: report.period.start)
    periodEnd = Google_Protobuf_Timestamp(date: report.period.end)
    lines = report.lines.map { line in
      Maas_Quota_V1_UsageLine.with {
        $0.resource = line.billing.resource.proto
        $0.used = line.used
        $0.quantity = line.billing.quantity
        $0.unit = line.billing.unit
        $0.unitPrice = line.billing.unitPrice.description
        $0.amount = report.statement.text(line.billing.amount)
      }
    }
    total = report.statement.text(report.statement.total)
    currency = report.statement.currency.code
  }
}

extension Google_Protobuf_Duration {
  /// As a Swift `Duration`; a malformed one (mixed signs, nanos out of range) becomes one that
  /// validation refuses, never a crash.
  var duration: Duration {
    guard (-999_999_999...999_999_999).contains(nanos), !(seconds > 0 && nanos < 0), !(seconds < 0 && nanos > 0)
    else { return .zero }
    return .seconds(seconds) + .nanoseconds(Int64(nanos))
  }
}
