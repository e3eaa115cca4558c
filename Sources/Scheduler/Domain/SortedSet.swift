/// A set kept in ascending order, for the placement orders: insert, remove and a walk from a lower
/// bound in O(log n) plus a short copy, where a sorted array would move half of a 10,000-node
/// fleet on every change.
///
/// Elements live in chunks of at most `chunkCapacity`, each sorted, every element of a chunk below
/// every element of the next: a search is a binary search over the chunks' last elements, then
/// one within a chunk; an insert or a removal shifts one chunk only.
struct SortedSet<Element: Comparable & Sendable>: Sendable {
  private var chunks: [[Element]] = []
  private(set) var count = 0
  let chunkCapacity: Int

  init(chunkCapacity: Int = 256) {
    precondition(chunkCapacity >= 2)
    self.chunkCapacity = chunkCapacity
  }

  var isEmpty: Bool { count == 0 }

  /// The index of the first chunk whose last element is not below `element` (`chunks.count` when
  /// every element is below it).
  private func chunk(for element: Element) -> Int {
    var low = 0
    var high = chunks.count
    while low < high {
      let middle = (low + high) / 2
      if chunks[middle].last! < element { low = middle + 1 } else { high = middle }
    }
    return low
  }

  /// The position of the first element of `chunk` not below `element`.
  private static func position(of element: Element, in chunk: [Element]) -> Int {
    var low = 0
    var high = chunk.count
    while low < high {
      let middle = (low + high) / 2
      if chunk[middle] < element { low = middle + 1 } else { high = middle }
    }
    return low
  }

  func contains(_ element: Element) -> Bool {
    let index = chunk(for: element)
    guard index < chunks.count else { return false }
    let position = Self.position(of: element, in: chunks[index])
    return chunks[index][position] == element
  }

  /// Adds `element`; false when it was there already.
  @discardableResult
  mutating func insert(_ element: Element) -> Bool {
    guard !chunks.isEmpty else {
      chunks = [[element]]
      count = 1
      return true
    }
    // Past the last element: it goes at the end of the last chunk.
    let index = min(chunk(for: element), chunks.count - 1)
    let position = Self.position(of: element, in: chunks[index])
    if position < chunks[index].count && chunks[index][position] == element { return false }
    chunks[index].insert(element, at: position)
    count += 1
    if chunks[index].count > chunkCapacity {
      let upper = Array(chunks[index][(chunkCapacity / 2)...])
      chunks[index].removeSubrange((chunkCapacity / 2)...)
      chunks.insert(upper, at: index + 1)
    }
    return true
  }

  /// Takes `element` out; false when it was not there.
  @discardableResult
  mutating func remove(_ element: Element) -> Bool {
    let index = chunk(for: element)
    guard index < chunks.count else { return false }
    let position = Self.position(of: element, in: chunks[index])
    guard chunks[index][position] == element else { return false }
    chunks[index].remove(at: position)
    count -= 1
    if chunks[index].isEmpty {
      chunks.remove(at: index)
    } else if index + 1 < chunks.count && chunks[index].count + chunks[index + 1].count <= chunkCapacity / 2 {
      // Keeps chunks from thinning out into many small ones after many removals.
      chunks[index].append(contentsOf: chunks[index + 1])
      chunks.remove(at: index + 1)
    }
    return true
  }

  /// Calls `body` with each element not below `lowerBound` (every element when nil), in order,
  /// until it returns false.
  func forEach(from lowerBound: Element? = nil, _ body: (Element) -> Bool) {
    var index = 0
    var position = 0
    if let lowerBound {
      index = chunk(for: lowerBound)
      guard index < chunks.count else { return }
      position = Self.position(of: lowerBound, in: chunks[index])
    }
    while index < chunks.count {
      let chunk = chunks[index]
      while position < chunk.count {
        if !body(chunk[position]) { return }
        position += 1
      }
      index += 1
      position = 0
    }
  }

  /// Every element, in order.
  var elements: [Element] { chunks.flatMap { $0 } }
}
