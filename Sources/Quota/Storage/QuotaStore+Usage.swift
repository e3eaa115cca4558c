import Foundation
import Postgres

extension QuotaStore {
  /// RecordUsage: appends usage that already happened to the ledger and counts it in the window
  /// containing its usage time. Never refused for being over the limit.
  /// - Throws: `QuotaError` (unknown tenant, a counter that would overflow), or a database error.
  public func recordUsage(_ command: RecordUsageCommand) async throws -> UsageRecordReceipt {
    let resource = command.resource
    guard let window = resource.window.period(containing: command.usageTime) else {
      preconditionFailure("RecordUsage validated a flow resource, which has a window")
    }
    let labels = String(decoding: try JSONEncoder().encode(command.labels), as: UTF8.self)
    return try await retryingKeyRace {
      try await pool.transaction(tenant: command.tenantID) { tx in
        let now = self.clock.now()
        let tenant = command.tenantID
        try await self.requireTenant(tx, tenant)
        let used = try await self.lockCounter(tx, tenant: tenant, resource: resource, windowStart: window.start).used
        return try await self.idempotent(command, in: tx, now: now) { () async throws -> Result<UsageRecordReceipt, QuotaError> in
          let (total, overflow) = used.addingReportingOverflow(command.quantity)
          guard !overflow else {
            return .failure(.counterOverflow(resource: resource, used: used, reserved: 0, requested: command.quantity))
          }
          let rows = try await tx.query(
            """
            WITH entry AS (
              INSERT INTO quota.ledger (tenant_id, resource, quantity, usage_time, window_start, source, idempotency_key, labels)
              VALUES ($1, $2, $3, $4, $5, 'record_usage', $6, $7::jsonb)
              RETURNING entry_id
            ), counter AS (
              UPDATE quota.counters SET used = $8 WHERE tenant_id = $1 AND resource = $2 AND window_start = $5
            )
            SELECT entry_id FROM entry
            """,
            [tenant, resource.rawValue, command.quantity, command.usageTime, window.start, command.idempotencyKey, labels, total])
          let entryID = try rows[0].decode(Int64.self, at: 0)
          return .success(UsageRecordReceipt(entryID: String(entryID), windowUsed: total))
        }
      }
    }.get()
  }

  /// GetUsageReport: one priced line per resource over the period, from the ledger.
  ///
  /// Flow resources bill what was spent in the period. Stock resources bill the time integral of
  /// what was committed, up to the period's end or now, whichever is first.
  /// - Throws: `QuotaError.tenantNotFound`, or a database error.
  public func usageReport(_ query: UsageReportQuery) async throws -> UsageReport {
    let now = clock.now()
    let period = query.period
    let stockEnd = max(period.start, min(period.end, now))
    let (spent, opening, changes) = try await pool.transaction(tenant: query.tenantID, readOnly: true) { tx in
      try await self.requireTenant(tx, query.tenantID)
      let sums = try await tx.query(
        """
        SELECT resource,
          coalesce(sum(quantity) FILTER (WHERE usage_time >= $2 AND usage_time < $3), 0)::bigint AS spent,
          coalesce(sum(quantity) FILTER (WHERE usage_time < $2), 0)::bigint AS opening
        FROM quota.ledger WHERE tenant_id = $1 AND usage_time < $3
        GROUP BY resource
        """, [query.tenantID, period.start, period.end])
      var spent: [QuotaResource: Int64] = [:]
      var opening: [QuotaResource: Int64] = [:]
      for row in sums {
        guard let resource = QuotaResource(rawValue: try row.decode(Int.self, column: "resource")) else { continue }
        spent[resource] = try row.decode(Int64.self, column: "spent")
        opening[resource] = try row.decode(Int64.self, column: "opening")
      }
      let stock = QuotaResource.allCases.filter { $0.kind == .stock }.map(\.rawValue)
      let events = try await tx.query(
        """
        SELECT resource, quantity, usage_time FROM quota.ledger
        WHERE tenant_id = $1 AND resource = ANY($2) AND usage_time >= $3 AND usage_time < $4
        ORDER BY usage_time, entry_id
        """, [query.tenantID, stock, period.start, stockEnd])
      var changes: [QuotaResource: [StockHistory.Change]] = [:]
      for row in events {
        guard let resource = QuotaResource(rawValue: try row.decode(Int.self, column: "resource")) else { continue }
        changes[resource, default: []].append(
          StockHistory.Change(at: try row.decode(Date.self, column: "usage_time"), delta: try row.decode(Int64.self, column: "quantity")))
      }
      return (spent, opening, changes)
    }

    var quantities: [QuotaResource: Int64] = [:]
    var used: [QuotaResource: Int64] = [:]
    for resource in QuotaResource.allCases {
      switch resource.kind {
      case .flow:
        quantities[resource] = spent[resource] ?? 0
        used[resource] = spent[resource] ?? 0
      case .stock:
        guard
          let held = StockHistory.integral(
            opening: opening[resource] ?? 0, changes: changes[resource] ?? [],
            period: DateInterval(start: period.start, end: stockEnd))
        else { throw BillingError.overflow(resource) }
        quantities[resource] = held.baseUnitHours
        used[resource] = held.closing
      }
    }
    let statement = try Billing.statement(quantities: quantities, prices: policy.prices, currency: policy.currency).get()
    let lines = statement.lines.map { UsageReportLine(used: used[$0.resource] ?? 0, billing: $0) }
    return UsageReport(tenantID: query.tenantID, period: period, lines: lines, statement: statement)
  }
}
