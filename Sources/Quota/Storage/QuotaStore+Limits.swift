import Foundation
import Postgres

extension QuotaStore {
  /// SetLimits: registers the tenant if new, sets the limits given and resets the ones named to
  /// the default; answers with the tenant's quota afterwards. Lowering a limit below usage takes
  /// nothing back.
  public func setLimits(_ command: SetLimitsCommand) async throws -> QuotaSnapshot {
    try await retryingKeyRace {
      try await pool.transaction(tenant: command.tenantID) { tx in
        let now = self.clock.now()
        let tenant = command.tenantID
        // The insert's row lock also queues concurrent SetLimits of the tenant, so a retry with
        // the same key finds the first answer instead of racing it.
        _ = try await tx.execute(
          """
          INSERT INTO quota.tenants AS t (tenant_id, create_time) VALUES ($1, $2)
          ON CONFLICT (tenant_id) DO UPDATE SET create_time = t.create_time
          """, [tenant, now])
        return try await self.idempotent(command, in: tx, now: now) { () async throws -> Result<QuotaSnapshot, QuotaError> in
          for (resource, limit) in command.limits.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let value: Int64? =
              switch limit {
              case .limited(let value): value
              case .unlimited: nil
              }
            _ = try await tx.execute(
              """
              INSERT INTO quota.limits (tenant_id, resource, value, update_time) VALUES ($1, $2, $3, $4)
              ON CONFLICT (tenant_id, resource) DO UPDATE SET value = excluded.value, update_time = excluded.update_time
              """, [tenant, resource.rawValue, value, now])
          }
          if !command.resetToDefault.isEmpty {
            _ = try await tx.execute(
              "DELETE FROM quota.limits WHERE tenant_id = $1 AND resource = ANY($2)",
              [tenant, command.resetToDefault.map(\.rawValue)])
          }
          return .success(try await self.snapshot(tx, tenant: tenant, now: now))
        }
      }
    }.get()
  }

  /// GetQuota: every resource's limit and usage.
  /// - Throws: `QuotaError.tenantNotFound`, or a database error.
  public func quota(_ query: TenantQuery) async throws -> QuotaSnapshot {
    try await pool.transaction(tenant: query.tenantID, readOnly: true) { tx in
      try await self.requireTenant(tx, query.tenantID)
      return try await self.snapshot(tx, tenant: query.tenantID, now: self.clock.now())
    }
  }

  /// Limits and usage as of `now`. Holds that have lapsed but not yet been expired (that happens
  /// at the next Reserve, Commit or Release) are left out of `reserved`, as they no longer count.
  func snapshot(_ tx: PostgresTransaction, tenant: String, now: Date) async throws -> QuotaSnapshot {
    var own: [QuotaResource: QuotaLimit] = [:]
    for row in try await tx.query("SELECT resource, value FROM quota.limits WHERE tenant_id = $1", [tenant]) {
      guard let resource = QuotaResource(rawValue: try row.decode(Int.self, column: "resource")) else { continue }
      own[resource] = try row.decode(Int64?.self, column: "value").map(QuotaLimit.limited) ?? .unlimited
    }
    let windows = Dictionary(uniqueKeysWithValues: QuotaResource.allCases.map { resource in
      (resource, resource.window.period(containing: now))
    })
    var counters: [QuotaResource: (used: Int64, reserved: Int64)] = [:]
    let counterRows = try await tx.query(
      "SELECT resource, window_start, used, reserved FROM quota.counters WHERE tenant_id = $1 AND window_start = ANY(ARRAY[$2, $3, $4]::timestamptz[])",
      [tenant, Self.stockWindowStart, QuotaWindow.utcDay.period(containing: now)!.start, QuotaWindow.utcMonth.period(containing: now)!.start])
    for row in counterRows {
      guard let resource = QuotaResource(rawValue: try row.decode(Int.self, column: "resource")) else { continue }
      let start = try row.decode(Date.self, column: "window_start")
      guard start == (windows[resource]??.start ?? Self.stockWindowStart) else { continue }
      counters[resource] = (try row.decode(Int64.self, column: "used"), try row.decode(Int64.self, column: "reserved"))
    }
    var lapsed: [QuotaResource: Int64] = [:]
    let lapsedRows = try await tx.query(
      """
      SELECT resource, sum(amount)::bigint AS amount FROM quota.reservations
      WHERE tenant_id = $1 AND state = $2 AND expire_time <= $3 GROUP BY resource
      """, [tenant, ReservationState.held.rawValue, now])
    for row in lapsedRows {
      guard let resource = QuotaResource(rawValue: try row.decode(Int.self, column: "resource")) else { continue }
      lapsed[resource] = try row.decode(Int64.self, column: "amount")
    }
    let resources = QuotaResource.allCases.map { resource in
      let counter = counters[resource] ?? (0, 0)
      return ResourceUsage(
        resource: resource, limit: own[resource] ?? policy.defaults.limit(for: resource),
        isDefault: own[resource] == nil, used: counter.used,
        reserved: max(0, counter.reserved - (lapsed[resource] ?? 0)),
        windowResetTime: windows[resource]??.end)
    }
    return QuotaSnapshot(tenantID: tenant, resources: resources)
  }
}
