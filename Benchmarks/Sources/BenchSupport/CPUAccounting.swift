public import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where a cell's CPU went: the CPU time each process (or group of processes) used during the
/// cell, read from /proc before and after it. On two shared cores this answers what limits a cell
/// better than a profiler would: which process saturates, and what one operation costs in each.
///
/// Groups: this bench process ("bench": the callers and their gRPC client), each service, and
/// Postgres ("postgres": the postmaster, its live children, and the children it has reaped, so a
/// backend that ended during the cell still counts); optionally this process's reaped children
/// under a name of the bench's (pgbench, when it is the only command run during a cell); and,
/// within Postgres, the backends serving each service ("pg:<service>", from `backends`), so that
/// the database's share can be told apart between services.
public struct CPUAccounting {
  public struct Snapshot {
    /// Clock ticks per group.
    var ticks: [String: Int64]
    /// The machine's busy and total ticks over every core (/proc/stat's first line).
    var machineBusy: Int64
    var machineTotal: Int64
    var instant: ContinuousClock.Instant
  }

  let services: [(name: String, pid: pid_t)]
  let postmaster: pid_t
  let reapedChildrenGroup: String?
  /// Backend pid -> the service it serves (`pg:<service>`), read before each cell.
  public var backends: [Int32: String] = [:]
  static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

  /// - Parameter reapedChildrenGroup: the group this process's reaped children count in, if any.
  public init(services: [(name: String, pid: pid_t)], postmaster: pid_t, reapedChildrenGroup: String? = nil) {
    self.services = services
    self.postmaster = postmaster
    self.reapedChildrenGroup = reapedChildrenGroup
  }

  public func snapshot() -> Snapshot {
    var ticks: [String: Int64] = [:]
    ticks["bench"] = Self.stat("self").map { $0.utime + $0.stime } ?? 0
    // Processes of one name (two replicas of a service) count together.
    for service in self.services {
      ticks[service.name, default: 0] += Self.stat(String(service.pid)).map { $0.utime + $0.stime } ?? 0
    }
    let postgres = self.postgresTicks()
    ticks["postgres"] = postgres.ticks
    for (group, value) in postgres.byService { ticks[group] = value }
    for group in Set(self.backends.values) where ticks[group] == nil { ticks[group] = 0 }
    if let group = self.reapedChildrenGroup {
      var children = rusage()
      getrusage(RUSAGE_CHILDREN.rawValue, &children)
      ticks[group] = Int64((Self.seconds(children.ru_utime) + Self.seconds(children.ru_stime)) * Self.ticksPerSecond)
    }
    let (busy, total) = Self.machine()
    return Snapshot(ticks: ticks, machineBusy: busy, machineTotal: total, instant: ContinuousClock().now)
  }

  /// The postmaster's CPU, its reaped children's, and its live children's, and how many of those
  /// there are. A backend reaped while the children are being read would be counted twice or not
  /// at all, so the reading is repeated until the postmaster's reaped total is the same before
  /// and after it.
  public func postgresTicks() -> (ticks: Int64, children: Int, byService: [String: Int64]) {
    var result: (ticks: Int64, children: Int, byService: [String: Int64]) = (0, 0, [:])
    for _ in 0..<10 {
      guard let own = Self.stat(String(self.postmaster)) else { return (0, 0, [:]) }
      var ticks = own.utime + own.stime + own.cutime + own.cstime
      var children = 0
      var byService: [String: Int64] = [:]
      for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where entry.first?.isNumber == true {
        if let stat = Self.stat(entry), stat.ppid == self.postmaster {
          ticks += stat.utime + stat.stime
          children += 1
          if let pid = Int32(entry), let group = self.backends[pid] { byService[group, default: 0] += stat.utime + stat.stime }
        }
      }
      result = (ticks, children, byService)
      if let again = Self.stat(String(self.postmaster)), again.cutime + again.cstime == own.cutime + own.cstime { break }
    }
    return result
  }

  /// Waits (up to two seconds) until the postmaster has no more than `count` children: after a
  /// pgbench run, until its backends have exited and been reaped, so that their CPU is counted
  /// in the cell rather than lost with them.
  public func waitForPostgresChildren(atMost count: Int) {
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(2)
    while self.postgresTicks().children > count, clock.now < deadline { usleep(10_000) }
  }

