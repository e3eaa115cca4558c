import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a finished command printed.
public struct CommandOutput {
  public var status: Int32
  public var stdout: String
  public var stderr: String
}

/// Runs a command to completion; throws when it exits with anything but 0 and `check` is set.
/// Output goes to temporary files rather than pipes: the cluster script starts a server that
/// outlives it, and pgbench -i writes a lot to stderr, so nothing here can wait for a descendant
/// to close a pipe, or block on a full one.
@discardableResult
public func runCommand(_ executable: String, _ arguments: [String], check: Bool = true) throws -> CommandOutput {
  let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(benchName)-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  defer { try? FileManager.default.removeItem(at: directory) }
  let stdoutPath = directory.appendingPathComponent("stdout").path
  let stderrPath = directory.appendingPathComponent("stderr").path

  let pid = try spawn(executable, arguments, stdout: stdoutPath, stderr: stderrPath)
  let status = try waitForExit(pid, executable: executable)
  let output = CommandOutput(
    status: status,
    stdout: (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "",
    stderr: (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
  )
  if check, output.status != 0 {
    let command = ([executable] + arguments).joined(separator: " ")
    throw BenchError("\(command) exited with \(output.status):\n\(output.stderr)\(output.stdout)")
  }
  return output
}

/// posix_spawn with an empty signal mask and default signal handlers, stdin from /dev/null and
/// stdout and stderr to the files named; returns the child's pid. `environment` entries are added
/// to (or replace those of) this process's environment.
///
/// Not Foundation's Process: it spawns with the calling thread's signal mask, and Swift's
/// cooperative threads block nearly every signal. pgbench ends a `-T` run on SIGALRM and the
/// services drain on SIGTERM; with those blocked, neither would ever stop.
public func spawn(
  _ executable: String, _ arguments: [String], environment: [String: String] = [:], stdout: String, stderr: String
) throws -> pid_t {
  var actions = posix_spawn_file_actions_t()
  posix_spawn_file_actions_init(&actions)
  defer { posix_spawn_file_actions_destroy(&actions) }
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
  posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
  posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)

  var attributes = posix_spawnattr_t()
  posix_spawnattr_init(&attributes)
  defer { posix_spawnattr_destroy(&attributes) }
  var noSignals = sigset_t()
  sigemptyset(&noSignals)
  var allSignals = sigset_t()
  sigfillset(&allSignals)
  posix_spawnattr_setsigmask(&attributes, &noSignals)
  posix_spawnattr_setsigdefault(&attributes, &allSignals)
  posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

  var merged = ProcessInfo.processInfo.environment
  for (name, value) in environment { merged[name] = value }
  let envp: [UnsafeMutablePointer<CChar>?] = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
  defer { envp.forEach { free($0) } }
  let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
  defer { argv.forEach { free($0) } }
  var pid: pid_t = 0
  let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
  guard spawned == 0 else { throw BenchError("could not start \(executable): \(String(cString: strerror(spawned)))") }
  return pid
}

/// waitpid until `pid` exits; its exit status (128 + n when killed by signal n).
public func waitForExit(_ pid: pid_t, executable: String) throws -> Int32 {
  var status: Int32 = 0
  while waitpid(pid, &status, 0) < 0 {
    guard errno == EINTR else { throw BenchError("waitpid for \(executable) failed: errno \(errno)") }
  }
  return exitStatus(status)
}

/// The exit status of `pid` if it has exited, without waiting.
public func exitStatusIfExited(_ pid: pid_t) -> Int32? {
  var status: Int32 = 0
  return waitpid(pid, &status, WNOHANG) == pid ? exitStatus(status) : nil
}

private func exitStatus(_ status: Int32) -> Int32 {
  let signal = status & 0x7f
  return signal == 0 ? (status >> 8) & 0xff : 128 + signal
}

/// A loopback port nobody listens on right now (the kernel's pick for port 0). Another process
/// could take it before the cluster does; the cluster's start then fails loudly.
public func freeLoopbackPort() throws -> Int {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  guard fd >= 0 else { throw BenchError("socket() failed: errno \(errno)") }
  defer { close(fd) }
  var address = sockaddr_in()
  address.sin_family = sa_family_t(AF_INET)
  address.sin_port = 0
  address.sin_addr.s_addr = inet_addr("127.0.0.1")
  var length = socklen_t(MemoryLayout<sockaddr_in>.size)
  let bound = withUnsafeMutablePointer(to: &address) { pointer in
    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
      bind(fd, generic, length) == 0 && getsockname(fd, generic, &length) == 0
    }
  }
  guard bound else { throw BenchError("could not bind a loopback port: errno \(errno)") }
  return Int(UInt16(bigEndian: address.sin_port))
}
