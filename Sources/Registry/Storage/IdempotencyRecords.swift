import Foundation
import Postgres

/// A first answer as the `idempotency` table keeps it: success or refusal, as JSON.
enum StoredAnswer<Value: Codable>: Codable {
  case ok(Value)
  case refused(RegistryError)

  init(_ result: Result<Value, RegistryError>) {
    switch result {
    case .success(let value): self = .ok(value)
    case .failure(let error): self = .refused(error)
    }
  }

  var result: Result<Value, RegistryError> {
    switch self {
    case .ok(let value): .success(value)
    case .refused(let error): .failure(error)
    }
  }
}

/// The answer of a call that returns nothing (the Delete methods).
public struct Done: Sendable, Hashable, Codable {
  public init() {}
}

/// One remembered call: what was asked (its fingerprint) and the JSON of what was answered.
struct IdempotencyRecord: Sendable {
  var fingerprint: String
  var answer: String
  /// The transaction attempt that claimed the key (`QuotaEffects.attempt`); nil for records
  /// written before migration 4.
  var attempt: UUID?

  /// The first answer, if `command` is the same request; a different request under the same key
  /// is INVALID_ARGUMENT "idempotency_key".
  func replay<Command: RegistryCommand, Value: Codable>(for command: Command, as: Value.Type) throws
    -> Result<Value, RegistryError>
  {
    guard fingerprint == command.fingerprint else {
      return .failure(.invalidRequest([FieldViolation("idempotency_key", .reusedForDifferentRequest)]))
    }
    return try JSONDecoder().decode(StoredAnswer<Value>.self, from: Data(answer.utf8)).result
  }
}

extension RegistryStore {
  /// Claims the command's key in `tx` for transaction attempt `attempt`, or returns the record
  /// of the call that claimed it first. A claim of a concurrent transaction makes this wait until
  /// that one ends.
  func claim<Command: RegistryCommand>(_ tx: PostgresTransaction, _ command: Command, now: Date, attempt: UUID) async throws
    -> IdempotencyRecord?
  {
    let claimed = try await tx.query(
      """
      INSERT INTO registry.idempotency (tenant_id, method, key, fingerprint, answer, create_time, attempt)
      VALUES ($1, $2, $3, $4, '', $5, $6) ON CONFLICT DO NOTHING RETURNING 1
      """, [command.tenantID, Command.method, command.idempotencyKey, command.fingerprint, now, attempt])
    if !claimed.isEmpty { return nil }
    guard let record = try await self.record(tx, command) else {
      // The claim's holder rolled back between our insert and our read: run as a new attempt.
      throw PostgresError(kind: .query, message: "idempotency claim vanished; retrying", sqlState: "40001")
    }
    return record
  }

  /// Stores the answer under the key claimed in this transaction.
  func remember<Command: RegistryCommand, Value: Codable>(
    _ tx: PostgresTransaction, _ command: Command, _ answer: Result<Value, RegistryError>
  ) async throws {
    let json = String(decoding: try JSONEncoder().encode(StoredAnswer(answer)), as: UTF8.self)
    _ = try await tx.execute(
      "UPDATE registry.idempotency SET answer = $4 WHERE tenant_id = $1 AND method = $2 AND key = $3",
      [command.tenantID, Command.method, command.idempotencyKey, json])
  }

  /// The remembered call under the command's key, read in a transaction of its own.
  func recall<Command: RegistryCommand>(_ command: Command) async throws -> IdempotencyRecord? {
    try await pool.transaction(tenant: command.tenantID, readOnly: true) { tx in try await self.record(tx, command) }
  }

  private func record<Command: RegistryCommand>(_ tx: PostgresTransaction, _ command: Command) async throws
    -> IdempotencyRecord?
  {
    let rows = try await tx.query(
      "SELECT fingerprint, answer, attempt FROM registry.idempotency WHERE tenant_id = $1 AND method = $2 AND key = $3",
      [command.tenantID, Command.method, command.idempotencyKey])
    guard let row = rows.first else { return nil }
    return IdempotencyRecord(
      fingerprint: try row.decode(String.self, column: "fingerprint"), answer: try row.decode(String.self, column: "answer"),
      attempt: try row.decode(UUID?.self, column: "attempt"))
  }

  /// Deletes remembered answers older than `age` (never younger than 24 hours, which
  /// registry.proto promises), for every tenant; returns how many.
  public func sweepIdempotencyKeys(olderThan age: Duration = .seconds(48 * 3600)) async throws -> Int64 {
    let rows = try await pool.query(
      "SELECT registry.sweep_idempotency(make_interval(secs => $1))", [Double(age.components.seconds)])
    return try rows[0].decode(Int64.self, at: 0)
  }
}
