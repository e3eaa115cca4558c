import GRPCCore
import MaaSRuntime
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
      return EdgeStatus.rpcError(for: error, database: "gateway", retryHint: "retry later", method: method, logger: logger)
    case is CancellationError:
      return RPCError(code: .cancelled, message: "the call was cancelled")
    default:
      return EdgeStatus.unexpected(error, method: method, logger: logger)
    }
  }
}
