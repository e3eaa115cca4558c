import GRPCCore
import Logging
import Postgres

/// How the gateway's errors become gRPC statuses: the one place that knows both.
enum GatewayStatus {
  static func rpcError(for error: any Error, method: String, logger: Logger) -> RPCError {
    switch error {
    case let error as GatewayError:
      let code: RPCError.Code =
        switch error {
        case .invalidRequest: .invalidArgument
        case .tenantNotFound, .apiKeyNotFound: .notFound
        case .tenantNameTaken: .alreadyExists
        }
      return RPCError(code: code, message: error.description)
    case let error as RPCError:
      // Already a status: the quota service's answer, passed through.
      return error
    case let error as PostgresError:
      // Details stay in the log: a client learns what to do (retry or not), not our SQL.
      logger.error("database error", metadata: ["method": "\(method)", "error": "\(error)"])
      switch error.kind {
      case .connection, .poolExhausted, .poolClosed:
        return RPCError(code: .unavailable, message: "the gateway database is unavailable; retry later")
      case .timeout:
        return RPCError(code: .deadlineExceeded, message: "the gateway database did not answer in time; retry later")
      case .cancelled:
        return RPCError(code: .cancelled, message: "the call was cancelled")
      default:
        return RPCError(code: .internalError, message: "internal error")
      }
    case is CancellationError:
      return RPCError(code: .cancelled, message: "the call was cancelled")
    default:
      logger.error("unexpected error", metadata: ["method": "\(method)", "error": "\(error)"])
      return RPCError(code: .internalError, message: "internal error")
    }
  }
}
