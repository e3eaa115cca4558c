import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One service process (`maas-quota`, `maas-registry`, `maas-gateway`), the release build,
/// against a bench cluster: it migrates its schema as the owner, serves as the app role on a free
/// loopback port, and logs (at warning and above) to a file, shown when it fails.
public struct ServiceProcess {
  /// `maas-quota`, ...: what notes and errors call it.
  public let name: String
  public let pid: pid_t
  public let port: Int
  public let logPath: String

  public var target: String { "127.0.0.1:\(self.port)" }

  /// Starts `executable` with the service's `<prefix>_*` settings for `cluster` (`prefix`:
  /// `MAAS_QUOTA`, ...) and `extra` ones, and waits (up to a minute: the migration runs first)
  /// for its `listening on HOST:PORT` line.
  /// - Parameter poolSize: `<prefix>_DATABASE_POOL_SIZE`.
  public static func start(
    _ name: String, executable: String, prefix: String, cluster: BenchCluster, poolSize: Int,
    extra: [String: String] = [:], logPath: String
  ) throws -> ServiceProcess {
    guard FileManager.default.isExecutableFile(atPath: executable) else {
      let target = "bench-" + benchName.replacingOccurrences(of: "-bench", with: "")
      throw BenchError("\(executable) not found: build it first (make \(target) does)")
    }
    var environment = [
      "\(prefix)_DATABASE_URL": cluster.appURL,
      "\(prefix)_MIGRATION_DATABASE_URL": cluster.ownerURL,
      "\(prefix)_HOST": "127.0.0.1",
      "\(prefix)_PORT": "0",
      "\(prefix)_LOG_LEVEL": "warning",
      "\(prefix)_DATABASE_POOL_SIZE": String(poolSize),
      // As deployed (k8s config.env sets a port): every call metered, the endpoint served.
      "\(prefix)_METRICS_PORT": "0",
    ]
    environment.merge(extra) { _, new in new }
    return try Self.launch(name, executable: executable, environment: environment, logPath: logPath)
  }

  /// Starts `executable` with `arguments` and `environment` (added to this process's) and waits
  /// up to a minute for its `listening on HOST:PORT` line; its stderr goes to `logPath`.
  public static func launch(
    _ name: String, executable: String, arguments: [String] = [], environment: [String: String] = [:], logPath: String
  ) throws -> ServiceProcess {
    // Only the `listening on` line goes to stdout; a file, not a pipe, so that nothing can block.
    let stdoutPath = FileManager.default.temporaryDirectory.appendingPathComponent("\(benchName)-\(name)-\(getpid()).stdout").path
    defer { try? FileManager.default.removeItem(atPath: stdoutPath) }
    note("starting \(executable) \(arguments.joined(separator: " "))")
    let pid = try spawn(executable, arguments, environment: environment, stdout: stdoutPath, stderr: logPath)

    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(60)
    while clock.now < deadline {
      let printed = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
      if let line = printed.split(separator: "\n").first(where: { $0.hasPrefix("listening on ") }) {
        guard let port = line.split(separator: ":").last.flatMap({ Int($0) }) else {
          kill(pid, SIGKILL)
          _ = try? waitForExit(pid, executable: executable)
          throw BenchError("\(name) printed an unexpected line: \(line)")
        }
        note("\(name) (pid \(pid)) listening on 127.0.0.1:\(port); its log: \(logPath)")
        return ServiceProcess(name: name, pid: pid, port: port, logPath: logPath)
      }
      if let status = exitStatusIfExited(pid) {
        throw BenchError("\(name) exited with \(status) before listening:\n\(Self.tail(logPath))")
      }
      usleep(50_000)
    }
    kill(pid, SIGKILL)
    _ = try? waitForExit(pid, executable: executable)
    throw BenchError("\(name) did not report a port within 60 s:\n\(Self.tail(logPath))")
  }

  /// SIGTERM, then up to 30 s for the drain; SIGKILL after that. Never throws: it runs on the
  /// way out of failed runs too.
  public func stop() {
    if let status = exitStatusIfExited(self.pid) {
      note("\(self.name) had already exited, with \(status):\n\(Self.tail(self.logPath))")
      return
    }
    kill(self.pid, SIGTERM)
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(30)
    while clock.now < deadline {
      if let status = exitStatusIfExited(self.pid) {
        if status == 0 {
          note("\(self.name) drained and exited")
        } else {
          note("\(self.name) exited with \(status) after SIGTERM:\n\(Self.tail(self.logPath))")
        }
        return
      }
      usleep(50_000)
    }
    note("\(self.name) did not exit within 30 s of SIGTERM; killing it")
    kill(self.pid, SIGKILL)
    _ = try? waitForExit(self.pid, executable: self.name)
  }

  /// The last lines of the service's log.
  public static func tail(_ path: String, lines: Int = 20) -> String {
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
  }
}
