import QuotaClient
import GRPCCore
import MaaSRuntime
import Logging

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
    case let error as QuotaGateError:
      logger.error("unexpected answer from the quota service", metadata: ["method": "\(method)", "error": "\(error)"])
      return RPCError(code: .internalError, message: "internal error")
    default:
      return EdgeStatus.rpcError(
        for: error, database: "registry", retryHint: "retry with the same idempotency key", method: method, logger: logger)
    }
  }
}
