import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One maas-quota process, the release build, against the bench cluster: it migrates the
/// `quota` schema as the owner, serves as the app role on a free loopback port, and logs (at
/// warning and above) to a file, shown when it fails.
struct QuotaServer {
  let pid: pid_t
  let port: Int
  let logPath: String

  /// Starts `executable` and waits (up to a minute: the migration runs first) for its
  /// `listening on HOST:PORT` line.
  /// - Parameter poolSize: `MAAS_QUOTA_DATABASE_POOL_SIZE`.
  static func start(executable: String, cluster: BenchCluster, poolSize: Int, logPath: String) throws -> QuotaServer {
    guard FileManager.default.isExecutableFile(atPath: executable) else {
      throw BenchError("\(executable) not found: build it first (make bench-quota does)")
    }
    // Only the `listening on` line goes to stdout; a file, not a pipe, so that nothing can block.
    let stdoutPath = FileManager.default.temporaryDirectory.appendingPathComponent("quota-bench-maas-quota-\(getpid()).stdout").path
    defer { try? FileManager.default.removeItem(atPath: stdoutPath) }
    let environment = [
      "MAAS_QUOTA_DATABASE_URL": cluster.appURL,
      "MAAS_QUOTA_MIGRATION_DATABASE_URL": cluster.ownerURL,
      "MAAS_QUOTA_HOST": "127.0.0.1",
      "MAAS_QUOTA_PORT": "0",
      "MAAS_QUOTA_LOG_LEVEL": "warning",
      "MAAS_QUOTA_DATABASE_POOL_SIZE": String(poolSize),
    ]
    note("starting \(executable)")
    let pid = try spawn(executable, [], environment: environment, stdout: stdoutPath, stderr: logPath)

    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(60)
    while clock.now < deadline {
      let printed = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
      if let line = printed.split(separator: "\n").first(where: { $0.hasPrefix("listening on ") }) {
        guard let port = line.split(separator: ":").last.flatMap({ Int($0) }) else {
          kill(pid, SIGKILL)
          _ = try? waitForExit(pid, executable: executable)
          throw BenchError("maas-quota printed an unexpected line: \(line)")
        }
        note("maas-quota (pid \(pid)) listening on 127.0.0.1:\(port); its log: \(logPath)")
        return QuotaServer(pid: pid, port: port, logPath: logPath)
      }
      if let status = exitStatusIfExited(pid) {
        throw BenchError("maas-quota exited with \(status) before listening:\n\(Self.tail(logPath))")
      }
      usleep(50_000)
    }
    kill(pid, SIGKILL)
    _ = try? waitForExit(pid, executable: executable)
    throw BenchError("maas-quota did not report a port within 60 s:\n\(Self.tail(logPath))")
  }

  /// SIGTERM, then up to 30 s for the drain; SIGKILL after that. Never throws: it runs on the
  /// way out of failed runs too.
  func stop() {
    if let status = exitStatusIfExited(self.pid) {
      note("maas-quota had already exited, with \(status):\n\(Self.tail(self.logPath))")
      return
    }
    kill(self.pid, SIGTERM)
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(30)
    while clock.now < deadline {
      if let status = exitStatusIfExited(self.pid) {
        if status == 0 {
          note("maas-quota drained and exited")
        } else {
          note("maas-quota exited with \(status) after SIGTERM:\n\(Self.tail(self.logPath))")
        }
        return
      }
      usleep(50_000)
    }
    note("maas-quota did not exit within 30 s of SIGTERM; killing it")
    kill(self.pid, SIGKILL)
    _ = try? waitForExit(self.pid, executable: "maas-quota")
  }

  /// The last lines of the service's log.
  static func tail(_ path: String, lines: Int = 20) -> String {
    let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
  }
}
