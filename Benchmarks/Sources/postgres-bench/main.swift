// The Swift Postgres client (module Postgres) against pgbench, side by side in one run, on a
// private cluster this program starts and stops:
//
//   select  SELECT abalance FROM pgbench_accounts WHERE aid = $1   (pgbench -S, select-only)
//   update  UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = $1
//           (pgbench -f with that one statement)
//
// at 1, 8 and 32 clients, random aid in 1...100000*scale, both peers as the same role over
// 127.0.0.1. pgbench is the limit: C, libpq, a thread per client. The headline ratio is Swift
// select/s over pgbench select-only at 32 clients (goal at least 0.8).
//
// Usage (from the repository root, which `make bench-postgres` is):
//   postgres-bench run [--seconds S] [--warm-up S] [--scale N] [--json PATH]
//   postgres-bench load --url URL [--workload select|update] [--clients N] [--seconds S] [--scale N]
//     only the Swift side, against a cluster already set up (`run` leaves one in
//     .run/bench-postgres): for profiling the client (perf record, perf stat, strace -c)
import BenchSupport
import Foundation
import Logging

let clientCounts = [1, 8, 32]
let goal = 0.8

struct Options: RunOptions {
  var seconds = 5
  var warmUpSeconds = 1
  var scale = 10
  var jsonPath: String?
}

/// Both peers at one (workload, clients), and the Swift / pgbench throughput ratio.
struct Cell: Encodable {
  var pgbench: BenchMeasurement
  var swift: BenchMeasurement
  var ratio: Double { self.pgbench.perSecond > 0 ? self.swift.perSecond / self.pgbench.perSecond : 0 }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: ReportKey.self)
    for (key, measurement) in [("pgbench", self.pgbench), ("swift", self.swift)] {
      var peer = container.nestedContainer(keyedBy: ReportKey.self, forKey: ReportKey(key))
      try measurement.encode(into: &peer, rateKey: "ops_per_s", countKey: "operations")
    }
    try container.encode(self.ratio, forKey: "ratio")
  }
}

struct Report: Encodable {
  /// Swift select/s at 32 clients / pgbench select-only at 32 clients.
  var ratio: Double
  var goal: Double
  var updateRatioAt32: Double
  var date: String
  var secondsPerCell: Int
  var warmUpSeconds: Int
  var scale: Int
  var pgbenchVersion: String
  var clients: [Int]
  /// workload -> clients -> cell.
  var results: [String: [String: Cell]]

  enum CodingKeys: String, CodingKey {
    case ratio, goal, date, scale, clients, results
    case updateRatioAt32 = "update_ratio_at_32"
    case secondsPerCell = "seconds_per_cell"
    case warmUpSeconds = "warm_up_seconds"
    case pgbenchVersion = "pgbench_version"
  }
}

func run(_ options: Options) async throws {
  var logger = Logger(label: "postgres-bench")
  logger.logLevel = .warning
  let cluster = try BenchCluster.start()
  defer { cluster.stop() }
  try cluster.initialisePgbench(scale: options.scale)

  let pgbench = try Pgbench(url: cluster.ownerURL)
  defer { pgbench.removeScratch() }
  let swift = SwiftLoad(url: cluster.ownerURL, accounts: Int32(100_000 * options.scale), logger: logger)

  var results: [String: [String: Cell]] = [:]
  var order = 0
  for clients in clientCounts {
    for workload in Workload.allCases {
      // The peer that goes first alternates from cell to cell, so that drift in the machine's
      // load (and the updates' growing dead tuples) does not always favour the same one.
      func measurePgbench() throws -> BenchMeasurement {
        note("pgbench \(workload.rawValue), \(clients) clients")
        return try pgbench.measure(workload, clients: clients, seconds: options.seconds, warmUpSeconds: options.warmUpSeconds)
      }
      func measureSwift() async throws -> BenchMeasurement {
        note("Swift \(workload.rawValue), \(clients) clients")
        return try await swift.measure(workload, clients: clients, seconds: options.seconds, warmUpSeconds: options.warmUpSeconds)
      }
      let cell: Cell
      if order % 2 == 0 {
        let first = try measurePgbench()
        cell = Cell(pgbench: first, swift: try await measureSwift())
      } else {
        let first = try await measureSwift()
        cell = Cell(pgbench: try measurePgbench(), swift: first)
      }
      order += 1
      results[workload.rawValue, default: [:]][String(clients)] = cell
    }
  }

  let selectAt32 = results[Workload.select.rawValue]!["32"]!
  let updateAt32 = results[Workload.update.rawValue]!["32"]!
  printTable(results, options: options)
  print("")
  print(goalLine(
    "ratio (Swift select/s at 32 / pgbench select-only at 32)", format(selectAt32.ratio, 2), goal: ">= \(format(goal, 1))",
    met: selectAt32.ratio >= goal))
  print("update ratio at 32 (Swift / pgbench single-row update): \(format(updateAt32.ratio, 2))")

  if let jsonPath = options.jsonPath {
    let report = Report(
      ratio: selectAt32.ratio,
      goal: goal,
      updateRatioAt32: updateAt32.ratio,
      date: ISO8601DateFormatter().string(from: Date()),
      secondsPerCell: options.seconds,
      warmUpSeconds: options.warmUpSeconds,
      scale: options.scale,
      pgbenchVersion: PgbenchRunner.version,
      clients: clientCounts,
      results: results
    )
    try writeJSON(report, to: jsonPath)
    print("wrote \(jsonPath)")
  }
}

