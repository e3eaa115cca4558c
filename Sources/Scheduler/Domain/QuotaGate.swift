/// Why the quota service did not do what the scheduler asked.
public enum QuotaGateError: Error, Sendable, Hashable {
  /// Not enough room: the message names the resource, the limit and the usage.
  case exhausted(String)
  /// The quota service has never seen the tenant.
  case tenantUnknown(String)
  /// The reservation is not held any more (it lapsed before commit) or does not exist.
  case reservationGone(String)
  /// The service could not be reached, or did not answer within the deadline.
  case unavailable(String)
  /// Anything else (a request the quota service found invalid: a bug here).
  case rejected(String)
}

/// The tenant's CONCURRENT_GPUS in the quota service, as the scheduler uses it. `GRPCQuotaGate`
/// speaks to the real service. Every method is idempotent by `idempotencyKey`.
public protocol QuotaGate: Sendable {
  /// Holds `gpus` concurrent GPUs for `tenant` for at most `ttl`; returns the reservation's id.
  ///
  /// - Throws: `QuotaGateError`: `.exhausted` when it does not fit, `.tenantUnknown`,
  ///   `.unavailable`, `.rejected`.
  func reserveGPUs(tenant: String, gpus: Int64, ttl: Duration, idempotencyKey: String) async throws -> String

  /// Turns a held reservation into usage, which stays until released.
  ///
  /// - Throws: `QuotaGateError`: `.reservationGone`, `.unavailable`, `.rejected`.
  func commit(tenant: String, reservationID: String, idempotencyKey: String) async throws

  /// Gives a held or committed reservation back; releasing a finished one changes nothing.
  ///
  /// - Throws: `QuotaGateError`: `.reservationGone`, `.unavailable`, `.rejected`.
  func release(tenant: String, reservationID: String, idempotencyKey: String) async throws
}
