/// Where MIG instances can sit on a GPU: NVIDIA's placement rule on A100, H100 and A30.
///
/// A GPU in MIG mode has `total` compute slices at positions 0..<total. An instance of `s`
/// slices starts at a multiple of its *width*, `s` rounded up to a power of two, and holds
/// `width` positions to itself (the memory slices that go with them). So on 7 slices a 3g
/// instance starts at 0 (holding 0-3) or 4 (holding 4-6), a 2g at 0, 2 or 4, a 4g or 7g only at
/// 0, and two 3g instances leave no room for a 1g although 3 + 3 + 1 = 7. Counting slices alone
/// would admit that layout, and the node could not create the third instance.
///
/// Blocks are kept as bit masks of positions (bit `i` = position `i`). A block may run past the
/// last position (a 3g at 4 on 7 slices is bits 4-7); that phantom bit is never any other
/// instance's start, and aligned power-of-two blocks either nest or are apart, so two blocks that
/// overlap always overlap on a real position.
public enum MIGLayout {
  /// The positions an instance of `slices` holds: `slices` rounded up to a power of two.
  public static func width(_ slices: Int) -> Int {
    var width = 1
    while width < slices { width <<= 1 }
    return width
  }

  /// The bit mask of the block an instance of `slices` holds when it starts at `start`.
  public static func mask(start: Int, slices: Int) -> UInt64 {
    let width = width(slices)
    // `<<` past the width of UInt64 gives 0 in Swift; only `- 1` needs the whole-word case.
    let block: UInt64 = width >= 64 ? .max : (1 << width) - 1
    return block << start
  }

  /// Whether `start` is a position an instance of `slices` may take on a GPU of `total` slices.
  public static func isValid(start: Int, slices: Int, total: Int) -> Bool {
    slices > 0 && start >= 0 && start % width(slices) == 0 && start + slices <= total
  }

  /// Where a new instance of `slices` goes on a GPU of `total` slices whose held positions are
  /// `occupied`, or nil when no start is free.
  ///
  /// Of the free starts, the one that wastes the fewest positions (a 3g at 4 on 7 slices wastes
  /// none, at 0 one), then the highest: instances fill from the top, so the low blocks, the only
  /// place a 4g or 7g instance can go, stay whole the longest.
  public static func start(for slices: Int, total: Int, occupied: UInt64) -> Int? {
    guard slices > 0, slices <= total else { return nil }
    let width = width(slices)
    var best: (waste: Int, start: Int)?
    for start in stride(from: 0, through: total - slices, by: width) where occupied & mask(start: start, slices: slices) == 0 {
      let waste = min(start + width, total) - start - slices
      if let current = best, (current.waste, -current.start) <= (waste, -start) { continue }
      best = (waste, start)
    }
    return best?.start
  }
}
