import Foundation
import Postgres

extension RegistryStore {
  /// SetModelAlias: creates the alias or moves it; the model's update_time moves too.
  /// - Throws: `RegistryError` (`.modelNotFound`, `.versionNotFound`, `.invalidRequest` when
  ///   the alias is a version string of the model, `.tooManyAliases` when a new alias would pass
  ///   `RegistryFieldRules.maxAliasesPerModel`; the model's row is locked, so concurrent calls
  ///   cannot pass it together), or a database error.
  public func setAlias(_ command: SetAliasCommand) async throws -> Alias {
    try await mutate(command) { tx, now, _ -> Result<Alias, RegistryError> in
      let tenant = command.tenantID
      guard let model = try await self.lockModel(tx, tenant: tenant, command.model) else {
        return .failure(.modelNotFound(command.model))
      }
      let rows = try await tx.query(
        """
        SELECT EXISTS (SELECT 1 FROM registry.versions WHERE tenant_id = $1 AND model_id = $2 AND version = $3) AS alias_is_version,
               (SELECT id FROM registry.versions WHERE tenant_id = $1 AND model_id = $2 AND version = $4) AS target,
               EXISTS (SELECT 1 FROM registry.aliases WHERE tenant_id = $1 AND model_id = $2 AND name = $3) AS alias_exists,
               (SELECT count(*) FROM registry.aliases WHERE tenant_id = $1 AND model_id = $2) AS alias_count
        """, [tenant, model.id, command.alias, command.version])
      if try rows[0].decode(Bool.self, column: "alias_is_version") {
        return .failure(.invalidRequest([FieldViolation("alias", .namesAVersion)]))
      }
      guard let target = try rows[0].decode(UUID?.self, column: "target") else {
        return .failure(.versionNotFound(.version(command.version)))
      }
      let limit = RegistryFieldRules.maxAliasesPerModel
      if try !rows[0].decode(Bool.self, column: "alias_exists"), try rows[0].decode(Int.self, column: "alias_count") >= limit {
        return .failure(.tooManyAliases(limit))
      }
      _ = try await tx.execute(
        """
        INSERT INTO registry.aliases (tenant_id, model_id, name, version_id, update_time) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (tenant_id, model_id, name) DO UPDATE SET version_id = excluded.version_id, update_time = excluded.update_time
        """, [tenant, model.id, command.alias, target, now])
      try await self.touch(tx, tenant: tenant, model.id, now: now)
      return .success(Alias(
        name: command.alias, version: command.version, modelID: Self.text(model.id), versionID: Self.text(target),
        updatedAt: now))
    }
  }

  /// GetModelAlias: the alias with the version it points at, in one statement.
  /// - Throws: `RegistryError` (`.modelNotFound`, `.aliasNotFound`), or a database error.
  public func alias(_ query: AliasQuery) async throws -> Alias {
    try await pool.transaction(tenant: query.tenantID, readOnly: true) { tx in
      let modelFilter: String
      let modelKey: any PostgresEncodable
      switch query.model {
      case .id(let text):
        guard let id = UUID(uuidString: text) else { throw RegistryError.modelNotFound(query.model) }
        (modelFilter, modelKey) = ("m.id = $2", id)
      case .name(let name):
        (modelFilter, modelKey) = ("m.name = $2", name)
      }
      let rows = try await tx.query(
        """
        SELECT m.id AS model_id, a.version_id, a.update_time, v.version FROM registry.models m
        LEFT JOIN registry.aliases a ON a.tenant_id = m.tenant_id AND a.model_id = m.id AND a.name = $3
        LEFT JOIN registry.versions v ON v.tenant_id = a.tenant_id AND v.id = a.version_id
        WHERE m.tenant_id = $1 AND \(modelFilter)
        """, [query.tenantID, modelKey, query.alias])
      guard let row = rows.first else { throw RegistryError.modelNotFound(query.model) }
      guard let versionID = try row.decode(UUID?.self, column: "version_id") else {
        throw RegistryError.aliasNotFound(query.alias)
      }
      return Alias(
        name: query.alias, version: try row.decode(String.self, column: "version"),
        modelID: Self.text(try row.decode(UUID.self, column: "model_id")), versionID: Self.text(versionID),
        updatedAt: try row.decode(Date.self, column: "update_time"))
    }
  }

  /// DeleteModelAlias: its version stays; the model's update_time moves.
  /// - Throws: `RegistryError` (`.modelNotFound`, `.aliasNotFound`), or a database error.
  public func deleteAlias(_ command: DeleteAliasCommand) async throws {
    _ = try await mutate(command) { tx, now, _ -> Result<Done, RegistryError> in
      let tenant = command.tenantID
      guard let model = try await self.lockModel(tx, tenant: tenant, command.model) else {
        return .failure(.modelNotFound(command.model))
      }
      let deleted = try await tx.execute(
        "DELETE FROM registry.aliases WHERE tenant_id = $1 AND model_id = $2 AND name = $3", [tenant, model.id, command.alias])
      if deleted == 0 { return .failure(.aliasNotFound(command.alias)) }
      try await self.touch(tx, tenant: tenant, model.id, now: now)
      return .success(Done())
    }
  }

  /// Moves a model's update_time: Model.update_time "changes on every successful update,
  /// including alias changes".
  private func touch(_ tx: PostgresTransaction, tenant: String, _ model: UUID, now: Date) async throws {
    _ = try await tx.execute("UPDATE registry.models SET update_time = $3 WHERE tenant_id = $1 AND id = $2", [tenant, model, now])
  }
}
