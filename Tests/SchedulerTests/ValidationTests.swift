import Scheduler
import Testing

@Suite("Request validation")
struct ValidationTests {
  func schedule(replicas: Int32 = 1, gpu: GPURequest? = GPURequest(count: 1, sharing: .exclusive), sharingGiven: Bool = true,
                tenant: String = "t1", workload: String = "w1") -> [String] {
    switch ScheduleCommand.validate(
      tenantID: tenant, workloadID: workload, replicas: replicas, gpu: gpu, sharingGiven: sharingGiven, policy: nil, priority: 0,
      nodeSelector: [:])
    {
    case .success: []
    case .failure(.invalidRequest(let violations)): violations.map(\.field)
    case .failure(let other): ["unexpected \(other)"]
    }
  }

  @Test("zero replicas is INVALID_ARGUMENT replicas")
  func zeroReplicas() { #expect(schedule(replicas: 0) == ["replicas"]) }

  @Test("a huge replica count is INVALID_ARGUMENT replicas")
  func hugeReplicas() { #expect(schedule(replicas: 1_000_000) == ["replicas"]) }

  @Test("SHARED without memory is INVALID_ARGUMENT gpu.min_memory_bytes")
  func sharedWithoutMemory() {
    #expect(schedule(gpu: GPURequest(count: 1, sharing: .shared)) == ["gpu.min_memory_bytes"])
  }

  @Test("MIG without a profile is INVALID_ARGUMENT gpu.mig_profile")
  func migWithoutProfile() { #expect(schedule(gpu: GPURequest(count: 1, sharing: .mig)) == ["gpu.mig_profile"]) }

  @Test("an unspecified sharing mode is INVALID_ARGUMENT gpu.sharing")
  func noSharing() { #expect(schedule(sharingGiven: false) == ["gpu.sharing"]) }

  @Test("every bad field is named at once")
  func everyField() {
    #expect(schedule(replicas: 0, gpu: nil, tenant: "", workload: "") == ["tenant_id", "workload_id", "replicas", "gpu"])
  }

  @Test("a GPU uuid repeated at registration is INVALID_ARGUMENT node.gpus[i].uuid")
  func duplicateUUIDs() {
    let result = RegisterNodeCommand.validate(name: "n1", labels: [:], gpus: [gpu("g-1"), gpu("g-2"), gpu("g-1")])
    guard case .failure(.invalidRequest(let violations)) = result else {
      Issue.record("expected INVALID_ARGUMENT, got \(result)")
      return
    }
    #expect(violations.map(\.field) == ["node.gpus[2].uuid"])
  }

  @Test("a node name outside [a-z0-9.-] and a node without GPUs are both named")
  func badNode() {
    let result = RegisterNodeCommand.validate(name: "Node_1", labels: [:], gpus: [])
    guard case .failure(.invalidRequest(let violations)) = result else {
      Issue.record("expected INVALID_ARGUMENT, got \(result)")
      return
    }
    #expect(violations.map(\.field) == ["node.name", "node.gpus"])
  }

  @Test("a GPU of more than 1 TiB is INVALID_ARGUMENT memory_bytes: the index's sums stay far from overflowing")
  func hugeGPU() {
    var huge = gpu("g-2")
    huge.memoryBytes = .max
    var largest = gpu("g-1")
    largest.memoryBytes = GPU.maxMemoryBytes
    let result = RegisterNodeCommand.validate(name: "n1", labels: [:], gpus: [largest, huge])
    guard case .failure(.invalidRequest(let violations)) = result else {
      Issue.record("expected INVALID_ARGUMENT, got \(result)")
      return
    }
    #expect(violations.map(\.field) == ["node.gpus[1].memory_bytes"])
  }

  @Test("a control character in an id or label is INVALID_ARGUMENT naming it, not a database error")
  func controlCharacters() {
    #expect(schedule(tenant: "t\u{0}1", workload: "w\n1") == ["tenant_id", "workload_id"])
    let selector = ScheduleCommand.validate(
      tenantID: "t1", workloadID: "w1", replicas: 1, gpu: GPURequest(count: 1, sharing: .exclusive), sharingGiven: true,
      policy: nil, priority: 0, nodeSelector: ["zone": "a\u{0}"])
    guard case .failure(.invalidRequest(let selectorViolations)) = selector else {
      Issue.record("expected INVALID_ARGUMENT, got \(selector)")
      return
    }
    #expect(selectorViolations.map(\.field) == ["node_selector[zone]"])
    var nul = gpu("g-\u{0}")
    nul.model = "H100\u{0}"
    let result = RegisterNodeCommand.validate(name: "n1", labels: [:], gpus: [nul])
    guard case .failure(.invalidRequest(let violations)) = result else {
      Issue.record("expected INVALID_ARGUMENT, got \(result)")
      return
    }
    #expect(violations.map(\.field) == ["node.gpus[0].uuid", "node.gpus[0].model"])
  }
}
