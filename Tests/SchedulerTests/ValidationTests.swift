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
}
