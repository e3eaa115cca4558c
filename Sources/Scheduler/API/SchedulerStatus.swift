import GRPCCore
import MaaSRuntime
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
      return EdgeStatus.rpcError(for: error, database: "scheduler", retryHint: "retry", method: method, logger: logger)
    case let error as RPCError:
      return error
    default:
      return EdgeStatus.unexpected(error, method: method, logger: logger)
    }
  }
}
