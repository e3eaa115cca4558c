import Scheduler
import Testing

@Suite("GPUUsage counts what allocations hold of a GPU")
struct GPUUsageTests {
  private static let shared = GPUClaim(gpuUUID: "g", memoryBytes: 10 * GiB, migSlices: 0, exclusive: false)
  private static let mig = GPUClaim(gpuUUID: "g", memoryBytes: 20 * GiB, migSlices: 2, migStart: 4, exclusive: false)
  private static let whole = GPUClaim(gpuUUID: "g", memoryBytes: 80 * GiB, migSlices: 0, exclusive: true)

  @Test("a shared claim adds its memory, a MIG claim its memory, slices and positions, a whole claim only the flag")
  func applyingClaims() {
    var usage = GPUUsage.none
    usage.apply(Self.shared)
    #expect(usage == GPUUsage(memoryBytes: 10 * GiB))
    usage.apply(Self.mig)
    #expect(usage == GPUUsage(memoryBytes: 30 * GiB, migSlices: 2, migMask: 0b0011_0000))
    var held = GPUUsage.none
    held.apply(Self.whole)
    #expect(held == GPUUsage(exclusive: true))
  }

  @Test("giving back every claim applied leaves nothing held")
  func givingBack() {
    var usage = GPUUsage.none
    for claim in [Self.shared, Self.mig] { usage.apply(claim) }
    for claim in [Self.mig, Self.shared] { usage.apply(claim, sign: -1) }
    #expect(usage == .none)
    var held = GPUUsage(exclusive: true)
    held.apply(Self.whole, sign: -1)
    #expect(held == .none)
  }

  @Test("a GPU's usage reads and writes its four counters")
  func gpuUsage() {
    var gpu = GPU(uuid: "g", model: "A100-80GB", memoryBytes: 80 * GiB, migSlices: 7)
    gpu.usage = GPUUsage(memoryBytes: 20 * GiB, migSlices: 2, migMask: 0b0011_0000)
    #expect(gpu.allocatedMemoryBytes == 20 * GiB && gpu.allocatedMIGSlices == 2 && gpu.allocatedMIGMask == 0b0011_0000)
    #expect(!gpu.exclusive && gpu.freeMIGSlices == 5)
    gpu.apply(Self.mig, sign: -1)
    #expect(gpu.usage == .none && gpu.isFree)
  }
}
