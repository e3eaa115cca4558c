import GRPCCore
import MaaSRuntime
import Logging

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
    default:
      // An RPCError is the quota service's answer, passed through.
      return EdgeStatus.rpcError(for: error, database: "gateway", retryHint: "retry later", method: method, logger: logger)
    }
  }
}
