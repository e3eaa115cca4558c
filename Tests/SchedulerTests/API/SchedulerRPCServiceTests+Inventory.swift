import GRPCCore
import GRPCShimTransport
import MaaSContracts
import Testing

/// Cordon, drain, uncordon and delete over gRPC: what each does to the node's state, to
/// placements, and what DrainNode lists for moving.
extension SchedulerRPCServiceTests {
  func place(
    _ scheduler: Maas_Scheduler_V1_Scheduler.Client<ShimClientTransport>, _ tenant: String, _ workload: String,
    replicas: Int32 = 1, gpus: Int32 = 1
  ) async throws -> Maas_Scheduler_V1_Allocation {
    try await scheduler.schedule(exclusive(tenant, workload, replicas: replicas, gpus: gpus))
  }

  func releaseAll(
    _ scheduler: Maas_Scheduler_V1_Scheduler.Client<ShimClientTransport>, _ allocations: [Maas_Scheduler_V1_Allocation]
  ) async throws {
    for allocation in allocations {
      _ = try await scheduler.release(.with {
        $0.tenantID = allocation.tenantID
        $0.allocationID = allocation.id
        $0.idempotencyKey = "release-\(allocation.id)"
      })
    }
  }

  @Test("a cordoned node answers CORDONED and takes no placements; uncordoned it is READY and takes them again")
  func cordonAndUncordon() async throws {
    try await withScheduler("scheduler_rpc_cordon") { scheduler, quota in
      _ = try await quota.setLimits(.with { $0.tenantID = "acme"; $0.idempotencyKey = "register" })
      try await register(scheduler, "node-a", gpus: 2)
      let cordoned = try await scheduler.cordonNode(.with { $0.nodeName = "node-a"; $0.reason = "firmware" })
      #expect(cordoned.state == .cordoned)
      #expect(cordoned.cordoned)
      #expect(try await scheduler.getNode(.with { $0.nodeName = "node-a" }).state == .cordoned)
      await #expect {
        _ = try await place(scheduler, "acme", "llama")
      } throws: { error in
        guard let error = error as? RPCError else { return false }
        return error.code == .resourceExhausted && error.message.contains("1 cordoned")
      }
      let uncordoned = try await scheduler.uncordonNode(.with { $0.nodeName = "node-a" })
      #expect(uncordoned.state == .ready)
      #expect(!uncordoned.cordoned)
      #expect(try await place(scheduler, "acme", "llama").placements.map(\.node) == ["node-a"])
    }
  }

  @Test("DrainNode lists every tenant's allocations on the node, each once, and nothing from other nodes; the node is DRAINING until they are released, then CORDONED")
  func drainListsWhatToMove() async throws {
    try await withScheduler("scheduler_rpc_drain") { scheduler, quota in
      for tenant in ["acme", "globex"] {
        _ = try await quota.setLimits(.with { $0.tenantID = tenant; $0.idempotencyKey = "register-\(tenant)" })
      }
      try await register(scheduler, "node-a", gpus: 8)
      try await register(scheduler, "node-b", gpus: 8)
      // BINPACK fills one node before touching the other (node-a first, by name): every
      // allocation below lands there.
      let onA = [
        try await place(scheduler, "acme", "llama", replicas: 2, gpus: 2),
        try await place(scheduler, "globex", "mistral", gpus: 1),
      ]
      #expect(onA.allSatisfy { $0.placements.allSatisfy { $0.node == "node-a" } }, "\(onA.map(\.placements))")
      #expect(try await scheduler.cordonNode(.with { $0.nodeName = "node-a" }).state == .cordoned)
      let onB = try await place(scheduler, "acme", "whisper", gpus: 1)
      #expect(onB.placements.map(\.node) == ["node-b"])
      _ = try await scheduler.uncordonNode(.with { $0.nodeName = "node-a" })

      let drained = try await scheduler.drainNode(.with { $0.nodeName = "node-a"; $0.reason = "rack move" })
      #expect(drained.node.state == .draining)
      #expect(drained.allocations.map(\.id).sorted() == onA.map(\.id).sorted())
      // A drained node takes nothing new: the next placement goes to node-b.
      let next = try await place(scheduler, "globex", "phi", gpus: 1)
      #expect(next.placements.map(\.node) == ["node-b"])

      try await releaseAll(scheduler, onA)
      #expect(try await scheduler.getNode(.with { $0.nodeName = "node-a" }).state == .cordoned)
      #expect(try await scheduler.drainNode(.with { $0.nodeName = "node-a" }).allocations.isEmpty)
    }
  }

  @Test("DeleteNode is FAILED_PRECONDITION while allocations hold its GPUs, and removes it once they are released")
  func deleteOnlyWhenEmpty() async throws {
    try await withScheduler("scheduler_rpc_delete_node") { scheduler, quota in
      _ = try await quota.setLimits(.with { $0.tenantID = "acme"; $0.idempotencyKey = "register" })
      try await register(scheduler, "node-a", gpus: 2)
      let allocation = try await place(scheduler, "acme", "llama")
      await #expect {
        _ = try await scheduler.deleteNode(.with { $0.nodeName = "node-a" })
      } throws: { error in
        guard let error = error as? RPCError else { return false }
        return error.code == .failedPrecondition && error.message.contains("drain the node first")
      }
      try await releaseAll(scheduler, [allocation])
      _ = try await scheduler.deleteNode(.with { $0.nodeName = "node-a" })
      await #expect {
        _ = try await scheduler.getNode(.with { $0.nodeName = "node-a" })
      } throws: { error in
        (error as? RPCError)?.code == .notFound
      }
    }
  }
}
