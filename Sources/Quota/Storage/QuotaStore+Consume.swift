import Foundation
import Postgres

extension QuotaStore {
  /// Consume: spends `command.amount` of a flow resource in the current window, all or nothing.
  ///
  /// Calls for the same tenant and resource are applied in batches (see `ConsumeBatcher`); each
  /// one is admitted or refused on its own, in arrival order, against the counter as the calls
  /// before it in the batch left it.
  /// - Throws: `QuotaError` when refused (`.exhausted` with limit, usage and reset time), or a
  ///   database error.
  public func consume(_ command: ConsumeCommand) async throws -> ConsumeReceipt {
    let answer = try await batcher.submit(command) { [self] batch in
      try await self.retryingKeyRace { try await self.consumeBatch(batch) }
    }
    return try answer.get()
  }

  /// One transaction for calls of one tenant and resource.
  func consumeBatch(_ commands: [ConsumeCommand]) async throws -> [Result<ConsumeReceipt, QuotaError>] {
    let tenant = commands[0].tenantID
    let resource = commands[0].resource
    let now = clock.now()
    guard let window = resource.window.period(containing: now) else {
      preconditionFailure("Consume validated a flow resource, which has a window")
    }
    do {
      return try await pool.transaction(tenant: tenant) { tx in
        let (limit, _) = try await self.limit(tx, tenant: tenant, resource: resource)
        var used = try await self.lockCounter(tx, tenant: tenant, resource: resource, windowStart: window.start).used
        let prior = try await self.priorAnswers(
          tx, tenant: tenant, method: ConsumeCommand.method, keys: commands.map(\.idempotencyKey))

        var answers: [Result<ConsumeReceipt, QuotaError>] = []
        var remembered: [String: IdempotencyRecord] = [:]
        var fresh: (keys: [String], fingerprints: [String], answers: [String]) = ([], [], [])
        var admitted: (keys: [String], amounts: [Int64]) = ([], [])
        for command in commands {
          let key = command.idempotencyKey
          if let record = prior[key] ?? remembered[key] {
            answers.append(try record.replay(for: command, as: ConsumeReceipt.self))
            continue
          }
          let answer = QuotaAdmission.admit(
            resource: resource, used: used, reserved: 0, amount: command.amount, limit: limit,
            resetsAt: window.end
          ).map { admission in
            used = admission.total
            return ConsumeReceipt(resource: resource, used: admission.total, limit: limit, windowResetTime: window.end)
          }
          if case .success = answer {
            admitted.keys.append(key)
            admitted.amounts.append(command.amount)
          }
          let record = IdempotencyRecord(fingerprint: command.fingerprint, answer: try IdempotencyRecord.encode(answer))
          remembered[key] = record
          fresh.keys.append(key)
          fresh.fingerprints.append(record.fingerprint)
          fresh.answers.append(record.answer)
          answers.append(answer)
        }
        guard !fresh.keys.isEmpty else { return answers }
        // One round trip for the batch's writes: its answers, its ledger entries and the counter.
        _ = try await tx.execute(
          """
          WITH answers AS (
            INSERT INTO quota.idempotency (tenant_id, method, key, fingerprint, answer, create_time)
            SELECT $1, $2, k, f, a, $3 FROM unnest($4::text[], $5::text[], $6::text[]) AS t(k, f, a)
          ), entries AS (
            INSERT INTO quota.ledger (tenant_id, resource, quantity, usage_time, window_start, source, idempotency_key)
            SELECT $1, $7, q, $3, $8, 'consume', k FROM unnest($9::text[], $10::bigint[]) AS e(k, q)
          )
          UPDATE quota.counters SET used = $11 WHERE tenant_id = $1 AND resource = $7 AND window_start = $8
          """,
          [
            tenant, ConsumeCommand.method, now, fresh.keys, fresh.fingerprints, fresh.answers,
            resource.rawValue, window.start, admitted.keys, admitted.amounts, used,
          ])
        return answers
      }
    } catch let error as QuotaError {
      // An unknown tenant refuses every call in the batch, and is remembered for none.
      return commands.map { _ in .failure(error) }
    }
  }
}
