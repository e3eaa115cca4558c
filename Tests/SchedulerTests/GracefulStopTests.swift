import Foundation
import MaaSContracts
import MaaSTesting
import Postgres
import Testing

/// What a `maas-scheduler` process keeps only in memory, written before it exits on SIGTERM.
@Suite("A maas-scheduler stopping gracefully", .serialized, .timeLimit(.minutes(5)))
struct GracefulStopTests {
  @Test("writes the quota marks of the Releases it served before it exits, however long its interval between writes")
  func writesWaitingQuotaMarks() async throws {
    let database = try await PostgresFixture.shared().createDatabase(named: "scheduler_graceful_stop")
    let (quota, quotaTarget) = try await ServerProcess.quota(databaseNamed: "scheduler_graceful_stop_quota")
    defer { quota.kill() }
    // An hour between mark writes and between quota release retries: only the stop can write it.
    var environment = schedulerEnvironment(database: database, quotaTarget: quotaTarget)
    environment["MAAS_SCHEDULER_QUOTA_MARK_SECONDS"] = "3600"
    environment["MAAS_SCHEDULER_QUOTA_RETRY_SECONDS"] = "3600"
    let scheduler = try ServerProcess(
      binary: try builtProduct(named: "maas-scheduler"), environmentPrefix: "MAAS_SCHEDULER_", environment: environment)
    defer { scheduler.kill() }
    let target = "127.0.0.1:\(try await scheduler.listeningPort())"
    try await setConcurrentGPULimits(["t1": 8], at: quotaTarget)

    let id = try await withClient(target) { client in
      let scheduler = Maas_Scheduler_V1_Scheduler.Client(wrapping: client)
      _ = try await scheduler.registerNode(.with {
        $0.node = .with {
          $0.name = "a"
          $0.gpus = [.with { $0.uuid = "a-gpu-0"; $0.model = "H100-80GB"; $0.memoryBytes = 80 << 30 }]
        }
      })
      let placed = try await scheduler.schedule(.with {
        $0.tenantID = "t1"
        $0.workloadID = "w"
        $0.replicas = 1
        $0.gpu = .with { $0.count = 1; $0.gpuType = "H100-80GB"; $0.sharing = .exclusive }
      })
      _ = try await scheduler.release(.with { $0.tenantID = "t1"; $0.allocationID = placed.id; $0.idempotencyKey = "release-w" })
      return placed.id
    }
    let owner = try PostgresPool(
      configuration: PostgresConfiguration(url: database.ownerURL, minConnections: 0, maxConnections: 1), logger: quietLogger)
    let marked = { try await owner.query("SELECT quota_released FROM scheduler.allocations WHERE id = $1::uuid", [id])[0].decode(Bool.self, at: 0) }
    let beforeStop = try await marked()

    scheduler.signal(SIGTERM)
    #expect(try await scheduler.exitStatus() == .exited(0))
    let afterStop = try await marked()
    await owner.close()
    #expect(!beforeStop, "the mark waited in memory while the scheduler ran")
    #expect(afterStop, "the stop wrote it")
  }
}
