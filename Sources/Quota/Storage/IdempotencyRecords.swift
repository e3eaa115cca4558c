import Foundation
import Postgres

/// A first answer as the `idempotency` table keeps it: success or refusal, as JSON.
enum StoredAnswer<Value: Codable>: Codable {
  case ok(Value)
  case refused(QuotaError)

  init(_ result: Result<Value, QuotaError>) {
    switch result {
    case .success(let value): self = .ok(value)
    case .failure(let error): self = .refused(error)
    }
  }

  var result: Result<Value, QuotaError> {
    switch self {
    case .ok(let value): .success(value)
    case .refused(let error): .failure(error)
    }
  }
}

/// One remembered call: what was asked (its fingerprint) and the JSON of what was answered.
struct IdempotencyRecord: Sendable {
  var fingerprint: String
  var answer: String

  /// The first answer, if `command` is the same request; a different request under the same key
  /// is INVALID_ARGUMENT "idempotency_key".
  func replay<Command: IdempotentCommand, Value: Codable>(for command: Command, as: Value.Type)
    throws -> Result<Value, QuotaError>
  {
    if let refusal = reuseRefusal(for: command) { return .failure(refusal) }
    return try JSONDecoder().decode(StoredAnswer<Value>.self, from: Data(answer.utf8)).result
  }

  /// INVALID_ARGUMENT "idempotency_key" when `command` is not the request the key first
  /// answered; nil when it is a retry of it.
  func reuseRefusal(for command: some IdempotentCommand) -> QuotaError? {
    fingerprint == command.fingerprint
      ? nil : .invalidRequest([FieldViolation("idempotency_key", .reusedForDifferentRequest)])
  }

  static func encode<Value: Codable>(_ result: Result<Value, QuotaError>) throws -> String {
    String(decoding: try JSONEncoder().encode(StoredAnswer(result)), as: UTF8.self)
  }
}

extension IdempotencyRecord {
  /// The record in a row's `fingerprint` and `answer` columns; nil when they are NULL (the key
  /// answered nothing yet). In an extension, so the memberwise initialiser stays.
  init?(row: PostgresRow) throws {
    guard let fingerprint = try row.decode(String?.self, column: "fingerprint"),
      let answer = try row.decode(String?.self, column: "answer")
    else { return nil }
    self.init(fingerprint: fingerprint, answer: answer)
  }
}

extension QuotaStore {
  /// The remembered calls of `method` among `keys`, by key.
  func priorAnswers(_ tx: PostgresTransaction, tenant: String, method: String, keys: [String]) async throws
    -> [String: IdempotencyRecord]
  {
    let rows = try await tx.query(
      "SELECT key, fingerprint, answer FROM quota.idempotency WHERE tenant_id = $1 AND method = $2 AND key = ANY($3)",
      [tenant, method, keys])
    var records: [String: IdempotencyRecord] = [:]
    for row in rows {
      records[try row.decode(String.self, column: "key")] = IdempotencyRecord(
        fingerprint: try row.decode(String.self, column: "fingerprint"),
        answer: try row.decode(String.self, column: "answer"))
    }
    return records
  }

  /// Answers `command` with its remembered answer if there is one; otherwise runs `body` and
  /// remembers what it answers, in the same transaction. Call it once the rows `body` decides on
  /// are locked, so a concurrent retry waits and then replays.
  func idempotent<Command: IdempotentCommand, Value: Codable>(
    _ command: Command, in tx: PostgresTransaction, now: Date,
    _ body: () async throws -> Result<Value, QuotaError>
  ) async throws -> Result<Value, QuotaError> {
    let key = command.idempotencyKey
    if let prior = try await priorAnswers(tx, tenant: command.tenantID, method: Command.method, keys: [key])[key] {
      return try prior.replay(for: command, as: Value.self)
    }
    let answer = try await body()
    _ = try await tx.execute(
      """
      INSERT INTO quota.idempotency (tenant_id, method, key, fingerprint, answer, create_time)
      VALUES ($1, $2, $3, $4, $5, $6)
      """,
      [command.tenantID, Command.method, key, command.fingerprint, try IdempotencyRecord.encode(answer), now])
    return answer
  }

  /// Deletes remembered answers older than `age` (never younger than 24 hours, which
  /// quota.proto promises), for every tenant; returns how many.
  public func sweepIdempotencyKeys(olderThan age: Duration = .seconds(48 * 3600)) async throws -> Int64 {
    let rows = try await pool.query(
      "SELECT quota.sweep_idempotency(make_interval(secs => $1))", [Double(age.components.seconds)])
    return try rows[0].decode(Int64.self, at: 0)
  }
}
