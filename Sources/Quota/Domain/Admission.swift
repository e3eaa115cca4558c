public import Foundation

/// What an admitted request leaves behind.
public struct Admission: Sendable, Hashable {
  /// `used + reserved + amount`: what counts against the limit once the request is applied.
  public var total: Int64
  /// What is left under the limit after it; `nil` when unlimited.
  public var remaining: Int64?

  public init(total: Int64, remaining: Int64?) {
    self.total = total
    self.remaining = remaining
  }
}

/// The one rule every Reserve and Consume goes through, wherever the counters live.
public enum QuotaAdmission {
  /// Decides whether `amount` more fits beside `used` and `reserved` under `limit`.
  ///
  /// - Parameters:
  ///   - used: committed (stock) or spent in the current window (flow); >= 0.
  ///   - reserved: held by open reservations; always 0 for flow resources.
  ///   - resetsAt: the window's end for flow resources, quoted in a refusal; `nil` for stock.
  /// - Returns: the admission, or `.nonPositiveAmount`, `.counterOverflow` (checked even when
  ///   unlimited: a counter that wraps is worse than a refusal) or `.exhausted`.
  public static func admit(
    resource: QuotaResource, used: Int64, reserved: Int64, amount: Int64, limit: QuotaLimit,
    resetsAt: Date? = nil
  ) -> Result<Admission, QuotaError> {
    guard amount > 0 else { return .failure(.nonPositiveAmount(amount)) }
    let overflow = QuotaError.counterOverflow(
      resource: resource, used: used, reserved: reserved, requested: amount)
    let (held, o1) = used.addingReportingOverflow(reserved)
    guard !o1 else { return .failure(overflow) }
    let (total, o2) = held.addingReportingOverflow(amount)
    guard !o2 else { return .failure(overflow) }
    switch limit {
    case .unlimited:
      return .success(Admission(total: total, remaining: nil))
    case .limited(let value):
      // A limit lowered below current usage refuses everything new; nothing is taken back.
      guard total <= value else {
        return .failure(
          .exhausted(
            resource: resource, limit: value, used: held, requested: amount, resetsAt: resetsAt))
      }
      return .success(Admission(total: total, remaining: value - total))
    }
  }

  /// How much more fits under `limit`: 0 when usage already meets or passes it, `nil` when
  /// unlimited. Storage granting leases of quota can size a lease with it.
  public static func headroom(used: Int64, reserved: Int64, limit: QuotaLimit) -> Int64? {
    guard case .limited(let value) = limit else { return nil }
    let (held, overflow) = used.addingReportingOverflow(reserved)
    let (left, underflow) = value.subtractingReportingOverflow(held)
    if overflow || underflow { return 0 }
    return max(0, left)
  }
}
