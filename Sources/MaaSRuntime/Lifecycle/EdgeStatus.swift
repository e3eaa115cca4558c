public import GRPCCore
public import Logging
public import Postgres

/// The statuses every service's gRPC edge gives for failures that are not its own domain's: a
/// database in trouble, and anything unexpected. Details go to the log only: a client learns
/// what to do (retry or not), never our SQL.
public enum EdgeStatus {
  /// Whatever a service's own domain does not claim: a database failure (below), a status
  /// already made (an upstream's answer, passed through), a cancelled call as CANCELLED, and
  /// anything else INTERNAL. Each service's edge answers its domain errors, then calls this.
  public static func rpcError(
    for error: any Error, database: String, retryHint: String = "retry", method: String, logger: Logger
  ) -> RPCError {
    switch error {
    case let error as PostgresError:
      return rpcError(for: error, database: database, retryHint: retryHint, method: method, logger: logger)
    case let error as RPCError:
      return error
    case is CancellationError:
      return RPCError(code: .cancelled, message: "the call was cancelled")
    default:
      return unexpected(error, method: method, logger: logger)
    }
  }

  /// A database failure as UNAVAILABLE (connection, pool), DEADLINE_EXCEEDED (statement
  /// timeout), CANCELLED, or INTERNAL for anything else.
  ///
  /// - Parameters:
  ///   - database: whose database, for the message ("the quota database is unavailable").
  ///   - retryHint: what a retry needs, appended to the message (e.g. "retry with the same
  ///     idempotency key").
  public static func rpcError(
    for error: PostgresError, database: String, retryHint: String = "retry", method: String, logger: Logger
  ) -> RPCError {
    logger.error("database error", metadata: ["method": "\(method)", "error": "\(error)"])
    switch error.kind {
    case .connection, .poolExhausted, .poolClosed:
      return RPCError(code: .unavailable, message: "the \(database) database is unavailable; \(retryHint)")
    case .timeout:
      return RPCError(code: .deadlineExceeded, message: "the \(database) database did not answer in time; \(retryHint)")
    case .cancelled:
      return RPCError(code: .cancelled, message: "the call was cancelled")
    default:
      return RPCError(code: .internalError, message: "internal error")
    }
  }

  /// An error no layer expected: INTERNAL, with the details in the log.
  public static func unexpected(_ error: any Error, method: String, logger: Logger) -> RPCError {
    logger.error("unexpected error", metadata: ["method": "\(method)", "error": "\(error)"])
    return RPCError(code: .internalError, message: "internal error")
  }
}
