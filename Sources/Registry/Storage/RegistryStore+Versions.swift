import Foundation
import Postgres

extension RegistryStore {
  /// CreateModelVersion: reserves the artifact's size of STORAGE_BYTES (none for an empty one)
  /// and commits it with the row.
  /// - Throws: `RegistryError` (`.modelNotFound`, `.modelArchived`, `.versionTaken`,
  ///   `.versionIsAlias`, `.tooManyVersions` past `RegistryFieldRules.maxVersionsPerModel`,
  ///   `.quotaExhausted`, `.quotaTenantUnknown`, `.quotaUnavailable`), or a database error.
  public func createVersion(_ command: CreateVersionCommand) async throws -> ModelVersion {
    try await mutate(command) { tx, now, effects -> Result<ModelVersion, RegistryError> in
      let tenant = command.tenantID
      guard let model = try await self.lockModel(tx, tenant: tenant, command.model) else {
        return .failure(.modelNotFound(command.model))
      }
      if model.state == .archived { return .failure(.modelArchived(model.name)) }
      // The count stops at the bound, so it costs at most that many index entries; the model's
      // row is locked, so concurrent creates cannot pass the bound together.
      let limit = RegistryFieldRules.maxVersionsPerModel
      let names = try await tx.query(
        """
        SELECT EXISTS (SELECT 1 FROM registry.versions WHERE tenant_id = $1 AND model_id = $2 AND version = $3) AS version,
               EXISTS (SELECT 1 FROM registry.aliases WHERE tenant_id = $1 AND model_id = $2 AND name = $3) AS alias,
               (SELECT count(*) FROM (SELECT 1 FROM registry.versions WHERE tenant_id = $1 AND model_id = $2 LIMIT $4) v) AS versions
        """, [tenant, model.id, command.version, Int64(limit)])
      if try names[0].decode(Bool.self, column: "version") { return .failure(.versionTaken(command.version)) }
      if try names[0].decode(Bool.self, column: "alias") { return .failure(.versionIsAlias(command.version)) }
      if try names[0].decode(Int.self, column: "versions") >= limit { return .failure(.tooManyVersions(limit)) }
      var reservation: String?
      if command.artifact.sizeBytes > 0 {
        switch try await self.reserve(.storageBytes, command.artifact.sizeBytes, for: command, effects) {
        case .success(let id): reservation = id
        case .failure(let refusal): return .failure(refusal)
        }
      }
      let id = UUID()
      let artifact = command.artifact
      _ = try await tx.execute(
        """
        INSERT INTO registry.versions (tenant_id, id, model_id, version, artifact_uri, artifact_format,
          artifact_size_bytes, artifact_sha256, labels, reservation_id, create_time)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11)
        """,
        [
          tenant, id, model.id, command.version, artifact.uri, artifact.format, artifact.sizeBytes, artifact.sha256,
          try PostgresJSON(encoding: command.labels), reservation, now,
        ])
      if let reservation { try await self.commit(reservation, effects) }
      return .success(ModelVersion(
        id: Self.text(id), modelID: Self.text(model.id), version: command.version, artifact: artifact,
        labels: command.labels, createdAt: now))
    }
  }

  /// GetModelVersion: by id, version string or alias.
  /// - Throws: `RegistryError` (`.modelNotFound`, `.versionNotFound`), or a database error.
  public func version(_ query: VersionQuery) async throws -> ModelVersion {
    try await pool.transaction(tenant: query.tenantID, readOnly: true) { tx in
      let tenant = query.tenantID
      if let version = try await self.fetchVersion(tx, tenant: tenant, model: query.model, query.version) {
        return version
      }
      // Only on a miss: say which of the two was not there.
      if let model = query.model, try await self.fetchModel(tx, tenant: tenant, model) == nil {
        throw RegistryError.modelNotFound(model)
      }
      throw RegistryError.versionNotFound(query.version)
    }
  }

