import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts

extension ServiceCommandLine {
  /// `maas-<service> health [--target HOST:PORT] [--service NAME] [--timeout SECONDS]`: asks a
  /// server's `grpc.health.v1.Health/Check`, by default this binary's own server on this host
  /// (the port from `<PREFIX>_PORT`, else the service's), for the whole server (""). Prints the
  /// status; exit 0 when SERVING, 1 otherwise, 2 on bad usage.
  ///
  /// Kubernetes probes with its built-in `grpc:` check; this is for what has no gRPC client of
  /// its own: a container image's HEALTHCHECK, and the smoke test after a rollout
  /// (`kubectl exec ... -- maas-<service> health`).
  static func health<Settings>(
    _ service: ServiceDefinition<Settings>,
    arguments: [String],
    environment: [String: String]
  ) async -> Int32 {
    var target: String?
    var name = ""
    var timeout: Duration = .seconds(3)
    var remaining = arguments[...]
    while let flag = remaining.popFirst() {
      guard ["--target", "--service", "--timeout"].contains(flag) else {
        return self.healthUsage(service.program, "unknown option \(flag)")
      }
      guard let value = remaining.popFirst() else {
        return self.healthUsage(service.program, "\(flag) needs a value")
      }
      switch flag {
      case "--target": target = value
      case "--service": name = value
      case "--timeout":
        guard let seconds = Double(value), seconds > 0, seconds <= 300 else {
          return self.healthUsage(service.program, "--timeout takes seconds, more than 0 and at most 300")
        }
        timeout = .milliseconds(Int64(seconds * 1000))
      default: break
      }
    }
    if target == nil {
      var reader = EnvironmentReader(environment: environment)
      let server = ServerSettings.read(prefix: service.prefix, defaults: ServerSettings(port: service.defaultPort), from: &reader)
      guard server.port != 0 else {
        return self.healthUsage(service.program, "\(service.prefix)_PORT is 0 (any free port): pass --target")
      }
      target = "\(Self.loopbackHost(for: server.host)):\(server.port)"
    }
    let (serving, status) = await self.checkHealth(target: target!, service: name, timeout: timeout)
    FileHandle.standardOutput.write(Data("\(status)\n".utf8))
    return serving ? 0 : 1
  }

  /// Asks `target`'s health service for `service` ("" for the whole server). Never throws:
  /// an unreachable server is an answer too.
  ///
  /// - Returns: whether the status is SERVING, and the status (`SERVING`, `NOT_SERVING`) or
  ///   the failed call's code and message (`unavailable: ...`).
  public static func checkHealth(target: String, service: String, timeout: Duration) async -> (serving: Bool, status: String) {
    do {
      let status = try await withGRPCClient(transport: ShimClientTransport(target: target)) { client in
        // GRPCCore's own timeout, not `CallTimeout`: a probe makes one call per process, where
        // its ~40 µs does not matter and the limit holds on the client whatever the transport.
        var options = CallOptions.defaults
        options.timeout = timeout
        let reply = try await Grpc_Health_V1_Health.Client(wrapping: client).check(
          .with { $0.service = service }, options: options)
        return reply.status
      }
      return (status == .serving, Self.statusName(status))
    } catch let error as RPCError {
      return (false, "\(error.code): \(error.message)")
    } catch {
      return (false, "\(error)")
    }
  }

  private static func statusName(_ status: Grpc_Health_V1_HealthCheckResponse.ServingStatus) -> String {
    switch status {
    case .serving: "SERVING"
    case .notServing: "NOT_SERVING"
    case .serviceUnknown: "SERVICE_UNKNOWN"
    case .unknown: "UNKNOWN"
    case .UNRECOGNIZED(let value): "UNRECOGNIZED(\(value))"
    }
  }

  /// Where to dial a server bound to `host` from the same machine: a wildcard address is not
  /// one to dial, so its loopback stands in.
  static func loopbackHost(for host: String) -> String {
    switch host {
    case "0.0.0.0", "": "127.0.0.1"
    case "::", "[::]": "[::1]"
    default: host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
    }
  }

  private static func healthUsage(_ program: String, _ problem: String) -> Int32 {
    FileHandle.standardError.write(Data(
      "\(program) health: \(problem)\nusage: \(program) health [--target HOST:PORT] [--service NAME] [--timeout SECONDS]\n".utf8))
    return configurationErrorExitStatus
  }
}
