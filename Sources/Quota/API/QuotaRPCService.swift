public import GRPCCore
public import MaaSContracts
import Foundation
public import Logging

/// `maas.quota.v1.Quota` over gRPC: the edge where requests become validated domain commands,
/// the store decides, and answers and errors become messages and statuses. Nothing here decides
/// anything about quota.
public struct QuotaRPCService: Maas_Quota_V1_Quota.SimpleServiceProtocol {
  let store: QuotaStore
  let clock: any QuotaClock
  let logger: Logger
  let metrics: QuotaMetrics?

  /// - Parameter metrics: where refusals at a limit are counted; nil counts nothing.
  public init(store: QuotaStore, clock: any QuotaClock = SystemQuotaClock(), logger: Logger, metrics: QuotaMetrics? = nil) {
    self.store = store
    self.clock = clock
    self.logger = logger
    self.metrics = metrics
  }

  public func setLimits(request: Maas_Quota_V1_SetLimitsRequest, context: ServerContext) async throws
    -> Maas_Quota_V1_GetQuotaResponse
  {
    try await answer(context) {
      let command = try SetLimitsCommand.validate(
        tenantID: request.tenantID,
        limits: request.limits.map {
          SetLimitsCommand.Entry(resource: QuotaResource(proto: $0.resource), value: $0.value, unlimited: $0.unlimited)
        },
        resetToDefault: request.resetToDefault.map(QuotaResource.init(proto:)),
        idempotencyKey: request.idempotencyKey
      ).get()
      return Maas_Quota_V1_GetQuotaResponse(try await store.setLimits(command))
    }
  }

  public func getQuota(request: Maas_Quota_V1_GetQuotaRequest, context: ServerContext) async throws
    -> Maas_Quota_V1_GetQuotaResponse
  {
    try await answer(context) {
      let query = try TenantQuery.validate(tenantID: request.tenantID).get()
      return Maas_Quota_V1_GetQuotaResponse(try await store.quota(query))
    }
  }

  public func reserve(request: Maas_Quota_V1_ReserveRequest, context: ServerContext) async throws
    -> Maas_Quota_V1_Reservation
  {
    try await answer(context) {
      let command = try ReserveCommand.validate(
        tenantID: request.tenantID, resource: QuotaResource(proto: request.resource), amount: request.amount,
        idempotencyKey: request.idempotencyKey, ttl: request.hasTtl ? request.ttl.duration : nil, commit: request.commit
      ).get()
      return Maas_Quota_V1_Reservation(try await store.reserve(command))
    }
  }

  public func commit(request: Maas_Quota_V1_CommitRequest, context: ServerContext) async throws
    -> Maas_Quota_V1_Reservation
  {
    try await answer(context) {
      let command = try ReservationCommand.validate(
        tenantID: request.tenantID, reservationID: request.reservationID, idempotencyKey: request.idempotencyKey
      ).get()
      return Maas_Quota_V1_Reservation(try await store.commit(CommitCommand(command)))
    }
  }

  public func release(request: Maas_Quota_V1_ReleaseRequest, context: ServerContext) async throws
    -> Maas_Quota_V1_Reservation
  {
    try await answer(context) {
      let command = try ReservationCommand.validate(
        tenantID: request.tenantID, reservationID: request.reservationID, idempotencyKey: request.idempotencyKey
      ).get()
      return Maas_Quota_V1_Reservation(try await store.release(ReleaseCommand(command)))
    }
  }

  public func consume(request: Maas_Quota_V1_ConsumeRequest, context: ServerContext) async throws
    -> Maas_Quota_V1_ConsumeResponse
  {
    try await answer(context) {
      let command = try ConsumeCommand.validate(
        tenantID: request.tenantID, resource: QuotaResource(proto: request.resource), amount: request.amount,
        idempotencyKey: request.idempotencyKey
      ).get()
      return Maas_Quota_V1_ConsumeResponse(try await store.consume(command))
    }
  }

  public func recordUsage(request: Maas_Quota_V1_RecordUsageRequest, context: ServerContext) async throws
    -> Maas_Quota_V1_RecordUsageResponse
  {
    try await answer(context) {
      let command = try RecordUsageCommand.validate(
        tenantID: request.tenantID, resource: QuotaResource(proto: request.resource), quantity: request.quantity,
        usageTime: request.hasUsageTime ? request.usageTime.instant : nil, idempotencyKey: request.idempotencyKey,
        labels: request.labels, now: clock.now()
      ).get()
      let receipt = try await store.recordUsage(command)
      return Maas_Quota_V1_RecordUsageResponse.with {
        $0.entryID = receipt.entryID
        $0.windowUsed = receipt.windowUsed
      }
    }
  }

  public func getUsageReport(request: Maas_Quota_V1_GetUsageReportRequest, context: ServerContext) async throws
    -> Maas_Quota_V1_UsageReport
  {
    try await answer(context) {
      let query = try UsageReportQuery.validate(
        tenantID: request.tenantID,
        periodStart: request.hasPeriodStart ? request.periodStart.instant : nil,
        periodEnd: request.hasPeriodEnd ? request.periodEnd.instant : nil
      ).get()
      return Maas_Quota_V1_UsageReport(try await store.usageReport(query))
    }
  }

  /// Runs a handler body and turns whatever it throws into the status the contract names.
  private func answer<Response>(_ context: ServerContext, _ body: () async throws -> Response) async throws -> Response {
    do {
      return try await body()
    } catch {
      metrics?.record(error)
      throw QuotaStatus.rpcError(for: error, method: context.descriptor.method, logger: logger)
    }
  }
}
