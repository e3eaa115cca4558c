/// What allocations hold of one GPU: the counters a `scheduler.gpus` row keeps beside the GPU's
/// own description. They travel together (read under the row lock, written by a commit, loaded
/// into the index), so they are one value.
public struct GPUUsage: Sendable, Hashable {
  public var memoryBytes: Int64
  /// Compute slices held by MIG instances (a 3g instance counts 3).
  public var migSlices: Int
  /// Slice positions held by MIG instances, as `MIGLayout` blocks (a 3g instance holds 4).
  public var migMask: UInt64
  /// Held whole by one allocation.
  public var exclusive: Bool

  public init(memoryBytes: Int64 = 0, migSlices: Int = 0, migMask: UInt64 = 0, exclusive: Bool = false) {
    self.memoryBytes = memoryBytes
    self.migSlices = migSlices
    self.migMask = migMask
    self.exclusive = exclusive
  }

  /// Nothing held.
  public static let none = GPUUsage()

  /// Applies (`sign` 1) or gives back (`sign` -1) a claim.
  public mutating func apply(_ claim: GPUClaim, sign: Int = 1) {
    if claim.exclusive {
      exclusive = sign > 0
      return
    }
    memoryBytes += Int64(sign) * claim.memoryBytes
    migSlices += sign * claim.migSlices
    if sign > 0 { migMask |= claim.migMask } else { migMask &= ~claim.migMask }
  }
}