  /// ListModelVersions: one query per page, newest first, after the cursor. The model is joined
  /// in the same statement, so a missing model is told apart from one without versions.
  /// - Throws: `RegistryError.modelNotFound`, or a database error.
  public func listVersions(_ query: ListVersionsQuery) async throws -> Page<ModelVersion, VersionCursor> {
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
      // The first page starts before (infinity, the largest UUID): after every version.
      let before = query.after.map { Self.timestampText(micros: $0.createMicros) } ?? "infinity"
      let beforeID = query.after?.id ?? UUID(uuid: UUID.maxBytes)
      let rows = try await tx.queryAndCommit(
        """
        SELECT m.id AS owner, v.* FROM registry.models m
        LEFT JOIN LATERAL (
          SELECT \(Self.versionColumns) FROM registry.versions v
          WHERE v.tenant_id = m.tenant_id AND v.model_id = m.id
            AND (v.create_time, v.id) < ($3::timestamptz, $4::uuid) AND v.labels @> $5::jsonb
          ORDER BY v.create_time DESC, v.id DESC
          LIMIT $6
        ) v ON true
        WHERE m.tenant_id = $1 AND \(modelFilter)
        ORDER BY v.create_time DESC, v.id DESC
        """,
        [query.tenantID, modelKey, before, beforeID, try PostgresJSON(encoding: query.labelSelector), query.pageSize + 1])
      guard !rows.isEmpty else { throw RegistryError.modelNotFound(query.model) }
      var versions: [(ModelVersion, Int64)] = []
      for row in rows where try row.decode(UUID?.self, column: "id") != nil {
        versions.append((try Self.decodeVersion(row), try row.decode(Int64.self, column: "create_micros")))
      }
      var next: VersionCursor?
      if versions.count > query.pageSize {
        versions.removeLast(versions.count - query.pageSize)
        let (last, micros) = versions[versions.count - 1]
        next = VersionCursor(createMicros: micros, id: UUID(uuidString: last.id)!)
      }
      return Page(items: versions.map(\.0), next: next)
    }
  }

  /// DeleteModelVersion: gives its storage back after the commit.
  /// - Throws: `RegistryError` (`.modelNotFound`, `.versionNotFound`, `.versionAliased`), or a
  ///   database error.
  public func deleteVersion(_ command: DeleteVersionCommand) async throws {
    _ = try await mutate(command) { tx, now, effects -> Result<Done, RegistryError> in
      let tenant = command.tenantID
      var modelRef = command.model
      if modelRef == nil, case .id(let text) = command.version {
        // By id alone: the version names its model, whose lock comes first like everywhere.
        let owner = try await UUID(uuidString: text).asyncMap { id in
          try await tx.query("SELECT model_id FROM registry.versions WHERE tenant_id = $1 AND id = $2", [tenant, id])
        }
        guard let row = owner?.first else { return .failure(.versionNotFound(command.version)) }
        modelRef = .id(Self.text(try row.decode(UUID.self, column: "model_id")))
      }
      guard let ref = modelRef, let model = try await self.lockModel(tx, tenant: tenant, ref) else {
        return .failure(command.model.map(RegistryError.modelNotFound) ?? .versionNotFound(command.version))
      }
      let found: PostgresRows
      switch command.version {
      case .id(let text):
        guard let id = UUID(uuidString: text) else { return .failure(.versionNotFound(command.version)) }
        found = try await tx.query(
          "SELECT id FROM registry.versions WHERE tenant_id = $1 AND model_id = $2 AND id = $3", [tenant, model.id, id])
      case .version(let version):
        found = try await tx.query(
          "SELECT id FROM registry.versions WHERE tenant_id = $1 AND model_id = $2 AND version = $3",
          [tenant, model.id, version])
      case .alias:
        return .failure(.invalidRequest([FieldViolation("version", .aliasNotAllowed)]))
      }
      guard let versionID = try found.first?.decode(UUID.self, column: "id") else {
        return .failure(.versionNotFound(command.version))
      }
      let aliases = try await tx.query(
        "SELECT name FROM registry.aliases WHERE tenant_id = $1 AND version_id = $2 ORDER BY name", [tenant, versionID])
      if !aliases.isEmpty {
        return .failure(.versionAliased(try aliases.map { try $0.decode(String.self, column: "name") }))
      }
      let gone = try await tx.query(
        "DELETE FROM registry.versions WHERE tenant_id = $1 AND id = $2 RETURNING reservation_id", [tenant, versionID])
      try await self.free(try gone.compactMap { try $0.decode(String?.self, column: "reservation_id") }, tx, now: now, effects)
      return .success(Done())
    }
  }

  // MARK: - Shared reads

  static let versionColumns = """
    v.id, v.model_id, v.version, v.artifact_uri, v.artifact_format, v.artifact_size_bytes, v.artifact_sha256,
    v.labels, v.create_time, (extract(epoch FROM v.create_time) * 1000000)::bigint AS create_micros
    """

  /// One version by reference, within the model when one is named. Each shape is one statement.
  func fetchVersion(_ tx: PostgresTransaction, tenant: String, model: ModelRef?, _ ref: VersionRef) async throws
    -> ModelVersion?
  {
    var sql = "SELECT \(Self.versionColumns) FROM registry.versions v"
    var parameters: [(any PostgresEncodable)?] = [tenant]
    var conditions = ["v.tenant_id = $1"]
    if let model {
      sql += " JOIN registry.models m ON m.tenant_id = v.tenant_id AND m.id = v.model_id"
      switch model {
      case .id(let text):
        guard let id = UUID(uuidString: text) else { return nil }
        parameters.append(id)
        conditions.append("m.id = $2")
      case .name(let name):
        parameters.append(name)
        conditions.append("m.name = $2")
      }
    }
    let next = "$\(parameters.count + 1)"
    switch ref {
    case .id(let text):
      guard let id = UUID(uuidString: text) else { return nil }
      parameters.append(id)
      conditions.append("v.id = \(next)")
    case .version(let version):
      parameters.append(version)
      conditions.append("v.version = \(next)")
    case .alias(let alias):
      parameters.append(alias)
      conditions.append(
        "v.id = (SELECT a.version_id FROM registry.aliases a WHERE a.tenant_id = v.tenant_id AND a.model_id = v.model_id AND a.name = \(next))"
      )
    }
    let rows = try await tx.query(sql + " WHERE " + conditions.joined(separator: " AND "), parameters)
    return try rows.first.map(Self.decodeVersion)
  }

  static func decodeVersion(_ row: PostgresRow) throws -> ModelVersion {
    ModelVersion(
      id: text(try row.decode(UUID.self, column: "id")), modelID: text(try row.decode(UUID.self, column: "model_id")),
      version: try row.decode(String.self, column: "version"),
      artifact: Artifact(
        uri: try row.decode(String.self, column: "artifact_uri"),
        format: try row.decode(String.self, column: "artifact_format"),
        sizeBytes: try row.decode(Int64.self, column: "artifact_size_bytes"),
        sha256: try row.decode(String.self, column: "artifact_sha256")),
      labels: try row.decode(PostgresJSON.self, column: "labels").decode([String: String].self),
      createdAt: try row.decode(Date.self, column: "create_time"))
  }

  /// A timestamptz literal for `micros` microseconds since the Unix epoch, exactly (a Double of
  /// seconds would round the last microsecond at today's magnitudes).
  static func timestampText(micros: Int64) -> String {
    let (seconds, fraction) = (micros.floorDivided(by: 1_000_000), micros.floorModulo(1_000_000))
    let (days, secondOfDay) = (seconds.floorDivided(by: 86_400), seconds.floorModulo(86_400))
    let (year, month, day) = civil(fromDays: days)
    func pad(_ value: Int64, _ width: Int) -> String {
      let digits = String(value)
      return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
    return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2)) \(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay % 3600 / 60, 2)):"
      + "\(pad(secondOfDay % 60, 2)).\(pad(fraction, 6))+00"
  }

  /// Howard Hinnant's civil_from_days: the proleptic Gregorian date of a day count since 1970-01-01.
  static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let mp = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
  }
}

extension Int64 {
  fileprivate func floorDivided(by divisor: Int64) -> Int64 {
    let quotient = self / divisor
    return (self % divisor != 0 && (self < 0) != (divisor < 0)) ? quotient - 1 : quotient
  }

  fileprivate func floorModulo(_ divisor: Int64) -> Int64 { self - floorDivided(by: divisor) * divisor }
}

extension Optional {
  fileprivate func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
    guard let value = self else { return nil }
    return try await transform(value)
  }
}

extension UUID {
  /// ffffffff-ffff-ffff-ffff-ffffffffffff, which sorts after every other.
  static let maxBytes: uuid_t = (
    255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255
  )
}
