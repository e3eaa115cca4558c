import Foundation
import Prometheus

#if canImport(Glibc)
import Glibc
#endif

/// The standard process metrics Prometheus's own clients export (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, `process_open_fds`, `process_start_time_seconds`), read from
/// /proc at each scrape. Where /proc is missing (not Linux) they stay 0.
final class ProcessMetrics: Sendable {
  private let cpu: MirroredCounter
  private let residentMemory: Gauge
  private let openFiles: Gauge
  private let startTime: Gauge

  private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
  private static let pageBytes = Double(sysconf(Int32(_SC_PAGESIZE)))

  init(registry: PrometheusCollectorRegistry) {
    self.cpu = MirroredCounter(
      registry.makeCounter(
        descriptor: .init(metricName: "process_cpu_seconds", unitName: "total", helpText: "User and system CPU time spent, in seconds.")))
    self.residentMemory = registry.makeGauge(descriptor: .init(metricName: "process_resident_memory", unitName: "bytes", helpText: "Resident memory size, in bytes."))
    self.openFiles = registry.makeGauge(descriptor: .init(metricName: "process_open", unitName: "fds", helpText: "Open file descriptors."))
    self.startTime = registry.makeGauge(
      descriptor: .init(
        metricName: "process_start_time", unitName: "seconds", helpText: "When the process started, in seconds since the Unix epoch."))
    if let started = Self.startSeconds() { self.startTime.set(started) }
  }

  /// Reads the figures now.
  func update() {
    if let stat = Self.stat() {
      self.cpu.follow(stat.cpuSeconds)
      self.residentMemory.set(stat.residentBytes)
    }
    if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
      // One of them is the directory listing itself.
      self.openFiles.set(Double(max(entries.count - 1, 0)))
    }
  }

  /// From /proc/self/stat: CPU seconds (utime + stime), resident bytes, and the start in clock
  /// ticks after boot.
  private static func stat() -> (cpuSeconds: Double, residentBytes: Double, startTicks: Double)? {
    guard let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
      let endOfName = text.lastIndex(of: ")")
    else { return nil }
    // Fields after "(comm)", which may itself hold spaces; the first of them is field 3 (state).
    let fields = text[text.index(after: endOfName)...].split(separator: " ")
    func field(_ number: Int) -> Double? { fields.count > number - 3 ? Double(fields[number - 3]) : nil }
    guard let utime = field(14), let stime = field(15), let start = field(22), let rss = field(24) else { return nil }
    return ((utime + stime) / Self.ticksPerSecond, rss * Self.pageBytes, start)
  }

  /// Boot time (/proc/stat's btime) plus the start in ticks after boot.
  private static func startSeconds() -> Double? {
    guard let stat = Self.stat(), let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
      let line = text.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
      let boot = Double(line.dropFirst("btime ".count))
    else { return nil }
    return boot + stat.startTicks / Self.ticksPerSecond
  }
}
