import Postgres

// How a GPU's usage (`GPUUsage`) sits in `scheduler.gpus`: four columns, read in one order
// everywhere, and written from parameter arrays through `unnest`.

extension GPUUsage {
  /// The usage columns of `scheduler.gpus` under table alias `g`, in the order `init(_:from:)`
  /// reads them.
  static let columns = "g.allocated_memory_bytes, g.allocated_mig_slices, g.exclusive, g.allocated_mig_mask"

  /// The usage `row` holds in the four columns from `first`, in `columns`' order.
  init(_ row: PostgresRow, from first: Int) throws {
    self.init(
      memoryBytes: try row.decode(Int64.self, at: first), migSlices: Int(try row.decode(Int32.self, at: first + 1)),
      migMask: UInt64(bitPattern: try row.decode(Int64.self, at: first + 3)), exclusive: try row.decode(Bool.self, at: first + 2))
  }
}

extension [GPUUsage] {
  /// The usages as the arrays a statement `unnest`s: memory (bigint[]), slices (integer[]),
  /// exclusive as 0 or 1 (integer[]) and the MIG mask (bigint[]).
  var parameterArrays: (memory: [Int64], slices: [Int32], exclusive: [Int32], mask: [Int64]) {
    (map(\.memoryBytes), map { Int32($0.migSlices) }, map { Int32($0.exclusive ? 1 : 0) }, map { Int64(bitPattern: $0.migMask) })
  }
}
