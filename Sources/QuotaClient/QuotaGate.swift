/// The stock resources services hold in the quota service: the registry's models and storage,
/// the scheduler's concurrent GPUs.
public enum QuotaStock: String, Sendable, Hashable, Codable {
  /// One unit per model.
  case models
  /// An artifact's `size_bytes` per version.
  case storageBytes = "storage_bytes"
  /// GPUs held by a tenant's allocations at the same time.
  case concurrentGPUs = "concurrent_gpus"
}

/// Why the quota service did not do what a service asked.
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

/// The quota service as the registry and the scheduler use it: check-and-reserve, commit, release of stock
/// resources. `GRPCQuotaGate` speaks to the real service; tests of the storage may substitute
/// their own.
///
/// Every method is idempotent by `idempotencyKey` (the quota service keeps keys per tenant and
/// method), so a call that failed in transit can be repeated with the same key.
public protocol QuotaGate: Sendable {
  /// Sets `amount` of `stock` aside for `tenant` for at most `ttl`, and returns the
  /// reservation's id. The hold lapses on its own after `ttl` unless committed.
  ///
  /// - Throws: `QuotaGateError`: `.exhausted` when it does not fit, `.tenantUnknown`,
  ///   `.unavailable`, `.rejected`.
  func reserve(tenant: String, stock: QuotaStock, amount: Int64, ttl: Duration, idempotencyKey: String) async throws
    -> String

  /// Reserves `amount` of `stock` and commits it in one call (Reserve with `commit`): it counts
  /// as used until released, with no expiry. For a caller that would commit right after
  /// reserving; returns the reservation's id, which Release takes.
  ///
  /// - Throws: `QuotaGateError`: `.exhausted` when it does not fit, `.tenantUnknown`,
  ///   `.unavailable`, `.rejected`.
  func acquire(tenant: String, stock: QuotaStock, amount: Int64, idempotencyKey: String) async throws -> String

  /// Turns a held reservation into usage, which stays until released.
  ///
  /// - Throws: `QuotaGateError`: `.reservationGone` when it lapsed or was released,
  ///   `.unavailable`, `.rejected`.
  func commit(tenant: String, reservationID: String, idempotencyKey: String) async throws

  /// Gives a held or committed reservation back; releasing a finished one changes nothing.
  ///
  /// - Throws: `QuotaGateError`: `.reservationGone` when the quota service does not know it,
  ///   `.unavailable`, `.rejected`.
  func release(tenant: String, reservationID: String, idempotencyKey: String) async throws
}

extension QuotaGate {
  /// `acquire` as Reserve then Commit, for gates that have nothing better (in-memory stand-ins);
  /// `GRPCQuotaGate` sends one call.
  public func acquire(tenant: String, stock: QuotaStock, amount: Int64, idempotencyKey: String) async throws -> String {
    let id = try await reserve(tenant: tenant, stock: stock, amount: amount, ttl: .seconds(60), idempotencyKey: idempotencyKey)
    try await commit(tenant: tenant, reservationID: id, idempotencyKey: idempotencyKey + ":commit")
    return id
  }
}
