import BenchSupport
import Logging
import Postgres

/// The Swift side: `clients` tasks, each running its statement back to back through one
/// `PostgresPool` of exactly `clients` connections, as an application's request handlers would.
/// Each operation is the whole public path: check a connection out, run the statement on it (the
/// pool's statement cache prepares it on first use, as pgbench's `-M prepared` does), check the
/// result, give the connection back.
struct SwiftLoad {
  let url: String
  /// Keys are drawn from 1...accounts, like pgbench's `random(1, 100000 * :scale)`.
  let accounts: Int32
  let logger: Logger

  static func sql(_ workload: Workload) -> String {
    switch workload {
    case .select: return "SELECT abalance FROM pgbench_accounts WHERE aid = $1"
    case .update: return "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = $1"
    }
  }

  /// A fresh pool per cell (opened before the warm-up, so connecting is never timed), a warm-up
  /// that also prepares the statement on every connection, then the measured run.
  func measure(_ workload: Workload, clients: Int, seconds: Int, warmUpSeconds: Int) async throws -> BenchMeasurement {
    let configuration = PostgresConfiguration(
      url: self.url,
      applicationName: "postgres-bench",
      minConnections: clients,
      maxConnections: clients
    )
    let pool = try PostgresPool(configuration: configuration, logger: self.logger)
    let clock = ContinuousClock()
    do {
      if warmUpSeconds > 0 {
        let warmUp = await self.drive(pool, workload, clients: clients, until: clock.now + .seconds(warmUpSeconds))
        if let error = warmUp.firstError, warmUp.latencies.isEmpty {
          throw BenchError("every Swift \(workload.rawValue) failed in the warm-up: \(error)")
        }
      }
      let start = clock.now
      let run = await self.drive(pool, workload, clients: clients, until: start + .seconds(seconds))
      let elapsed = start.duration(to: clock.now)
      if let error = run.firstError {
        note("\(run.errors) Swift \(workload.rawValue) statements failed at \(clients) clients; the first: \(error)")
      }
      await pool.close()
      return BenchMeasurement(latenciesNanoseconds: run.latencies, seconds: elapsed.seconds, errors: run.errors)
    } catch {
      await pool.close()
      throw error
    }
  }

  /// `clients` callers through the shared loop; every statement a call that admits nothing.
  private func drive(_ pool: PostgresPool, _ workload: Workload, clients: Int, until end: ContinuousClock.Instant) async -> Tally {
    let sql = Self.sql(workload)
    let accounts = self.accounts
    return await driveCallers(phase: workload.rawValue, concurrency: clients, until: end) { _, _, _, random in
      let aid = Int32.random(in: 1...accounts, using: &random)
      do {
        try await Self.once(pool, workload, sql: sql, aid: aid)
        return .answered(window: nil)
      } catch {
        return .failed(error)
      }
    }
  }

  private static func once(_ pool: PostgresPool, _ workload: Workload, sql: String, aid: Int32) async throws {
    switch workload {
    case .select:
      let rows = try await pool.query(sql, [aid])
      guard rows.count == 1 else { throw BenchError("account \(aid): \(rows.count) rows") }
      _ = try rows[0].decode(Int64.self, at: 0)
    case .update:
      let updated = try await pool.execute(sql, [aid])
      guard updated == 1 else { throw BenchError("account \(aid): \(updated) rows updated") }
    }
  }
}
