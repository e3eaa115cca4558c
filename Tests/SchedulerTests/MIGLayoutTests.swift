import Scheduler
import Testing

/// One row: instances placed in order on an empty GPU of `total` slices, and where each goes
/// (nil: refused).
struct MIGLayoutCase: Sendable, CustomTestStringConvertible {
  var testDescription: String
  var total: Int = 7
  var instances: [Int]
  var starts: [Int?]
}

let migLayoutCases: [MIGLayoutCase] = [
  .init(testDescription: "a 1-slice instance on an empty 7-slice GPU takes the highest position",
        instances: [1], starts: [6]),
  .init(testDescription: "a 2-slice instance starts at a multiple of 2", instances: [2, 2, 2, 2], starts: [4, 2, 0, nil]),
  .init(testDescription: "a 3-slice instance takes 4 positions: at 4 it wastes none, at 0 it holds 0-3",
        instances: [3, 3, 1], starts: [4, 0, nil]),
  .init(testDescription: "4- and 7-slice instances start only at 0", instances: [4, 4], starts: [0, nil]),
  .init(testDescription: "a 7-slice instance takes the whole GPU", instances: [7, 1], starts: [0, nil]),
  .init(testDescription: "a 4-slice and a 3-slice instance fill 7 slices", instances: [4, 3], starts: [0, 4]),
  .init(testDescription: "seven 1-slice instances fill 7 slices from the top", instances: Array(repeating: 1, count: 8),
        starts: [6, 5, 4, 3, 2, 1, 0, nil]),
  .init(testDescription: "1-slice instances fill from the top, so a 3-slice one still finds the low block",
        instances: [1, 1, 1, 3], starts: [6, 5, 4, 0]),
  .init(testDescription: "a 2-slice instance on the top half leaves a 3-slice one the low block and nothing for a second 2-slice one",
        instances: [2, 3, 2], starts: [4, 0, nil]),
  .init(testDescription: "3 + 2 + 2 fits when the 3-slice instance comes first", instances: [3, 2, 2], starts: [4, 2, 0]),
  .init(testDescription: "on a 4-slice GPU (A30) the same rule holds", total: 4, instances: [2, 1, 1, 1], starts: [2, 1, 0, nil]),
  .init(testDescription: "an instance larger than the GPU never fits", total: 4, instances: [7], starts: [nil]),
]

@Suite("MIG instance positions")
struct MIGLayoutTests {
  @Test(arguments: migLayoutCases)
  func placesInOrder(_ row: MIGLayoutCase) {
    var occupied: UInt64 = 0
    var starts: [Int?] = []
    for slices in row.instances {
      let start = MIGLayout.start(for: slices, total: row.total, occupied: occupied)
      if let start { occupied |= MIGLayout.mask(start: start, slices: slices) }
      starts.append(start)
    }
    #expect(starts == row.starts)
  }

  @Test("a block is the instance's slices rounded up to a power of two, from its start")
  func masks() {
    #expect(MIGLayout.mask(start: 6, slices: 1) == 0b0100_0000)
    #expect(MIGLayout.mask(start: 4, slices: 3) == 0b1111_0000)
    #expect(MIGLayout.mask(start: 0, slices: 7) == 0b1111_1111)
    #expect(MIGLayout.mask(start: 0, slices: 64) == .max)
  }

  @Test("a start must be aligned to the instance's width and leave its slices on the GPU")
  func validStarts() {
    #expect(MIGLayout.isValid(start: 4, slices: 3, total: 7))
    #expect(!MIGLayout.isValid(start: 2, slices: 3, total: 7), "not a multiple of 4")
    #expect(!MIGLayout.isValid(start: 6, slices: 2, total: 7), "runs past slice 6")
    #expect(!MIGLayout.isValid(start: 0, slices: 0, total: 7))
  }

  @Test("a GPU refuses a MIG claim on held positions even when its slices and memory are free enough")
  func admitsOnlyFreePositions() {
    // A 2g at 4 and a 3g at 0: 5 of 7 slices and 60 of 80 GiB held, positions 0-5.
    var a100 = gpu("m", "A100-80GB", mig: true)
    a100.apply(GPUClaim(gpuUUID: "m", memoryBytes: 20 * GiB, migSlices: 2, migStart: 4, exclusive: false))
    a100.apply(GPUClaim(gpuUUID: "m", memoryBytes: 40 * GiB, migSlices: 3, migStart: 0, exclusive: false))
    #expect(a100.allocatedMIGMask == 0b0011_1111)
    #expect(a100.freeMIGSlices == 2)
    #expect(!a100.admits(GPUClaim(gpuUUID: "m", memoryBytes: 20 * GiB, migSlices: 2, migStart: 2, exclusive: false)))
    #expect(!a100.admits(GPUClaim(gpuUUID: "m", memoryBytes: 20 * GiB, migSlices: 2, migStart: 6, exclusive: false)))
    #expect(a100.admits(GPUClaim(gpuUUID: "m", memoryBytes: 10 * GiB, migSlices: 1, migStart: 6, exclusive: false)))
    // Giving the 3g back frees exactly its block.
    a100.apply(GPUClaim(gpuUUID: "m", memoryBytes: 40 * GiB, migSlices: 3, migStart: 0, exclusive: false), sign: -1)
    #expect(a100.allocatedMIGMask == 0b0011_0000)
    #expect(a100.admits(GPUClaim(gpuUUID: "m", memoryBytes: 20 * GiB, migSlices: 2, migStart: 2, exclusive: false)))
  }
}
