import Foundation
import Postgres

extension QuotaStore {
  /// Consume: spends `command.amount` of a flow resource in the current window, all or nothing.
  ///
  /// Calls for the same tenant and resource are applied in batches (`batcher`, group commit):
  /// those that arrive while a transaction for the pair is running go together in the next one.
  /// Each is admitted or refused on its own, in arrival order, against the counter as the calls
  /// before it in the batch left it.
  ///
  /// Why: every Consume of a tenant must serialise on that tenant's counter row, so one hot tenant
  /// is limited by how many row-lock-and-commit cycles Postgres does per second (what `pgbench`
  /// measures with `UPDATE ... SET used = used + 1`). Applying a batch per cycle multiplies that by
  /// the batch size, and each call is still answered only after its own transaction commits: no
  /// answer is given for usage that is not durable, and no quota is ever handed out ahead of time.
  /// At most one transaction per pair runs in this process at a time, so this process never
  /// contends with itself for the row; other pairs run in parallel, up to the pool's size.
  /// - Throws: `QuotaError` when refused (`.exhausted` with limit, usage and reset time), or a
  ///   database error.
  public func consume(_ command: ConsumeCommand) async throws -> ConsumeReceipt {
    let key = ConsumeKey(tenant: command.tenantID, resource: command.resource)
    let answer = try await batcher.submit(command, for: key) { [self] _, batch in
      do {
        return try await self.consumeBatch(batch, readingPriorAnswers: false)
      } catch let error as PostgresError where error.sqlState == "23505" && error.constraint == "idempotency_pkey" {
        // A key of the batch was answered before: this attempt rolled back; redo it looking the
        // earlier answers up, so those calls replay them.
        return try await self.consumeBatch(batch, readingPriorAnswers: true)
      }
    }
    return try answer.get()
  }

  /// One transaction for calls of one tenant and resource: two round trips however many calls it
  /// carries (BEGIN with the counter's lock, then the writes with COMMIT).
  ///
  /// - Parameter readingPriorAnswers: look remembered answers up before deciding. The first
  ///   attempt does not: retries are rare, and a key answered before makes the write fail on the
  ///   idempotency table's primary key, which rolls everything back and brings the second attempt.
  func consumeBatch(_ commands: [ConsumeCommand], readingPriorAnswers: Bool) async throws
    -> [Result<ConsumeReceipt, QuotaError>]
  {
    let tenant = commands[0].tenantID
    let resource = commands[0].resource
    let now = clock.now()
    guard let window = resource.window.period(containing: now) else {
      preconditionFailure("Consume validated a flow resource, which has a window")
    }
    do {
      return try await pool.transaction(tenant: tenant) { tx in
        let counter = try await self.lockCounterWithLimit(tx, tenant: tenant, resource: resource, windowStart: window.start)
        var used = counter.used
        let prior =
          readingPriorAnswers
          ? try await self.priorAnswers(tx, tenant: tenant, method: ConsumeCommand.method, keys: commands.map(\.idempotencyKey))
          : [:]

        var answers: [Result<ConsumeReceipt, QuotaError>] = []
        var remembered: [String: IdempotencyRecord] = [:]
        var fresh: (keys: [String], fingerprints: [String], answers: [String]) = ([], [], [])
        var spent: Int64 = 0
        for command in commands {
          let key = command.idempotencyKey
          if let record = prior[key] ?? remembered[key] {
            answers.append(try ConsumeAnswerText.replay(record, for: command))
            continue
          }
          let answer = QuotaAdmission.admit(
            resource: resource, used: used, reserved: 0, amount: command.amount, limit: counter.limit,
            resetsAt: window.end
          ).map { admission in
            used = admission.total
            return ConsumeReceipt(resource: resource, used: admission.total, limit: counter.limit, windowResetTime: window.end)
          }
          if case .success = answer { spent += command.amount }
          let record = IdempotencyRecord(fingerprint: command.fingerprint, answer: try ConsumeAnswerText.encode(answer))
          remembered[key] = record
          fresh.keys.append(key)
          fresh.fingerprints.append(record.fingerprint)
          fresh.answers.append(record.answer)
          answers.append(answer)
        }
        guard !fresh.keys.isEmpty else { return answers }
        // One round trip for the batch's writes and COMMIT: every call's answer, one ledger entry
        // for what the batch spent (the ledger adds up to the counter; the answers say who spent
        // it), and the counter.
        _ = try await tx.queryAndCommit(
          """
          WITH answers AS (
            INSERT INTO quota.idempotency (tenant_id, method, key, fingerprint, answer, create_time)
            SELECT $1, $2, k, f, a, $3 FROM unnest($4::text[], $5::text[], $6::text[]) AS t(k, f, a)
          ), entry AS (
            INSERT INTO quota.ledger (tenant_id, resource, quantity, usage_time, window_start, source, labels)
            SELECT $1, $7, $9, $3, $8, 'consume', jsonb_build_object('calls', $10::bigint) WHERE $9 > 0
          )
          UPDATE quota.counters SET used = $11 WHERE tenant_id = $1 AND resource = $7 AND window_start = $8
          """,
          [
            tenant, ConsumeCommand.method, now, fresh.keys, fresh.fingerprints, fresh.answers,
            resource.rawValue, window.start, spent, answers.count { (try? $0.get()) != nil }, used,
          ])
        return answers
      }
    } catch let error as QuotaError {
      // An unknown tenant refuses every call in the batch, and is remembered for none.
      return commands.map { _ in .failure(error) }
    }
  }
}

