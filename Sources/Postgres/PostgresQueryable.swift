/// Something statements run on: a connection, a transaction, or a pool (which takes a connection
/// for each statement). Storage code written against this runs inside or outside a transaction
/// unchanged.
///
/// SQL takes its values as parameters (`$1`, `$2`, ...), never spliced into its text.
public protocol PostgresQueryable: Sendable {
  /// Runs one statement and returns its rows (none for a statement that returns none).
  ///
  /// - Parameters:
  ///   - sql: one statement, with `$1`... for its parameters.
  ///   - parameters: bound in order; nil is SQL NULL.
  /// - Throws: `PostgresError`: `.query` when the server rejects the statement (see `sqlState`,
  ///   `constraint`), `.timeout` when it runs past the statement timeout (57014), `.connection`
  ///   when the connection fails (a write's outcome is then unknown), `.cancelled` when the
  ///   calling task is cancelled, `.encoding` when a parameter cannot be sent; from a pool also
  ///   `.poolExhausted` and `.poolClosed`; from a finished transaction `.invalidUse`.
  func query(_ sql: String, _ parameters: [(any PostgresEncodable)?]) async throws -> PostgresRows

  /// Runs one statement and returns how many rows it inserted, updated or deleted.
  ///
  /// - Throws: as `query(_:_:)`.
  func execute(_ sql: String, _ parameters: [(any PostgresEncodable)?]) async throws -> Int
}

extension PostgresQueryable {
  /// Runs one statement without parameters.
  public func query(_ sql: String) async throws -> PostgresRows {
    try await self.query(sql, [])
  }

  /// Runs one statement without parameters and returns the affected row count.
  public func execute(_ sql: String) async throws -> Int {
    try await self.execute(sql, [])
  }
}