  /// Cores each group used on average between `before` and `after` (1.0 = one core all the
  /// time), and the machine's busy share of all its cores.
  public static func usage(from before: Snapshot, to after: Snapshot) -> CPUUsage {
    let seconds = before.instant.duration(to: after.instant).seconds
    var cores: [String: Double] = [:]
    for group in Set(before.ticks.keys).union(after.ticks.keys) {
      let used = Double((after.ticks[group] ?? 0) - (before.ticks[group] ?? 0)) / Self.ticksPerSecond
      cores[group] = seconds > 0 ? max(0, used) / seconds : 0
    }
    let total = after.machineTotal - before.machineTotal
    let busy = total > 0 ? Double(after.machineBusy - before.machineBusy) / Double(total) : 0
    // What the machine's busy cores did beyond the groups: other work on the shared machine (a
    // build, another benchmark), which the cell competed with. (The pg: groups are part of
    // "postgres", not beside it.)
    let machineCores = Double(ProcessInfo.processInfo.activeProcessorCount)
    cores["other"] = max(0, busy * machineCores - cores.filter { !$0.key.hasPrefix("pg:") }.values.reduce(0, +))
    return CPUUsage(cores: cores, machineBusyShare: busy, seconds: seconds)
  }

  private struct ProcessStat {
    var ppid: Int32
    var utime: Int64
    var stime: Int64
    var cutime: Int64
    var cstime: Int64
  }

  /// /proc/<pid>/stat; the command name (field 2) may hold spaces and parentheses, so fields are
  /// counted from the last ')'.
  private static func stat(_ pid: String) -> ProcessStat? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = text.lastIndex(of: ")")
    else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    // fields[0] is field 3 (state): ppid is field 4, utime..cstime fields 14 to 17.
    guard fields.count > 14, let ppid = Int32(fields[1]), let utime = Int64(fields[11]), let stime = Int64(fields[12]),
      let cutime = Int64(fields[13]), let cstime = Int64(fields[14])
    else { return nil }
    return ProcessStat(ppid: ppid, utime: utime, stime: stime, cutime: cutime, cstime: cstime)
  }

  private static func machine() -> (busy: Int64, total: Int64) {
    guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
      let line = text.split(separator: "\n").first, line.hasPrefix("cpu ")
    else { return (0, 0) }
    let values = line.split(separator: " ").dropFirst().compactMap { Int64($0) }
    guard values.count >= 5 else { return (0, 0) }
    // user nice system idle iowait irq softirq steal ...; idle and iowait are not busy.
    let total = values.prefix(8).reduce(0, +)
    return (total - values[3] - values[4], total)
  }

  private static func seconds(_ value: timeval) -> Double {
    Double(value.tv_sec) + Double(value.tv_usec) / 1e6
  }
}

/// One cell's CPU: cores used per group, and the machine's busy share.
public struct CPUUsage: Encodable, Sendable {
  public var cores: [String: Double]
  public var machineBusyShare: Double
  public var seconds: Double

  /// CPU microseconds per operation in each group, given the cell's operations per second.
  public func microsecondsPerOperation(_ perSecond: Double) -> [String: Double] {
    guard perSecond > 0 else { return [:] }
    return self.cores.filter { $0.key != "other" }.mapValues { $0 / perSecond * 1e6 }
  }

  enum CodingKeys: String, CodingKey {
    case cores
    case machineBusyShare = "machine_busy_share"
  }
}

extension CPUAccounting {
  /// `measureCallers`, with the CPU every process used over the measured phase (the warm-up
  /// left out).
  public func measureCallers(
    cell: String, concurrency: Int, seconds: Int, warmUpSeconds: Int, call: @escaping Call
  ) async -> (callers: CallerCell, cpu: CPUUsage) {
    var usage: CPUUsage?
    let measured = await BenchSupport.measureCallers(
      cell: cell, concurrency: concurrency, seconds: seconds, warmUpSeconds: warmUpSeconds,
      aroundMeasured: { phase in
        let before = self.snapshot()
        let tally = await phase()
        usage = Self.usage(from: before, to: self.snapshot())
        return tally
      },
      call: call)
    return (measured, usage!)
  }
}

extension CPUAccounting {
  /// The same accounting with one more process counted in `group`: a load generator this bench
  /// started for one cell (in "bench", beside this process, which only waits for it then).
  public func counting(_ pid: pid_t, in group: String) -> CPUAccounting {
    var copy = CPUAccounting(services: self.services + [(group, pid)], postmaster: self.postmaster, reapedChildrenGroup: self.reapedChildrenGroup)
    copy.backends = self.backends
    return copy
  }
}
