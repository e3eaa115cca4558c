/// One result column: its position, name and type.
public struct PostgresColumn: Sendable, Hashable {
  public let index: Int
  public let name: String
  public let dataType: PostgresDataType
}

/// The rows a statement returned, with its command tag and affected-row count.
///
/// The rows stay in libpq's own result buffer (read-only, shareable across tasks) and values are
/// decoded only when asked for, so a large result costs one allocation, not one per value.
public struct PostgresRows: Sendable, RandomAccessCollection {
  private let result: ResultHandle
  private let columnIndexes: [String: Int]

  init(result: ResultHandle) {
    self.result = result
    var indexes: [String: Int] = [:]
    // The first column of a name wins, as in SQL's own resolution of ambiguous names.
    for column in result.columns where indexes[column.name] == nil {
      indexes[column.name] = column.index
    }
    self.columnIndexes = indexes
  }

  public var columns: [PostgresColumn] { self.result.columns }
  /// The command tag: "SELECT 3", "INSERT 0 1", "UPDATE 2", ...
  public var commandTag: String { self.result.commandTag }
  /// Rows inserted, updated, deleted, selected, moved or copied; 0 for other commands.
  public var affectedRows: Int { self.result.affectedRows }

  public var startIndex: Int { 0 }
  public var endIndex: Int { self.result.rowCount }

  public subscript(position: Int) -> PostgresRow {
    precondition(position >= 0 && position < self.result.rowCount, "row \(position) out of range")
    return PostgresRow(result: self.result, columnIndexes: self.columnIndexes, index: position)
  }
}

/// One row. Decode a column by name or position into any `PostgresDecodable` type:
///
/// ```swift
/// let name = try row.decode(String.self, column: "name")
/// let deletedAt = try row.decode(Date?.self, column: "deleted_at")
/// ```
public struct PostgresRow: Sendable {
  private let result: ResultHandle
  private let columnIndexes: [String: Int]
  /// The row's position in its result.
  public let index: Int

  init(result: ResultHandle, columnIndexes: [String: Int], index: Int) {
    self.result = result
    self.columnIndexes = columnIndexes
    self.index = index
  }

  public var columns: [PostgresColumn] { self.result.columns }

  /// The value of the column with this exact name (no case folding).
  /// - Throws: `PostgresError` `.decoding` when there is no such column, or the value does not
  ///   decode as `T`.
  public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, column name: String) throws -> T {
    guard let column = self.columnIndexes[name] else {
      let known = self.result.columns.map(\.name).joined(separator: ", ")
      throw PostgresError.decoding("no column named \"\(name)\" in the result (columns: \(known))")
    }
    return try T.decode(from: self.cell(column))
  }

  /// The value of the column at this position (0-based).
  /// - Throws: `PostgresError` `.decoding` when the position is out of range, or the value does
  ///   not decode as `T`.
  public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, at column: Int) throws -> T {
    guard column >= 0, column < self.result.columns.count else {
      throw PostgresError.decoding("no column \(column): the result has \(self.result.columns.count)")
    }
    return try T.decode(from: self.cell(column))
  }

  /// The raw value of a column, for decoders of your own.
  public func cell(_ column: Int) -> PostgresCell {
    PostgresCell(result: self.result, row: self.index, column: self.result.columns[column])
  }
}

/// One value of one row, in Postgres' text format, with its column; what
/// `PostgresDecodable.decode(from:)` reads.
public struct PostgresCell: Sendable {
  private let result: ResultHandle
  public let row: Int
  public let column: PostgresColumn

  init(result: ResultHandle, row: Int, column: PostgresColumn) {
    self.result = result
    self.row = row
    self.column = column
  }

  public var dataType: PostgresDataType { self.column.dataType }
  public var isNull: Bool { self.result.isNull(row: self.row, column: self.column.index) }

  /// The value's text, or nil for NULL.
  public var text: String? {
    self.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
  }

  /// Runs `body` with the value's text bytes, or returns nil for NULL. The bytes are valid only
  /// inside `body`.
  public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
    try self.result.withValue(row: self.row, column: self.column.index, body)
  }
}
