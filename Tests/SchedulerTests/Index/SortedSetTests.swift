import Testing

@testable import Scheduler

/// One row: operations on a set with small chunks (so that chunks split and merge), then what
/// it must hold and what a walk from a bound meets.
struct SortedSetCase: Sendable, CustomTestStringConvertible {
  enum Step: Sendable {
    case insert([Int])
    case remove([Int])
  }

  var testDescription: String
  var steps: [Step]
  var elements: [Int]
  /// A walk from this bound, stopping after `take` elements.
  var walkFrom: Int? = nil
  var take: Int = .max
  var walked: [Int]? = nil
}

let sortedSetCases: [SortedSetCase] = [
  .init(testDescription: "elements come out in order whatever order they went in",
        steps: [.insert([5, 1, 9, 3, 7])], elements: [1, 3, 5, 7, 9]),
  .init(testDescription: "inserting an element twice keeps one",
        steps: [.insert([4, 4, 2, 4])], elements: [2, 4]),
  .init(testDescription: "removing takes out exactly the elements named, and ignores absent ones",
        steps: [.insert(Array(1...10)), .remove([3, 11, 7, 1])], elements: [2, 4, 5, 6, 8, 9, 10]),
  .init(testDescription: "many inserts split chunks and keep the order across them",
        steps: [.insert(Array((0..<50).reversed()))], elements: Array(0..<50)),
  .init(testDescription: "removing most elements merges thin chunks and keeps the rest in order",
        steps: [.insert(Array(0..<60)), .remove(Array(0..<60).filter { $0 % 7 != 0 })], elements: [0, 7, 14, 21, 28, 35, 42, 49, 56]),
  .init(testDescription: "removing everything leaves an empty set that takes inserts again",
        steps: [.insert(Array(0..<20)), .remove(Array(0..<20)), .insert([3, 1])], elements: [1, 3]),
  .init(testDescription: "a walk starts at the first element not below its bound",
        steps: [.insert([10, 20, 30, 40])], elements: [10, 20, 30, 40], walkFrom: 25, walked: [30, 40]),
  .init(testDescription: "a walk from an element present starts at it",
        steps: [.insert(Array(0..<40))], elements: Array(0..<40), walkFrom: 17, take: 3, walked: [17, 18, 19]),
  .init(testDescription: "a walk from beyond the last element meets nothing",
        steps: [.insert([1, 2, 3])], elements: [1, 2, 3], walkFrom: 4, walked: []),
  .init(testDescription: "a walk stops when its body says so, across chunk boundaries",
        steps: [.insert(Array(0..<30))], elements: Array(0..<30), walkFrom: 2, take: 9, walked: Array(2..<11)),
]

@Suite("Sorted set (the placement orders' storage)")
struct SortedSetTests {
  @Test(arguments: sortedSetCases)
  func operations(_ row: SortedSetCase) {
    var set = SortedSet<Int>(chunkCapacity: 4)
    var model = Set<Int>()
    for step in row.steps {
      switch step {
      case .insert(let values):
        for value in values { #expect(set.insert(value) == model.insert(value).inserted) }
      case .remove(let values):
        for value in values { #expect(set.remove(value) == (model.remove(value) != nil)) }
      }
    }
    #expect(set.elements == row.elements)
    #expect(set.count == row.elements.count)
    for value in row.elements { #expect(set.contains(value)) }
    if let walked = row.walked {
      var seen: [Int] = []
      set.forEach(from: row.walkFrom) { element in
        seen.append(element)
        return seen.count < row.take
      }
      #expect(seen == walked)
    }
  }

  @Test("a long random run of inserts and removals always matches a sorted array")
  func randomRun() {
    var set = SortedSet<Int>(chunkCapacity: 8)
    var model = Set<Int>()
    var random = SeededRandom(seed: 42)
    for _ in 0..<5_000 {
      let value = Int(random.next() % 300)
      if random.next() % 3 == 0 {
        #expect(set.remove(value) == (model.remove(value) != nil))
      } else {
        #expect(set.insert(value) == model.insert(value).inserted)
      }
    }
    #expect(set.elements == model.sorted())
  }
}

/// SplitMix64, seeded: the randomized tests replay the same cases every run.
struct SeededRandom: RandomNumberGenerator {
  private var state: UInt64
  init(seed: UInt64) { self.state = seed }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
