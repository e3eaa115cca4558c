import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import MaaSTesting
import Testing

/// The demo fleet `make run` registers: the inventory in the repository is one the scheduler
/// accepts, and the agent refuses a malformed one before sending anything.
@Suite("The demo fleet of make run", .serialized, .timeLimit(.minutes(5)))
struct DemoFleetTests {
  static let agent = repositoryRoot + "/services/scheduler/demo/fleet_agent.py"
  static let inventory = repositoryRoot + "/services/scheduler/demo/fleet.yaml"

  @Test("the agent registers the repository's inventory: 2 x 8 H100-80GB and 4 x 4 L4-24GB, all READY, as the metrics show too")
  func registersTheInventory() async throws {
    try #require(PythonEnvironment.isSetUp, "run scripts/python-env (or make test) first")
    let database = try await PostgresFixture.shared().createDatabase(named: "scheduler_demo_fleet")
    let metricsPort = try freeLoopbackPort()
    let scheduler = try ServerProcess(binary: try builtProduct(named: "maas-scheduler"), environmentPrefix: "MAAS_SCHEDULER_", environment: [
      "MAAS_SCHEDULER_DATABASE_URL": database.appURL, "MAAS_SCHEDULER_MIGRATION_DATABASE_URL": database.ownerURL,
      "MAAS_SCHEDULER_HOST": "127.0.0.1", "MAAS_SCHEDULER_PORT": "0", "MAAS_SCHEDULER_LOG_LEVEL": "warning",
      "MAAS_SCHEDULER_METRICS_PORT": String(metricsPort),
    ])
    defer { scheduler.kill() }
    let target = "127.0.0.1:\(try await scheduler.listeningPort())"

    let outcome = try await runToCompletion(
      PythonEnvironment.python, [Self.agent, target, Self.inventory, "register"], environment: PythonEnvironment.environment,
      timeLimit: .seconds(60))
    #expect(outcome.succeeded, "\(outcome.standardError)")
    #expect(outcome.standardOutput.hasPrefix("registered 6 nodes: 16 x H100-80GB, 16 x L4-24GB"), "\(outcome.standardOutput)")

    try await withGRPCClient(transport: ShimClientTransport(target: target)) { client in
      let scheduler = Maas_Scheduler_V1_Scheduler.Client(wrapping: client)
      let capacity = try await scheduler.getCapacity(.init()).capacity
      #expect(capacity.map(\.gpuModel) == ["H100-80GB", "L4-24GB"])
      #expect(capacity.map(\.freeGpus) == [16, 16])
      #expect(capacity.map(\.largestFreeBlock) == [8, 4])
      let nodes = try await scheduler.listNodes(.with { $0.pageSize = 100 }).nodes
      #expect(nodes.count == 6)
      #expect(nodes.allSatisfy { $0.state == .ready })
    }
    // The same fleet through the metrics endpoint, with the agent's six RegisterNode calls and
    // the pool the scheduler served them from.
    let samples = try scrapeMetrics(port: metricsPort)
    #expect(samples["maas_scheduler_gpus{gpu_model=\"H100-80GB\"}"] == 16)
    #expect(samples["maas_scheduler_gpus{gpu_model=\"L4-24GB\"}"] == 16)
    #expect(samples["maas_scheduler_allocated_gpus{gpu_model=\"H100-80GB\"}"] == 0)
    #expect(samples["maas_scheduler_unschedulable_gpus{gpu_model=\"L4-24GB\"}"] == 0)
    #expect(samples["maas_scheduler_largest_free_block_gpus{gpu_model=\"H100-80GB\"}"] == 8)
    #expect(
      samples["grpc_server_handled_total{grpc_service=\"maas.scheduler.v1.Scheduler\",grpc_method=\"RegisterNode\",grpc_code=\"OK\"}"] == 6)
    #expect(samples["maas_db_pool_max_connections"] == 10)
    #expect((samples["maas_db_round_trips_total"] ?? 0) > 0)
    #expect(samples["maas_db_pool_waiting_callers"] == 0)
    scheduler.signal(SIGTERM)
    #expect(try await scheduler.exitStatus() == .exited(0))
  }

  @Test("a malformed inventory is refused naming the entry and field, with exit status 2, before any call")
  func refusesAMalformedInventory() async throws {
    try #require(PythonEnvironment.isSetUp, "run scripts/python-env (or make test) first")
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-\(UUID().uuidString).yaml")
    try "nodes:\n  - name: x\n    gpus: [{model: H100-80GB, count: 0, memory_gib: 80}]\n".write(to: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: file) }
    // Nothing listens on port 1: a call would fail with exit status 1, not 2.
    let outcome = try await runToCompletion(
      PythonEnvironment.python, [Self.agent, "127.0.0.1:1", file.path, "register"], environment: PythonEnvironment.environment,
      timeLimit: .seconds(60))
    #expect(outcome.status == 2)
    #expect(outcome.standardError.contains("nodes[0].gpus[0].count: must be an integer >= 1, got 0"), "\(outcome.standardError)")
  }
}