/// Consume's remembered answers in a short text form ("ok 5 10000 1795392000"), because every
/// call writes one and JSON was the largest single cost of a call in the service. Anything other
/// than an admission or an exhaustion falls back to `IdempotencyRecord`'s JSON.
enum ConsumeAnswerText {
  static func encode(_ answer: Result<ConsumeReceipt, QuotaError>) throws -> String {
    switch answer {
    case .success(let receipt):
      return "ok \(receipt.resource.rawValue) \(receipt.used) \(limitText(receipt.limit)) \(seconds(receipt.windowResetTime))"
    case .failure(.exhausted(let resource, let limit, let used, let requested, let resetsAt?)):
      return "no \(resource.rawValue) \(limit) \(used) \(requested) \(seconds(resetsAt))"
    case .failure:
      return try IdempotencyRecord.encode(answer)
    }
  }

  static func replay(_ record: IdempotencyRecord, for command: ConsumeCommand) throws
    -> Result<ConsumeReceipt, QuotaError>
  {
    if let refusal = record.reuseRefusal(for: command) { return .failure(refusal) }
    let fields = record.answer.split(separator: " ")
    func int(_ index: Int) -> Int64? { index < fields.count ? Int64(fields[index]) : nil }
    switch fields.first {
    case "ok":
      guard fields.count == 5, let resource = int(1).flatMap({ QuotaResource(rawValue: Int($0)) }), let used = int(2),
        let reset = int(4)
      else { break }
      let limit: QuotaLimit = fields[3] == "unlimited" ? .unlimited : .limited(int(3) ?? 0)
      return .success(
        ConsumeReceipt(resource: resource, used: used, limit: limit, windowResetTime: Date(timeIntervalSince1970: Double(reset))))
    case "no":
      guard fields.count == 6, let resource = int(1).flatMap({ QuotaResource(rawValue: Int($0)) }), let limit = int(2),
        let used = int(3), let requested = int(4), let reset = int(5)
      else { break }
      return .failure(
        .exhausted(
          resource: resource, limit: limit, used: used, requested: requested,
          resetsAt: Date(timeIntervalSince1970: Double(reset))))
    default:
      return try record.replay(for: command, as: ConsumeReceipt.self)
    }
    throw QuotaStoreError.corruptAnswer(record.answer)
  }

  private static func limitText(_ limit: QuotaLimit) -> String {
    switch limit {
    case .limited(let value): String(value)
    case .unlimited: "unlimited"
    }
  }

  /// Window boundaries are whole seconds, so nothing is lost.
  private static func seconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded()) }
}

/// Storage found something it did not write.
enum QuotaStoreError: Error, CustomStringConvertible {
  case corruptAnswer(String)

  var description: String { "a remembered answer does not parse: \(self)" }
}

/// What Consume calls are batched by: one counter row's tenant and resource.
struct ConsumeKey: Hashable, Sendable {
  var tenant: String
  var resource: QuotaResource
}
