import GRPCCore
import MaaSRuntime
import Logging

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
    default:
      return EdgeStatus.rpcError(for: error, database: "scheduler", method: method, logger: logger)
    }
  }
}
