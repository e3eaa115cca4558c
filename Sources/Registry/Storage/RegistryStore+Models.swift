import Foundation
public import Postgres

extension RegistryStore {
  /// CreateModel: reserves one MODELS unit and commits it with the row.
  /// - Throws: `RegistryError` (`.modelNameTaken`, `.quotaExhausted`, `.quotaTenantUnknown`,
  ///   `.quotaUnavailable`, `.invalidRequest` for a reused key), or a database error.
  public func createModel(_ command: CreateModelCommand) async throws -> Model {
    try await mutate(command) { tx, now, effects -> Result<Model, RegistryError> in
      let tenant = command.tenantID
      // The common refusal first, before any quota is touched.
      let taken = try await tx.query("SELECT 1 FROM registry.models WHERE tenant_id = $1 AND name = $2", [tenant, command.name])
      if !taken.isEmpty { return .failure(.modelNameTaken(command.name)) }
      let reservation: String
      switch try await self.reserve(.models, 1, for: command, effects) {
      case .success(let id): reservation = id
      case .failure(let refusal): return .failure(refusal)
      }
      let id = UUID()
      // A concurrent create of the same name waits on the unique index, then does nothing.
      let inserted = try await tx.query(
        """
        INSERT INTO registry.models (tenant_id, id, name, description, labels, state, reservation_id, create_time, update_time)
        VALUES ($1, $2, $3, $4, $5::jsonb, $6::smallint, $7, $8, $8)
        ON CONFLICT ON CONSTRAINT models_name_key DO NOTHING RETURNING id
        """,
        [
          tenant, id, command.name, command.description, try PostgresJSON(encoding: command.labels),
          ModelState.active.rawValue, reservation, now,
        ])
      if inserted.isEmpty { return .failure(.modelNameTaken(command.name)) }
      try await self.commit(reservation, effects)
      return .success(Model(
        id: Self.text(id), tenantID: tenant, name: command.name, description: command.description,
        labels: command.labels, state: .active, createdAt: now, updatedAt: now, aliases: [:]))
    }
  }

  /// GetModel.
  /// - Throws: `RegistryError.modelNotFound`, or a database error.
  public func model(_ query: ModelQuery) async throws -> Model {
    try await pool.transaction(tenant: query.tenantID, readOnly: true) { tx in
      guard let model = try await self.fetchModel(tx, tenant: query.tenantID, query.model) else {
        throw RegistryError.modelNotFound(query.model)
      }
      return model
    }
  }

  /// ListModels: one query per page, aliases included, in (name, id) order after the cursor.
  /// - Throws: a database error.
  public func listModels(_ query: ListModelsQuery) async throws -> Page<Model, ModelCursor> {
    try await listModels(query) { $0 }
  }

  /// ListModels, each page as `render` makes it (the RPC layer: its encoded answer).
  ///
  /// A page read before is answered from `listings` when the tenant's catalogue version has not
  /// moved since (one key lookup instead of the page's statement); otherwise the page is read
  /// with the version in the same statement, so the two belong to one snapshot, and kept. What
  /// `render` made of a kept page is kept beside it, so a page answered again is not rendered
  /// again: `render` must depend on nothing but the page (and what the query determines).
  /// - Throws: a database error, or what `render` throws.
  public func listModels<Rendering: Sendable>(
    _ query: ListModelsQuery, rendering render: (Page<Model, ModelCursor>) throws -> Rendering
  ) async throws -> Rendering {
    if let listings, let kept = listings.entry(for: query), try await catalogVersion(query.tenantID) == kept.version {
      listings.countHit()
      if let rendering = kept.value.rendering as? Rendering { return rendering }
      let rendering = try render(kept.value.page)
      listings.insert(
        KeptPage(page: kept.value.page, rendering: rendering), version: kept.version,
        weight: Self.listingWeight(of: kept.value.page.items), for: query)
      return rendering
    }
    listings?.countRead()
    let (page, version) = try await readModelPage(query)
    let rendering = try render(page)
    // An empty page carries no version (the version rides on the rows) and costs little to read.
    if let listings, let version {
      listings.insert(KeptPage(page: page, rendering: rendering), version: version, weight: Self.listingWeight(of: page.items), for: query)
    }
    return rendering
  }

