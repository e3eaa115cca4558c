import GRPCCore
public import GRPCShimTransport
import MaaSContracts
import MaaSRuntime
import SwiftProtobuf

/// The quota service (`maas.quota.v1.Quota`) over gRPC: what `maas-registry` and
/// `maas-scheduler` use, through an `UpstreamClient`'s transport called straight through
/// (`ShimClientTransport.unaryCall`, as the gateway calls quota), or any other `UnaryChannel`.
///
/// Every call carries `timeout` as its deadline, so an unreachable or stuck quota service is
/// UNAVAILABLE within it, never a hang.
public struct GRPCQuotaGate: QuotaGate {
  private let channel: any UnaryChannel
  /// The `timeout` every call sends, enforced by grpc C++ (`CallTimeout`).
  private let metadata: Metadata

  public init(channel: some UnaryChannel, timeout: Duration = .seconds(5)) {
    self.channel = channel
    self.metadata = CallTimeout(timeout).metadata
  }

  public func reserve(tenant: String, stock: QuotaStock, amount: Int64, ttl: Duration, idempotencyKey: String) async throws
    -> String
  {
    try await self.reserve(tenant: tenant, stock: stock, amount: amount, idempotencyKey: idempotencyKey) {
      $0.ttl = Google_Protobuf_Duration(seconds: ttl.components.seconds)
    }
  }

  public func acquire(tenant: String, stock: QuotaStock, amount: Int64, idempotencyKey: String) async throws -> String {
    try await self.reserve(tenant: tenant, stock: stock, amount: amount, idempotencyKey: idempotencyKey) { $0.commit = true }
  }

  private func reserve(
    tenant: String, stock: QuotaStock, amount: Int64, idempotencyKey: String,
    _ finish: (inout Maas_Quota_V1_ReserveRequest) -> Void
  ) async throws -> String {
    var request = Maas_Quota_V1_ReserveRequest.with {
      $0.tenantID = tenant
      $0.resource =
        switch stock {
        case .models: .models
        case .storageBytes: .storageBytes
        case .concurrentGPUs: .concurrentGpus
        }
      $0.amount = amount
      $0.idempotencyKey = idempotencyKey
    }
    finish(&request)
    return try await Self.translating(reservation: false) { [request] in
      try await self.channel.unary(
        request, metadata: self.metadata, descriptor: Maas_Quota_V1_Quota.Method.Reserve.descriptor,
        answering: Maas_Quota_V1_Reservation.self).id
    }
  }

  public func commit(tenant: String, reservationID: String, idempotencyKey: String) async throws {
    let request = Maas_Quota_V1_CommitRequest.with {
      $0.tenantID = tenant
      $0.reservationID = reservationID
      $0.idempotencyKey = idempotencyKey
    }
    _ = try await Self.translating(reservation: true) {
      try await self.channel.unary(
        request, metadata: self.metadata, descriptor: Maas_Quota_V1_Quota.Method.Commit.descriptor,
        answering: Maas_Quota_V1_Reservation.self)
    }
  }

  public func release(tenant: String, reservationID: String, idempotencyKey: String) async throws {
    let request = Maas_Quota_V1_ReleaseRequest.with {
      $0.tenantID = tenant
      $0.reservationID = reservationID
      $0.idempotencyKey = idempotencyKey
    }
    _ = try await Self.translating(reservation: true) {
      try await self.channel.unary(
        request, metadata: self.metadata, descriptor: Maas_Quota_V1_Quota.Method.Release.descriptor,
        answering: Maas_Quota_V1_Reservation.self)
    }
  }

  /// The quota service's statuses as `QuotaGateError`s.
  ///
  /// - Parameter reservation: whether the call names a reservation, so that NOT_FOUND means
  ///   the reservation rather than the tenant.
  static func translating<T: Sendable>(reservation: Bool, _ call: () async throws -> T) async throws -> T {
    do {
      return try await call()
    } catch let error as RPCError {
      switch error.code {
      case .resourceExhausted:
        throw QuotaGateError.exhausted(error.message)
      case .notFound where reservation && error.message.hasPrefix("reservation_id"):
        throw QuotaGateError.reservationGone(error.message)
      case .notFound:
        throw QuotaGateError.tenantUnknown(error.message)
      case .failedPrecondition:
        throw QuotaGateError.reservationGone(error.message)
      case .unavailable, .deadlineExceeded, .cancelled, .unknown, .aborted:
        throw QuotaGateError.unavailable("\(error.code): \(error.message)")
      default:
        throw QuotaGateError.rejected("\(error.code): \(error.message)")
      }
    } catch {
      // The client itself failed (stopped, cancelled, transport down): nothing was decided.
      throw QuotaGateError.unavailable("\(error)")
    }
  }
}
