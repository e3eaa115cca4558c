import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import MaaSTesting
import Postgres
import Quota
import QuotaClient
import Scheduler
import Testing

/// The scheduler's gRPC edge over the real transport, holding concurrent GPUs in the REAL quota
/// service (its own loopback server and database).
@Suite("maas.scheduler.v1.Scheduler over gRPC with the real quota service", .serialized, .timeLimit(.minutes(5)))
struct SchedulerRPCServiceTests {
  func withScheduler(
    _ name: String,
    _ body: (Maas_Scheduler_V1_Scheduler.Client<ShimClientTransport>, Maas_Quota_V1_Quota.Client<ShimClientTransport>) async throws -> Void
  ) async throws {
    try await withMigratedDatabase(named: "\(name)_q", plan: try QuotaSchema.plan(serviceRole: "maas_app")) { quotaDB in
      let quotaService = QuotaRPCService(store: QuotaStore(pool: quotaDB.app, policy: QuotaPolicy(), logger: quietLogger), logger: quietLogger)
      try await withLoopbackServer(services: [quotaService]) { quotaClient, quotaServer in
        let quota = Maas_Quota_V1_Quota.Client(wrapping: quotaClient)
        try await withMigratedDatabase(named: "\(name)_s", plan: try SchedulerSchema.plan(serviceRole: "maas_app")) { db in
          let store = SchedulerStore(pool: db.app, quota: GRPCQuotaGate(channel: quotaServer.clientTransport), logger: quietLogger)
          let tokens = SchedulerPageTokens(secret: "scheduler-tests-page-token-secret")
          try await withLoopbackServer(services: [SchedulerRPCService(store: store, tokens: tokens, logger: quietLogger)]) { client, _ in
            try await body(Maas_Scheduler_V1_Scheduler.Client(wrapping: client), quota)
          }
        }
      }
    }
  }

  func register(_ scheduler: Maas_Scheduler_V1_Scheduler.Client<ShimClientTransport>, _ name: String, gpus: Int) async throws {
    _ = try await scheduler.registerNode(.with {
      $0.node = .with {
        $0.name = name
        $0.gpus = (0..<gpus).map { index in
          .with {
            $0.uuid = "\(name)-gpu-\(index)"
            $0.model = "H100-80GB"
            $0.memoryBytes = 80 << 30
          }
        }
      }
    })
  }

  func exclusive(_ tenant: String, _ workload: String, replicas: Int32, gpus: Int32) -> Maas_Scheduler_V1_ScheduleRequest {
    .with {
      $0.tenantID = tenant
      $0.workloadID = workload
      $0.replicas = replicas
      $0.gpu = .with {
        $0.count = gpus
        $0.gpuType = "H100-80GB"
        $0.sharing = .exclusive
      }
      $0.policy = .binpack
    }
  }

  func concurrentGPUs(_ quota: Maas_Quota_V1_Quota.Client<ShimClientTransport>, _ tenant: String) async throws -> (Int64, Int64) {
    let line = try await quota.getQuota(.with { $0.tenantID = tenant }).resources.first { $0.resource == .concurrentGpus }!
    return (line.used, line.reserved)
  }

  @Test("Schedule places all replicas and holds their GPUs in quota; Release gives them back")
  func scheduleAndRelease() async throws {
    try await withScheduler("scheduler_rpc_schedule") { scheduler, quota in
      _ = try await quota.setLimits(.with { $0.tenantID = "acme"; $0.idempotencyKey = "register" })
      try await register(scheduler, "node-a", gpus: 8)
      try await register(scheduler, "node-b", gpus: 8)
      let allocation = try await scheduler.schedule(exclusive("acme", "llama", replicas: 2, gpus: 4))
      #expect(allocation.placements.count == 2)
      #expect(allocation.placements.allSatisfy { $0.gpuUuids.count == 4 })
      #expect(Set(allocation.placements.flatMap(\.gpuUuids)).count == 8)
      #expect(try await concurrentGPUs(quota, "acme") == (8, 0))
      // The same workload again is the same allocation, not a second one.
      #expect(try await scheduler.schedule(exclusive("acme", "llama", replicas: 2, gpus: 4)).id == allocation.id)
      _ = try await scheduler.release(.with {
        $0.tenantID = "acme"
        $0.allocationID = allocation.id
        $0.idempotencyKey = "release"
      })
      #expect(try await concurrentGPUs(quota, "acme") == (0, 0))
    }
  }