  /// What a kept page counts against the cache's capacity (`MAAS_REGISTRY_LIST_CACHE_MODELS`):
  /// one per model, or one per KiB a model keeps if more (its text twice: decoded, and in the
  /// encoded answer kept beside it). Counting models alone let a tenant with large models (long
  /// descriptions, many labels or aliases, listed at many page sizes) fill gigabytes; this way
  /// the capacity bounds memory too, at about a KiB per unit.
  static func listingWeight(of models: [Model]) -> Int {
    models.reduce(0) { total, model in
      let text = model.labels.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        + model.aliases.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        + model.name.utf8.count + model.description.utf8.count + model.id.utf8.count + model.tenantID.utf8.count
      return total + max(1, 2 * text / 1024)
    }
  }

  /// The tenant's catalogue version (0 before its first change), read after this call began.
  ///
  /// Callers of one tenant that ask while a read is running share the next one (`versionReads`):
  /// under load one round trip answers many ListModels, and since that read starts after they
  /// asked, it is as fresh as a read of their own (a change committed before a call arrived is
  /// always seen by it).
  func catalogVersion(_ tenant: String) async throws -> Int64 {
    try await versionReads.share(for: tenant) { [pool] tenant in
      try await pool.transaction(tenant: tenant, readOnly: true) { tx in
        try await tx.queryAndCommit(
          "SELECT coalesce((SELECT version FROM registry.catalog_versions WHERE tenant_id = $1), 0)", [tenant]
        )[0].decode(Int64.self, at: 0)
      }
    }
  }

  /// A page from the database, and the catalogue version it was read at (nil when it is empty).
  private func readModelPage(_ query: ListModelsQuery) async throws -> (Page<Model, ModelCursor>, Int64?) {
    try await pool.transaction(tenant: query.tenantID, readOnly: true) { tx in
      // The first page starts after ("", nil UUID), before every name (names are never empty).
      let after = query.after ?? ModelCursor(name: "", id: UUID(uuid: UUID.nilBytes))
      // Only the filters the request uses are in the statement: an always-true optional filter
      // ("$4 = '' OR ...") hides from the planner that the tenant's rows can be read in index
      // order, and it then reads and sorts every model of the tenant for each page. One prepared
      // statement per combination of filters (eight at most).
      var conditions = [Self.cursorCondition]
      var parameters: [(any PostgresEncodable)?] = [query.tenantID, after.name, after.id]
      if !query.namePrefix.isEmpty {
        parameters.append(query.namePrefix)
        conditions.append("m.name >= $\(parameters.count)::text AND starts_with(m.name, $\(parameters.count)::text)")
      }
      if !query.labelSelector.isEmpty {
        parameters.append(try PostgresJSON(encoding: query.labelSelector))
        conditions.append("m.labels @> $\(parameters.count)::jsonb")
      }
      if let state = query.state {
        parameters.append(state.rawValue)
        conditions.append("m.state = $\(parameters.count)::smallint")
      }
      parameters.append(query.pageSize + 1)
      // The statement and COMMIT in one round trip: the whole page is this one statement.
      let rows = try await tx.queryAndCommit(Self.listStatement(conditions, limit: "$\(parameters.count)"), parameters)
      var models = try rows.map { try Self.decodeModel($0, tenant: query.tenantID) }
      var next: ModelCursor?
      if models.count > query.pageSize {
        models.removeLast(models.count - query.pageSize)
        let last = models[models.count - 1]
        next = ModelCursor(name: last.name, id: UUID(uuidString: last.id)!)
      }
      return (Page(items: models, next: next), try rows.first?.decode(Int64.self, column: "catalog_version"))
    }
  }

