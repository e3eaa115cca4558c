import QuotaClient
import GRPCCore
import Logging
import Postgres

/// How the service's errors become gRPC statuses: the one place that knows both.
enum RegistryStatus {
  static func rpcError(for error: any Error, method: String, logger: Logger) -> RPCError {
    switch error {
    case let error as RegistryError:
      let code: RPCError.Code =
        switch error.category {
        case .invalidArgument: .invalidArgument
        case .notFound: .notFound
        case .alreadyExists: .alreadyExists
        case .failedPrecondition: .failedPrecondition
        case .resourceExhausted: .resourceExhausted
        case .unavailable: .unavailable
        }
      if code == .unavailable {
        logger.warning("quota service unavailable", metadata: ["method": "\(method)", "error": "\(error)"])
      }
      return RPCError(code: code, message: error.description)
    case let error as PostgresError:
      // Details stay in the log: a client learns what to do (retry or not), not our SQL.
      logger.error("database error", metadata: ["method": "\(method)", "error": "\(error)"])
      switch error.kind {
      case .connection, .poolExhausted, .poolClosed:
        return RPCError(code: .unavailable, message: "the registry database is unavailable; retry with the same idempotency key")
      case .timeout:
        return RPCError(code: .deadlineExceeded, message: "the registry database did not answer in time; retry with the same idempotency key")
      case .cancelled:
        return RPCError(code: .cancelled, message: "the call was cancelled")
      default:
        return RPCError(code: .internalError, message: "internal error")
      }
    case let error as QuotaGateError:
      logger.error("unexpected answer from the quota service", metadata: ["method": "\(method)", "error": "\(error)"])
      return RPCError(code: .internalError, message: "internal error")
    case let error as RPCError:
      return error
    default:
      logger.error("unexpected error", metadata: ["method": "\(method)", "error": "\(error)"])
      return RPCError(code: .internalError, message: "internal error")
    }
  }
}
