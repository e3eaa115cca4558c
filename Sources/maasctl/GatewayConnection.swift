import ArgumentParser
import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import SwiftProtobuf

/// The options every command takes: where the gateway is, who is calling, how to print.
struct ConnectionOptions: ParsableArguments {
  @Option(name: .long, help: "Gateway address HOST:PORT (env MAAS_GATEWAY).")
  var gateway: String = ProcessInfo.processInfo.environment["MAAS_GATEWAY"] ?? "127.0.0.1:50051"

  @Option(name: .long, help: "A tenant's API key or JWT (env MAAS_TOKEN).")
  var token: String?

  @Option(name: .long, help: "The admin credential (env MAAS_ADMIN_TOKEN).")
  var adminToken: String?

  @Option(name: .long, help: "table or json.")
  var output: OutputFormat = .table

  @Option(name: .long, help: "Seconds to wait for the gateway's answer (more than 0, at most 86400).")
  var timeout: Double = 10

  func validate() throws {
    // Checked here, not left to the conversion to milliseconds, which traps on nan, inf and 1e17.
    guard self.timeout.isFinite, self.timeout > 0, self.timeout <= 86_400 else {
      throw ValidationError("--timeout: must be more than 0 and at most 86400 seconds (got \(self.timeout))")
    }
  }

  /// Runs `body` with the public Gateway client and the tenant credential's metadata.
  func withGateway<T: Sendable>(
    _ body: (Maas_Gateway_V1_Gateway.Client<ShimClientTransport>, Metadata, CallOptions) async throws -> T
  ) async throws -> T {
    let metadata = try self.bearer(self.token, else: "MAAS_TOKEN", what: "a tenant credential: --token or MAAS_TOKEN")
    return try await self.withClient { client in
      try await body(Maas_Gateway_V1_Gateway.Client(wrapping: client), metadata, self.callOptions)
    }
  }

  /// Runs `body` with the Admin client and the admin credential's metadata.
  func withAdmin<T: Sendable>(
    _ body: (Maas_Gateway_V1_Admin.Client<ShimClientTransport>, Metadata, CallOptions) async throws -> T
  ) async throws -> T {
    let metadata = try self.bearer(self.adminToken, else: "MAAS_ADMIN_TOKEN", what: "the admin credential: --admin-token or MAAS_ADMIN_TOKEN")
    return try await self.withClient { client in
      try await body(Maas_Gateway_V1_Admin.Client(wrapping: client), metadata, self.callOptions)
    }
  }

  // GRPCCore's own timeout, not `CallTimeout`: one call per process, where its ~40 µs does not
  // matter and the limit holds on the client whatever the transport.
  private var callOptions: CallOptions {
    var options = CallOptions.defaults
    options.timeout = .milliseconds(Int64(self.timeout * 1000))
    return options
  }

  /// The credential from its flag, else from the environment variable `variable`.
  private func bearer(_ flag: String?, else variable: String, what: String) throws -> Metadata {
    guard let token = flag ?? ProcessInfo.processInfo.environment[variable], !token.isEmpty else {
      throw CLIError.usage("this command needs \(what)")
    }
    return ["authorization": "Bearer \(token)"]
  }

  private func withClient<T: Sendable>(_ body: (GRPCClient<ShimClientTransport>) async throws -> T) async throws -> T {
    do {
      return try await withGRPCClient(transport: ShimClientTransport(target: self.gateway)) { client in
        try await body(client)
      }
    } catch let error as RPCError {
      throw CLIError.rpc(error, gateway: self.gateway)
    }
  }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
  case table, json
}

/// What went wrong, with the exit status the command documents.
enum CLIError: Error, CustomStringConvertible {
  case usage(String)
  case rpc(RPCError, gateway: String)

  var description: String {
    switch self {
    case .usage(let message):
      return message
    case .rpc(let error, let gateway):
      switch error.code {
      case .unavailable:
        return "cannot reach the gateway at \(gateway) (UNAVAILABLE): \(error.message)"
      case .deadlineExceeded:
        return "the gateway at \(gateway) did not answer in time (DEADLINE_EXCEEDED); raise --timeout"
      default:
        return "\(Self.statusName(error.code)): \(error.message)"
      }
    }
  }

  /// The canonical gRPC name, as other tools print it: NOT_FOUND, RESOURCE_EXHAUSTED, ...
  static func statusName(_ code: RPCError.Code) -> String {
    if code == .internalError { return "INTERNAL" }
    var name = ""
    for character in String(describing: code) {
      if character.isUppercase { name += "_" }
      name += character.uppercased()
    }
    return name
  }

  var exitCode: ExitCode {
    switch self {
    case .usage: ExitCode(64)
    case .rpc(let error, _): [.unavailable, .deadlineExceeded].contains(error.code) ? ExitCode(3) : ExitCode(1)
    }
  }
}

extension AsyncParsableCommand {
  /// Runs a command body, turning failures into a one-line message on stderr and the exit status.
  func reporting(_ body: () async throws -> Void) async throws {
    do {
      try await body()
    } catch let error as CLIError {
      FileHandle.standardError.write(Data("maasctl: \(error)\n".utf8))
      throw error.exitCode
    }
  }
}
