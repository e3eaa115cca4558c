import GRPCCore
import Logging
import Postgres

/// How the service's errors become gRPC statuses: the one place that knows both.
enum SchedulerStatus {
  static func rpcError(for error: any Error, method: String, logger: Logger) -> RPCError {
    switch error {
    case let error as SchedulerError:
      let code: RPCError.Code =
        switch error.category {
        case .invalidArgument: .invalidArgument
        case .notFound: .notFound
        case .alreadyExists: .alreadyExists
        case .failedPrecondition: .failedPrecondition
        case .resourceExhausted: .resourceExhausted
        case .unavailable: .unavailable
        case .aborted: .aborted
        }
      if code == .unavailable {
        logger.warning("quota service unavailable", metadata: ["method": "\(method)", "error": "\(error)"])
      }
      return RPCError(code: code, message: error.description)
    case let error as PostgresError:
      logger.error("database error", metadata: ["method": "\(method)", "error": "\(error)"])
      switch error.kind {
      case .connection, .poolExhausted, .poolClosed:
        return RPCError(code: .unavailable, message: "the scheduler database is unavailable; retry")
      case .timeout:
        return RPCError(code: .deadlineExceeded, message: "the scheduler database did not answer in time; retry")
      case .cancelled:
        return RPCError(code: .cancelled, message: "the call was cancelled")
      default:
        return RPCError(code: .internalError, message: "internal error")
      }
    case let error as RPCError:
      return error
    default:
      logger.error("unexpected error", metadata: ["method": "\(method)", "error": "\(error)"])
      return RPCError(code: .internalError, message: "internal error")
    }
  }
}
