/// An error from the Postgres client: the server's own report (SQLSTATE and its fields) or the
/// client's (connection lost, pool exhausted, a value that does not decode).
///
/// Storage code matches these by `kind` and by the SQLSTATE helpers (`isUniqueViolation`, ...),
/// never by message text, and maps them to its own domain errors; the service edge turns those
/// into RPC statuses. Nothing here knows about gRPC.
///
/// The description never contains query parameters, nor the server's `detail` (for a unique
/// violation it quotes the key). The server's `message` may quote an input it could not read
/// (22P02: invalid input syntax for type integer: "..."), so log `sqlState` and `kind` where
/// values are sensitive.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
  /// What went wrong, in the terms a caller acts on.
  public struct Kind: Hashable, Sendable, CustomStringConvertible {
    private enum Value: String {
      case connection, query, timeout, cancelled, poolExhausted, poolClosed, decoding, encoding, invalidUse
    }

    private let value: Value
    private init(_ value: Value) { self.value = value }

    /// The connection could not be made, or broke; the statement's outcome may be unknown.
    public static let connection = Kind(.connection)
    /// The server rejected the statement; `sqlState` says why.
    public static let query = Kind(.query)
    /// The statement ran past its statement timeout (SQLSTATE 57014).
    public static let timeout = Kind(.timeout)
    /// The calling task was cancelled and the statement with it.
    public static let cancelled = Kind(.cancelled)
    /// Every connection stayed busy for the whole acquire timeout.
    public static let poolExhausted = Kind(.poolExhausted)
    /// The pool was closed before or while the caller waited.
    public static let poolClosed = Kind(.poolClosed)
    /// A column's value does not fit the Swift type asked for (or is NULL for a non-optional).
    public static let decoding = Kind(.decoding)
    /// A parameter cannot be sent (for example text containing a NUL character).
    public static let encoding = Kind(.encoding)
    /// The API was used out of order (a transaction used after it finished).
    public static let invalidUse = Kind(.invalidUse)

    public var description: String { self.value.rawValue }
  }

  public var kind: Kind
  /// The primary message: the server's, or the client's own.
  public var message: String
  /// The five-character SQLSTATE, when the server reported one.
  public var sqlState: String?
  /// ERROR, FATAL, PANIC (never localised).
  public var severity: String?
  public var detail: String?
  public var hint: String?
  public var schema: String?
  public var table: String?
  public var column: String?
  public var constraint: String?
  /// The SQL text of the statement that failed (never its parameters), when there was one.
  public var statement: String?
  /// The error this one was made from, when there was one.
  public var underlying: (any Error & Sendable)?

  public init(
    kind: Kind,
    message: String,
    sqlState: String? = nil,
    severity: String? = nil,
    detail: String? = nil,
    hint: String? = nil,
    schema: String? = nil,
    table: String? = nil,
    column: String? = nil,
    constraint: String? = nil,
    statement: String? = nil,
    underlying: (any Error & Sendable)? = nil
  ) {
    self.kind = kind
    self.message = message
    self.sqlState = sqlState
    self.severity = severity
    self.detail = detail
    self.hint = hint
    self.schema = schema
    self.table = table
    self.column = column
    self.constraint = constraint
    self.statement = statement
    self.underlying = underlying
  }

  /// 23505: a unique or primary-key constraint (named in `constraint`) already holds the key.
  public var isUniqueViolation: Bool { self.sqlState == "23505" }
  /// 23503: a foreign key points at a missing row, or a referenced row is still referenced.
  public var isForeignKeyViolation: Bool { self.sqlState == "23503" }
  /// 23514: a CHECK constraint failed.
  public var isCheckViolation: Bool { self.sqlState == "23514" }
  /// 23502: NULL into a NOT NULL column.
  public var isNotNullViolation: Bool { self.sqlState == "23502" }
  /// 40001: a serializable or repeatable-read transaction lost a conflict; retrying may succeed.
  public var isSerializationFailure: Bool { self.sqlState == "40001" }
  /// 40P01: the server broke a deadlock by failing this transaction; retrying may succeed.
  public var isDeadlock: Bool { self.sqlState == "40P01" }
  /// 57014: the statement was cancelled, by its statement timeout or by a cancel request.
  public var isQueryCanceled: Bool { self.sqlState == "57014" }
  /// Whether running the whole transaction again may succeed (40001 or 40P01).
  public var isTransient: Bool { self.isSerializationFailure || self.isDeadlock }

  public var description: String {
    var text = "Postgres \(self.kind) error"
    if let sqlState { text += " \(sqlState)" }
    text += ": \(self.message)"
    if let constraint { text += " (constraint \(constraint))" }
    if let underlying, !(underlying is PostgresError) { text += " (\(underlying))" }
    return text
  }
}

extension PostgresError {
  static func decoding(_ message: String) -> PostgresError {
    PostgresError(kind: .decoding, message: message)
  }

  static func encoding(_ message: String) -> PostgresError {
    PostgresError(kind: .encoding, message: message)
  }

  static func connection(_ message: String, underlying: (any Error & Sendable)? = nil) -> PostgresError {
    PostgresError(kind: .connection, message: message, underlying: underlying)
  }
}
