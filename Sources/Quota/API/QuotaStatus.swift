import GRPCCore
import MaaSRuntime
import Logging

/// How the service's errors become gRPC statuses: the one place that knows both.
enum QuotaStatus {
  static func rpcError(for error: any Error, method: String, logger: Logger) -> RPCError {
    switch error {
    case let error as QuotaError:
      let code: RPCError.Code =
        switch error.category {
        case .invalidArgument: .invalidArgument
        case .resourceExhausted: .resourceExhausted
        case .failedPrecondition: .failedPrecondition
        case .notFound: .notFound
        }
      return RPCError(code: code, message: error.description)
    case let error as BillingError:
      logger.error("billing error", metadata: ["method": "\(method)", "error": "\(error)"])
      return RPCError(code: .outOfRange, message: "the report's amounts do not fit in 64-bit micro-units: \(error)")
    default:
      return EdgeStatus.rpcError(
        for: error, database: "quota", retryHint: "retry with the same idempotency key", method: method, logger: logger)
    }
  }
}