  /// UpdateModel: the fields in the command's changes; update_time always moves.
  /// - Throws: `RegistryError` (`.modelNotFound`, `.modelNameTaken`), or a database error.
  public func updateModel(_ command: UpdateModelCommand) async throws -> Model {
    try await mutate(command) { tx, now, _ -> Result<Model, RegistryError> in
      let tenant = command.tenantID
      guard let locked = try await self.lockModel(tx, tenant: tenant, command.model) else {
        return .failure(.modelNotFound(command.model))
      }
      let changes = command.changes
      if let name = changes.name, name != locked.name {
        let taken = try await tx.query("SELECT 1 FROM registry.models WHERE tenant_id = $1 AND name = $2", [tenant, name])
        if !taken.isEmpty { return .failure(.modelNameTaken(name)) }
      }
      do {
        _ = try await tx.execute(
          """
          UPDATE registry.models SET name = coalesce($3::text, name), description = coalesce($4::text, description),
            labels = coalesce($5::jsonb, labels), state = coalesce($6::smallint, state), update_time = $7
          WHERE tenant_id = $1 AND id = $2
          """,
          [
            tenant, locked.id, changes.name, changes.description, try changes.labels.map { try PostgresJSON(encoding: $0) },
            changes.state?.rawValue, now,
          ])
      } catch let error as PostgresError where error.isUniqueViolation && error.constraint == "models_name_key" {
        // A concurrent rename took the name after the check: the transaction is aborted, so
        // this answer is not remembered; a retry meets the check above.
        throw RegistryError.modelNameTaken(changes.name ?? locked.name)
      }
      guard let model = try await self.fetchModel(tx, tenant: tenant, .id(Self.text(locked.id))) else {
        return .failure(.modelNotFound(command.model))
      }
      return .success(model)
    }
  }

  /// DeleteModel: with `force`, its aliases and versions too; every reservation they held is
  /// given back after the commit.
  /// - Throws: `RegistryError` (`.modelNotFound`, `.modelHasVersions`), or a database error.
  public func deleteModel(_ command: DeleteModelCommand) async throws {
    _ = try await mutate(command) { tx, now, effects -> Result<Done, RegistryError> in
      let tenant = command.tenantID
      guard let locked = try await self.lockModel(tx, tenant: tenant, command.model) else {
        return .failure(.modelNotFound(command.model))
      }
      let counted = try await tx.query(
        "SELECT count(*) FROM registry.versions WHERE tenant_id = $1 AND model_id = $2", [tenant, locked.id])
      let versions = try counted[0].decode(Int.self, at: 0)
      if versions > 0 && !command.force { return .failure(.modelHasVersions(versions)) }
      var freed: [String] = []
      if versions > 0 {
        _ = try await tx.execute("DELETE FROM registry.aliases WHERE tenant_id = $1 AND model_id = $2", [tenant, locked.id])
        let gone = try await tx.query(
          "DELETE FROM registry.versions WHERE tenant_id = $1 AND model_id = $2 RETURNING reservation_id",
          [tenant, locked.id])
        freed += try gone.compactMap { try $0.decode(String?.self, column: "reservation_id") }
      }
      _ = try await tx.execute("DELETE FROM registry.models WHERE tenant_id = $1 AND id = $2", [tenant, locked.id])
      if let reservation = locked.reservationID { freed.append(reservation) }
      try await self.free(freed, tx, now: now, effects)
      return .success(Done())
    }
  }

  /// A page of a tenant's models in (name, id) order after `$2, $3`, under `conditions` (the
  /// first is always the cursor's), with the catalogue version, at most `limit` rows. One
  /// statement is the whole page.
  static func listStatement(_ conditions: [String], limit: String) -> String {
    """
    SELECT \(modelColumns),
      coalesce((SELECT c.version FROM registry.catalog_versions c WHERE c.tenant_id = $1), 0) AS catalog_version
      FROM registry.models m
     WHERE m.tenant_id = $1 AND \(conditions.joined(separator: " AND "))
     ORDER BY m.name, m.id
     LIMIT \(limit)
    """
  }

  /// The statement of an unfiltered ListModels page, as the service sends it: `$1` tenant, `$2`
  /// and `$3` the cursor's name and id, `$4` the row limit. `make bench-gateway` runs it through
  /// pgbench as the limit the gateway is measured against.
  public static var unfilteredListStatement: String { listStatement([cursorCondition], limit: "$4") }

  /// Rows after the cursor (`$2` name, `$3` id) in the tenant's index order.
  static let cursorCondition = "(m.tenant_id, m.name, m.id) > ($1, $2::text, $3::uuid)"

  // MARK: - Shared reads

  /// The model row and its aliases, aggregated in the same statement.
  /// Labels and aliases come as flat text arrays (key, value, key, value, ...) rather than
  /// JSON: decoding JSON into dictionaries was a quarter of a list's CPU in the service.
  static let modelSelect = "SELECT \(modelColumns) FROM registry.models m"