func printTable(_ results: [String: [String: Cell]], options: Options) {
  print("Postgres: Swift PostgresPool vs pgbench, \(options.seconds) s per cell after a \(options.warmUpSeconds) s warm-up,"
    + " scale \(options.scale) (\(100_000 * options.scale) accounts), one statement per transaction, same role over 127.0.0.1")
  print("")
  printTableHeader(["clients", "workload", "peer", "ops/s", "p50 (ms)", "p99 (ms)", "Swift / pgbench"], text: ["workload", "peer"])
  for clients in clientCounts {
    for workload in Workload.allCases {
      guard let cell = results[workload.rawValue]?[String(clients)] else { continue }
      for peer in Peer.allCases {
        let m = peer == .pgbench ? cell.pgbench : cell.swift
        let ratio = peer == .pgbench ? 1.0 : cell.ratio
        let errors = m.errors > 0 ? " (\(m.errors) errors)" : ""
        printTableRow([String(clients), workload.label, peer.label, format(m.perSecond) + errors] + m.latencyCells + [format(ratio, 2)])
      }
    }
  }
}

// MARK: - Entry

func parseRun(_ arguments: ArraySlice<String>) throws -> Options {
  try Options().parsed(arguments) { flag, flags, options in
    switch flag {
    case "--scale": options.scale = max(1, try flags.wholeNumber(after: flag))
    default: return false
    }
    return true
  }
}

/// `load`: the Swift side alone, for a profiler.
func load(_ arguments: ArraySlice<String>) async throws {
  var url: String?
  var workload = Workload.select
  var clients = 32
  var seconds = 10
  var scale = 10
  try readValueFlags(arguments) { flag, value in
    let positive = positiveNumber(value)
    switch flag {
    case "--url": url = value
    case "--workload" where Workload(rawValue: value) != nil: workload = Workload(rawValue: value)!
    case "--clients" where positive != nil: clients = positive!
    case "--seconds" where positive != nil: seconds = positive!
    case "--scale" where positive != nil: scale = positive!
    default: return false
    }
    return true
  }
  guard let url else { throw BenchError("load needs --url (scripts/postgres url --dir .run/bench-postgres --role owner)") }
  var logger = Logger(label: "postgres-bench")
  logger.logLevel = .warning
  let swift = SwiftLoad(url: url, accounts: Int32(100_000 * scale), logger: logger)
  let m = try await swift.measure(workload, clients: clients, seconds: seconds, warmUpSeconds: 1)
  print("Swift \(workload.rawValue), \(clients) clients: \(format(m.perSecond)) ops/s, \(m.latencySummary)")
}

await runBench(
  usage: [
    "usage: postgres-bench run [--seconds S] [--warm-up S] [--scale N] [--json PATH]",
    "       postgres-bench load --url URL [--workload select|update] [--clients N] [--seconds S] [--scale N]",
  ],
  commands: ["run": { try await run(try parseRun($0)) }, "load": load])
