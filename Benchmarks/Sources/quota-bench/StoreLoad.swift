import BenchSupport
import Foundation
import Logging
import MaaSRuntime
import Postgres
import Quota

/// Consume through the `Quota` library's `QuotaStore` inside this process, no gRPC: the quota
/// design's own latency (group commit, its transactions, the Postgres client) with the transport
/// taken out. The store is made as maas-quota makes its own: the app role's URL, the service's
/// pool configuration (`DatabaseSettings.servicePool`, same size), the default policy and batch
/// size. It runs beside the bench's callers in this process, on the same two cores, while the
/// maas-quota process idles.
struct StoreLoad {
  let pool: PostgresPool
  let store: QuotaStore
  /// Makes this run's idempotency keys unique even against a schema that was not reset.
  let runID: String

  /// - Parameters:
  ///   - appURL: the role maas-quota serves as (row-level security applies, as in the service).
  ///   - poolSize: maas-quota's `MAAS_QUOTA_DATABASE_POOL_SIZE`.
  static func open(appURL: String, poolSize: Int, runID: String) throws -> StoreLoad {
    // Warnings (slow statements, pool trouble) to stderr, beside the bench's own notes, and
    // never into the table on stdout.
    var logger = Logger(label: "quota-bench.store") { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = .warning
    let configuration = DatabaseSettings(url: appURL, poolSize: poolSize).servicePool(applicationName: "quota-bench-store")
    let pool = try PostgresPool(configuration: configuration, logger: logger)
    let settings = QuotaSettings()
    let store = QuotaStore(pool: pool, policy: settings.policy, logger: logger, maxConsumeBatch: settings.maxConsumeBatch)
    return StoreLoad(pool: pool, store: store, runID: runID)
  }

  /// Consume (api_calls_per_day, amount 1) of `tenant` by `concurrency` callers: a warm-up, then
  /// the measured phase.
  /// - Returns: the cell and every admission both phases made.
  func measure(tenant: String, concurrency: Int, seconds: Int, warmUpSeconds: Int) async -> (ConsumeCell, Tally) {
    let store = self.store
    let runID = self.runID
    let measured = await measureCallers(
      cell: "store", concurrency: concurrency, seconds: seconds, warmUpSeconds: warmUpSeconds
    ) { phase, worker, n, _ in
      do {
        let command = try ConsumeCommand.validate(
          tenantID: tenant, resource: .apiCallsPerDay, amount: 1, idempotencyKey: "\(phase)-w\(worker)-\(n)-\(runID)"
        ).get()
        let receipt = try await store.consume(command)
        return .answered(window: Int64(receipt.windowResetTime.timeIntervalSince1970.rounded()))
      } catch QuotaError.exhausted {
        return .refused
      } catch {
        return .failed(error)
      }
    }
    return (measured.consumeCell, measured.admissions)
  }

  func close() async {
    await self.pool.close()
  }
}
