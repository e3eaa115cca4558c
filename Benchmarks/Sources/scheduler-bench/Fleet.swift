import BenchSupport
import Foundation
import GRPCCore
import MaaSContracts

let gpuModel = "H100-80GB"
let gpusPerNode = 8
let gpuMemoryBytes: Int64 = 80 << 30

func nodeName(_ index: Int) -> String { String(format: "bench-node-%05d", index) }

/// Runs `body` for each of `items`, `concurrency` at a time; the first error fails it.
func forEach<T: Sendable>(_ items: [T], concurrency: Int, _ body: @escaping @Sendable (T) async throws -> Void) async throws {
  try await withThrowingTaskGroup(of: Void.self) { group in
    var next = 0
    func add() {
      guard next < items.count else { return }
      let item = items[next]
      next += 1
      group.addTask { try await body(item) }
    }
    for _ in 0..<concurrency { add() }
    while try await group.next() != nil { add() }
  }
}

/// Registers each tenant at the quota service with a CONCURRENT_GPUS limit of `limit`: high
/// enough never to refuse in the run, while every Schedule still reserves and checks against it.
func registerTenants(_ quota: QuotaClient, _ tenants: [String], limit: Int64) async throws {
  try await forEach(tenants, concurrency: 16) { tenant in
    _ = try await quota.setLimits(.with {
      $0.tenantID = tenant
      $0.limits = [.with { $0.resource = .concurrentGpus; $0.value = limit }]
      $0.idempotencyKey = "scheduler-bench-limits"
    })
  }
}

/// RegisterNode over gRPC for nodes `range` (8 x H100-80GB each, uuids from the node's name, two
/// labels), `concurrency` at a time. A node is registered once; the run then never heartbeats,
/// so the scheduler's heartbeat grace must outlast the run.
func registerNodes(_ scheduler: SchedulerClient, _ range: Range<Int>, concurrency: Int) async throws {
  try await forEach(Array(range), concurrency: concurrency) { index in
    let name = nodeName(index)
    let request = Maas_Scheduler_V1_RegisterNodeRequest.with {
      $0.node = .with {
        $0.name = name
        $0.labels = ["zone": "zone-\(index % 4)", "pool": "bench"]
        $0.gpus = (0..<gpusPerNode).map { slot in
          .with {
            $0.uuid = "GPU-\(name)-\(slot)"
            $0.model = gpuModel
            $0.memoryBytes = gpuMemoryBytes
          }
        }
      }
    }
    let node = try await scheduler.registerNode(request)
    guard node.state == .ready, node.gpus.count == gpusPerNode else {
      throw BenchError("RegisterNode answered \(node.state) with \(node.gpus.count) GPUs for \(name)")
    }
  }
}

/// GetCapacity for H100-80GB, as the scheduler's index sees it (of the nodes carrying
/// `selector`'s labels).
func capacity(_ scheduler: SchedulerClient, selector: [String: String] = [:]) async throws -> Maas_Scheduler_V1_GpuCapacity {
  let answer = try await scheduler.getCapacity(.with {
    $0.gpuModel = gpuModel
    $0.labelSelector = selector
  })
  guard let entry = answer.capacity.first(where: { $0.gpuModel == gpuModel }) else {
    throw BenchError("GetCapacity has no \(gpuModel) entry")
  }
  return entry
}

/// The median time of `calls` GetCapacity calls in a row (after one not counted), in
/// milliseconds: the scheduler reads its capacity sums (without a selector) or the selector's
/// nodes (with one) under its index's lock, so placements on that replica wait as long.
func capacityMilliseconds(_ scheduler: SchedulerClient, selector: [String: String] = [:], calls: Int = 21) async throws -> Double {
  _ = try await capacity(scheduler, selector: selector)
  let clock = ContinuousClock()
  var samples: [Double] = []
  for _ in 0..<calls {
    let start = clock.now
    _ = try await capacity(scheduler, selector: selector)
    samples.append(start.duration(to: clock.now).seconds * 1000)
  }
  return samples.sorted()[samples.count / 2]
}

/// Whether the fleet of `nodes` nodes is whole and wholly free: in the scheduler's index
/// (GetCapacity) and in the database (no GPU held, no ACTIVE allocation).
struct FreeCheck: Encodable {
  var nodes: Int
  var indexNodes: Int
  var indexTotalGPUs: Int
  var indexFreeGPUs: Int
  var databaseHeldGPUs: Int
  var databaseActiveAllocations: Int

  var ok: Bool {
    self.indexNodes == self.nodes && self.indexTotalGPUs == self.nodes * gpusPerNode && self.indexFreeGPUs == self.indexTotalGPUs
      && self.databaseHeldGPUs == 0 && self.databaseActiveAllocations == 0
  }

  static func take(_ scheduler: SchedulerClient, cluster: BenchCluster, nodes: Int) async throws -> FreeCheck {
    let entry = try await capacity(scheduler)
    let held = try cluster.heldInDatabase()
    return FreeCheck(
      nodes: nodes, indexNodes: Int(entry.nodes), indexTotalGPUs: Int(entry.totalGpus), indexFreeGPUs: Int(entry.freeGpus),
      databaseHeldGPUs: held.gpus, databaseActiveAllocations: held.activeAllocations)
  }

  enum CodingKeys: String, CodingKey {
    case nodes, ok
    case indexNodes = "index_nodes"
    case indexTotalGPUs = "index_total_gpus"
    case indexFreeGPUs = "index_free_gpus"
    case databaseHeldGPUs = "database_held_gpus"
    case databaseActiveAllocations = "database_active_allocations"
  }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(self.nodes, forKey: .nodes)
    try container.encode(self.indexNodes, forKey: .indexNodes)
    try container.encode(self.indexTotalGPUs, forKey: .indexTotalGPUs)
    try container.encode(self.indexFreeGPUs, forKey: .indexFreeGPUs)
    try container.encode(self.databaseHeldGPUs, forKey: .databaseHeldGPUs)
    try container.encode(self.databaseActiveAllocations, forKey: .databaseActiveAllocations)
    try container.encode(self.ok, forKey: .ok)
  }
}
