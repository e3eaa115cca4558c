import BenchSupport

/// The three services (`maas-quota`, `maas-registry`, `maas-gateway`, each from the same
/// directory), started in dependency order and stopped in the reverse order, so the gateway
/// drains its forwarded calls while the services behind it still answer.
final class ServiceSuite {
  private(set) var started: [ServiceProcess] = []

  /// Starts `directory/name` with its `MAAS_<SVC>_*` settings (`prefix`) and `extra` ones,
  /// logging to `logDirectory/gateway-<logName or name>.log`.
  func start(
    _ name: String, prefix: String, directory: String, cluster: BenchCluster, poolSize: Int, extra: [String: String] = [:],
    logDirectory: String, logName: String? = nil
  ) throws -> ServiceProcess {
    let service = try ServiceProcess.start(
      name, executable: directory + "/" + name, prefix: prefix, cluster: cluster, poolSize: poolSize, extra: extra,
      logPath: logDirectory + "/gateway-\(logName ?? name).log")
    self.started.append(service)
    return service
  }

  func stopAll() {
    for service in self.started.reversed() { service.stop() }
    self.started = []
  }
}
