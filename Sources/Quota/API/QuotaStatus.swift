import GRPCCore
import Logging
import Postgres

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
    case let error as PostgresError:
      // Details stay in the log: a client learns what to do (retry or not), not our SQL.
      logger.error("database error", metadata: ["method": "\(method)", "error": "\(error)"])
      switch error.kind {
      case .connection, .poolExhausted, .poolClosed:
        return RPCError(code: .unavailable, message: "the quota database is unavailable; retry with the same idempotency key")
      case .timeout:
        return RPCError(code: .deadlineExceeded, message: "the quota database did not answer in time; retry with the same idempotency key")
      case .cancelled:
        return RPCError(code: .cancelled, message: "the call was cancelled")
      default:
        return RPCError(code: .internalError, message: "internal error")
      }
    case let error as RPCError:
      return error
    case let error as BillingError:
      logger.error("billing error", metadata: ["method": "\(method)", "error": "\(error)"])
      return RPCError(code: .outOfRange, message: "the report's amounts do not fit in 64-bit micro-units: \(error)")
    default:
      logger.error("unexpected error", metadata: ["method": "\(method)", "error": "\(error)"])
      return RPCError(code: .internalError, message: "internal error")
    }
  }
}