  static let modelColumns = """
    m.id, m.name, m.description, m.state, m.create_time, m.update_time,
      ARRAY(
        SELECT u.x FROM jsonb_each_text(m.labels) e, unnest(ARRAY[e.key, e.value]) WITH ORDINALITY u(x, n)
        ORDER BY e.key, u.n
      ) AS labels,
      ARRAY(
        SELECT u.x FROM registry.aliases a
        JOIN registry.versions v ON v.tenant_id = a.tenant_id AND v.id = a.version_id,
        unnest(ARRAY[a.name, v.version]) WITH ORDINALITY u(x, n)
        WHERE a.tenant_id = m.tenant_id AND a.model_id = m.id
        ORDER BY a.name, u.n
      ) AS aliases
    """

  func fetchModel(_ tx: PostgresTransaction, tenant: String, _ ref: ModelRef) async throws -> Model? {
    let rows: PostgresRows
    switch ref {
    case .id(let text):
      // Ids are UUIDs the service assigned; anything else names no model.
      guard let id = UUID(uuidString: text) else { return nil }
      rows = try await tx.query(Self.modelSelect + " WHERE m.tenant_id = $1 AND m.id = $2", [tenant, id])
    case .name(let name):
      rows = try await tx.query(Self.modelSelect + " WHERE m.tenant_id = $1 AND m.name = $2", [tenant, name])
    }
    return try rows.first.map { try Self.decodeModel($0, tenant: tenant) }
  }

  /// A model row locked for the rest of the transaction: every change to a model or its versions
  /// and aliases takes this lock first, so checks across them (an archived model, a version
  /// string that is an alias) cannot race.
  struct LockedModel {
    var id: UUID
    var name: String
    var state: ModelState
    var reservationID: String?
  }

  func lockModel(_ tx: PostgresTransaction, tenant: String, _ ref: ModelRef) async throws -> LockedModel? {
    let sql = "SELECT id, name, state, reservation_id FROM registry.models WHERE tenant_id = $1"
    let rows: PostgresRows
    switch ref {
    case .id(let text):
      guard let id = UUID(uuidString: text) else { return nil }
      rows = try await tx.query(sql + " AND id = $2 FOR UPDATE", [tenant, id])
    case .name(let name):
      rows = try await tx.query(sql + " AND name = $2 FOR UPDATE", [tenant, name])
    }
    guard let row = rows.first else { return nil }
    return LockedModel(
      id: try row.decode(UUID.self, column: "id"), name: try row.decode(String.self, column: "name"),
      state: try row.decode(ModelState.self, column: "state"),
      reservationID: try row.decode(String?.self, column: "reservation_id"))
  }

  static func decodeModel(_ row: PostgresRow, tenant: String) throws -> Model {
    Model(
      // The uuid column read as its text, which Postgres writes in lower case, as `text(_:)`
      // does: parsing it into a UUID only to print it again was a tenth of a listing's CPU.
      id: try row.decode(String.self, column: "id"), tenantID: tenant, name: try row.decode(String.self, column: "name"),
      description: try row.decode(String.self, column: "description"),
      labels: pairs(try row.decode([String].self, column: "labels")),
      state: try row.decode(ModelState.self, column: "state"),
      createdAt: try row.decode(Date.self, column: "create_time"),
      updatedAt: try row.decode(Date.self, column: "update_time"),
      aliases: pairs(try row.decode([String].self, column: "aliases")))
  }

  /// [k1, v1, k2, v2, ...] as a dictionary.
  static func pairs(_ flat: [String]) -> [String: String] {
    var result: [String: String] = [:]
    result.reserveCapacity(flat.count / 2)
    var index = 0
    while index + 1 < flat.count {
      result[flat[index]] = flat[index + 1]
      index += 2
    }
    return result
  }

  /// Ids on the wire: lower-case UUID text.
  static func text(_ id: UUID) -> String { id.uuidString.lowercased() }
}

// Stored as smallint 1 or 2; any other number fails to decode rather than guessing.
extension ModelState: PostgresDecodable {}

extension UUID {
  /// 00000000-0000-0000-0000-000000000000, which sorts before every other.
  static let nilBytes: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}