  @Test("another tenant's allocation answers NOT_FOUND to GetAllocation and Release, and stays held")
  func otherTenantsAllocation() async throws {
    try await withScheduler("scheduler_rpc_other_tenant") { scheduler, quota in
      for tenant in ["acme", "globex"] {
        _ = try await quota.setLimits(.with { $0.tenantID = tenant; $0.idempotencyKey = "register-\(tenant)" })
      }
      try await register(scheduler, "node-a", gpus: 8)
      let allocation = try await scheduler.schedule(exclusive("acme", "llama", replicas: 1, gpus: 2))
      let notFound: @Sendable (any Error) -> Bool = { error in
        guard let error = error as? RPCError else { return false }
        return error.code == .notFound && error.message.contains(allocation.id)
      }
      await #expect {
        _ = try await scheduler.getAllocation(.with { $0.tenantID = "globex"; $0.allocationID = allocation.id })
      } throws: { notFound($0) }
      await #expect {
        _ = try await scheduler.release(.with { $0.tenantID = "globex"; $0.allocationID = allocation.id; $0.idempotencyKey = "steal" })
      } throws: { notFound($0) }
      #expect(try await scheduler.getAllocation(.with { $0.tenantID = "acme"; $0.allocationID = allocation.id }).state == .active)
      #expect(try await concurrentGPUs(quota, "acme") == (2, 0))
    }
  }

  @Test("a MIG placement answers where its instance starts, and an instance with free slices but no free position is RESOURCE_EXHAUSTED")
  func migStartsOverTheWire() async throws {
    try await withScheduler("scheduler_rpc_mig") { scheduler, quota in
      _ = try await quota.setLimits(.with { $0.tenantID = "acme"; $0.idempotencyKey = "register" })
      _ = try await scheduler.registerNode(.with {
        $0.node = .with {
          $0.name = "mig-a"
          $0.gpus = [.with {
            $0.uuid = "mig-a-gpu-0"
            $0.model = "A100-80GB"
            $0.memoryBytes = 80 << 30
            $0.migSlices = 7
            $0.migProfiles = [
              .with { $0.name = "2g.20gb"; $0.memoryBytes = 20 << 30; $0.slices = 2; $0.maxInstances = 3 },
              .with { $0.name = "3g.40gb"; $0.memoryBytes = 40 << 30; $0.slices = 3; $0.maxInstances = 2 },
            ]
          }]
        }
      })
      func mig(_ workload: String, _ profile: String) -> Maas_Scheduler_V1_ScheduleRequest {
        .with {
          $0.tenantID = "acme"
          $0.workloadID = workload
          $0.replicas = 1
          $0.gpu = .with { $0.gpuType = "A100-80GB"; $0.sharing = .mig; $0.migProfile = profile }
          $0.policy = .binpack
        }
      }
      let two = try await scheduler.schedule(mig("two", "2g.20gb"))
      let three = try await scheduler.schedule(mig("three", "3g.40gb"))
      #expect(two.placements.map(\.migStart) == [4])
      #expect(three.placements.map(\.migStart) == [0])
      // 5 of 7 slices and 60 of 80 GiB held: slices and memory enough, no free 2-slice position.
      let refused = await #expect(throws: RPCError.self) { try await scheduler.schedule(mig("again", "2g.20gb")) }
      #expect(refused?.code == .resourceExhausted)
      #expect(refused?.message.contains("no free position") == true, "\(refused?.message ?? "")")
    }
  }

  @Test("placement beyond the fleet or the quota is RESOURCE_EXHAUSTED saying why, and holds nothing")
  func refusals() async throws {
    try await withScheduler("scheduler_rpc_refusals") { scheduler, quota in
      _ = try await quota.setLimits(.with {
        $0.tenantID = "acme"
        $0.limits = [.with { $0.resource = .concurrentGpus; $0.value = 4 }]
        $0.idempotencyKey = "register"
      })
      try await register(scheduler, "node-a", gpus: 4)
      try await register(scheduler, "node-b", gpus: 4)
      let overQuota = await status { try await scheduler.schedule(exclusive("acme", "big", replicas: 2, gpus: 4)) }
      #expect(overQuota?.code == .resourceExhausted)
      #expect(overQuota?.message.contains("concurrent_gpus: limit 4") == true, "\(String(describing: overQuota))")
      let tooBig = await status { try await scheduler.schedule(exclusive("acme", "huge", replicas: 1, gpus: 8)) }
      // Refused by the fleet (no node has 8), before the quota of 4 is asked: INVALID_ARGUMENT.
      #expect(tooBig?.code == .invalidArgument, "\(String(describing: tooBig))")
      #expect(tooBig?.message.hasPrefix("gpu.count") == true, "\(String(describing: tooBig))")
      #expect(try await concurrentGPUs(quota, "acme") == (0, 0))
      let noReplicas = await status { try await scheduler.schedule(exclusive("acme", "none", replicas: 0, gpus: 1)) }
      #expect(noReplicas?.code == .invalidArgument)
      #expect(noReplicas?.message.hasPrefix("replicas") == true, "\(String(describing: noReplicas))")
    }
  }

  @Test("a page token continues its own listing, and is INVALID_ARGUMENT page_token altered, with other filters or in another listing")
  func pageTokensAreBoundToTheirListing() async throws {
    try await withScheduler("scheduler_rpc_page_tokens") { scheduler, quota in
      for name in ["node-a", "node-b", "node-c"] { try await register(scheduler, name, gpus: 1) }
      let first = try await scheduler.listNodes(.with { $0.pageSize = 2 })
      #expect(first.nodes.map(\.name) == ["node-a", "node-b"])
      let second = try await scheduler.listNodes(.with {
        $0.pageSize = 2
        $0.pageToken = first.nextPageToken
      })
      #expect(second.nodes.map(\.name) == ["node-c"])
      let otherFilters = await status {
        try await scheduler.listNodes(.with {
          $0.pageSize = 2
          $0.gpuModel = "H100-80GB"
          $0.pageToken = first.nextPageToken
        })
      }
      #expect(otherFilters?.code == .invalidArgument)
      #expect(otherFilters?.message.hasPrefix("page_token") == true, "\(String(describing: otherFilters))")
      let otherListing = await status {
        try await scheduler.listAllocations(.with {
          $0.tenantID = "acme"
          $0.pageSize = 2
          $0.pageToken = first.nextPageToken
        })
      }
      #expect(otherListing?.code == .invalidArgument)
      #expect(otherListing?.message.hasPrefix("page_token") == true, "\(String(describing: otherListing))")
      // Sealed: a token with one character changed does not start some other page.
      var altered = Array(first.nextPageToken)
      altered[altered.count / 2] = altered[altered.count / 2] == "A" ? "B" : "A"
      let alteredStatus = await status {
        try await scheduler.listNodes(.with {
          $0.pageSize = 2
          $0.pageToken = String(altered)
        })
      }
      #expect(alteredStatus?.code == .invalidArgument)
      #expect(alteredStatus?.message.hasPrefix("page_token") == true, "\(String(describing: alteredStatus))")

      // A tenant's allocations page by (create time, id), every one exactly once.
      _ = try await quota.setLimits(.with { $0.tenantID = "acme"; $0.idempotencyKey = "register" })
      var scheduled: Set<String> = []
      for workload in ["w1", "w2", "w3"] {
        scheduled.insert(try await scheduler.schedule(exclusive("acme", workload, replicas: 1, gpus: 1)).id)
      }
      var listed: [String] = []
      var token = ""
      repeat {
        let page = try await scheduler.listAllocations(.with {
          $0.tenantID = "acme"
          $0.pageSize = 2
          $0.pageToken = token
        })
        listed += page.allocations.map(\.id)
        token = page.nextPageToken
      } while !token.isEmpty && listed.count < 10
      #expect(listed.count == 3 && Set(listed) == scheduled, "\(listed)")
    }
  }

  /// One bad request over the wire and what it must answer: the code and the start of the message
  /// (the field, or the reason).
  struct BadInput: Sendable, CustomTestStringConvertible {
    let name: String
    let code: RPCError.Code
    let messagePrefix: String
    let call: @Sendable (Maas_Scheduler_V1_Scheduler.Client<ShimClientTransport>) async throws -> Void
    var testDescription: String { name }
  }

  static func schedule(_ change: @escaping @Sendable (inout Maas_Scheduler_V1_ScheduleRequest) -> Void) -> @Sendable (
    Maas_Scheduler_V1_Scheduler.Client<ShimClientTransport>
  ) async throws -> Void {
    { scheduler in
      var request = Maas_Scheduler_V1_ScheduleRequest.with {
        $0.tenantID = "acme"
        $0.workloadID = "bad"
        $0.replicas = 1
        $0.gpu = .with { $0.count = 1; $0.gpuType = "H100-80GB"; $0.sharing = .exclusive }
      }
      change(&request)
      _ = try await scheduler.schedule(request)
    }
  }

  static let badInputs: [BadInput] = [
    BadInput(name: "zero replicas", code: .invalidArgument, messagePrefix: "replicas", call: schedule { $0.replicas = 0 }),
    BadInput(name: "a billion replicas", code: .invalidArgument, messagePrefix: "replicas", call: schedule { $0.replicas = 1_000_000_000 }),
    BadInput(name: "more GPUs than any node has", code: .invalidArgument, messagePrefix: "gpu.count", call: schedule { $0.gpu.count = 9 }),
    BadInput(
      name: "an unknown GPU type", code: .invalidArgument, messagePrefix: "gpu.gpu_type", call: schedule { $0.gpu.gpuType = "TPU-v9" }),
    BadInput(
      name: "more memory than the GPU has", code: .invalidArgument, messagePrefix: "gpu.min_memory_bytes",
      call: schedule {
        $0.gpu.sharing = .shared
        $0.gpu.minMemoryBytes = 81 << 30
      }),
    BadInput(
      name: "a negative memory request", code: .invalidArgument, messagePrefix: "gpu.min_memory_bytes",
      call: schedule {
        $0.gpu.sharing = .shared
        $0.gpu.minMemoryBytes = -1
      }),
    BadInput(name: "no tenant", code: .invalidArgument, messagePrefix: "tenant_id", call: schedule { $0.tenantID = "" }),
    BadInput(
      name: "a 10 KB workload id", code: .invalidArgument, messagePrefix: "workload_id",
      call: schedule { $0.workloadID = String(repeating: "w", count: 10_240) }),
    BadInput(
      name: "8 GPUs on one node when only 4 are free", code: .resourceExhausted, messagePrefix: "8 x H100-80GB on one node requested; largest free block is 4",
      call: { scheduler in
        _ = try await scheduler.schedule(.with {
          $0.tenantID = "acme"
          $0.workloadID = "half"
          $0.replicas = 1
          $0.gpu = .with { $0.count = 4; $0.gpuType = "H100-80GB"; $0.sharing = .exclusive }
        })
        try await schedule { $0.gpu.count = 8 }(scheduler)
      }),
    BadInput(
      name: "a GPU uuid twice at registration", code: .invalidArgument, messagePrefix: "node.gpus[1].uuid",
      call: { scheduler in
        _ = try await scheduler.registerNode(.with {
          $0.node = .with {
            $0.name = "twice"
            $0.gpus = [0, 0].map { _ in .with { $0.uuid = "same"; $0.model = "H100-80GB"; $0.memoryBytes = 80 << 30 } }
          }
        })
      }),
    BadInput(
      name: "a GPU uuid another node holds", code: .alreadyExists, messagePrefix: "GPU node-a-gpu-0 is registered on node \"node-a\"",
      call: { scheduler in
        _ = try await scheduler.registerNode(.with {
          $0.node = .with {
            $0.name = "thief"
            $0.gpus = [.with { $0.uuid = "node-a-gpu-0"; $0.model = "H100-80GB"; $0.memoryBytes = 80 << 30 }]
          }
        })
      }),
    BadInput(
      name: "a forged page token", code: .invalidArgument, messagePrefix: "page_token",
      call: { scheduler in _ = try await scheduler.listNodes(.with { $0.pageSize = 10; $0.pageToken = "not a token" }) }),
    BadInput(
      name: "a page size of 10^9", code: .invalidArgument, messagePrefix: "page_size",
      call: { scheduler in _ = try await scheduler.listNodes(.with { $0.pageSize = 1_000_000_000 }) }),
  ]

  @Test("bad input over the wire answers the status naming the field or the reason, and places nothing", arguments: badInputs)
  func badInput(_ case: BadInput) async throws {
    let database = "sbad_" + String(`case`.name.map { $0.isLetter || $0.isNumber ? $0 : "_" }.prefix(40)).lowercased()
    try await withScheduler(database) { scheduler, quota in
      _ = try await quota.setLimits(.with { $0.tenantID = "acme"; $0.idempotencyKey = "register" })
      try await register(scheduler, "node-a", gpus: 8)
      let answer = await status { try await `case`.call(scheduler) }
      #expect(answer?.code == `case`.code, "\(String(describing: answer))")
      #expect(answer?.message.hasPrefix(`case`.messagePrefix) == true, "\(String(describing: answer))")
      let held = try await concurrentGPUs(quota, "acme")
      #expect(held.1 == 0, "a refused call left a quota hold")
    }
  }
}
