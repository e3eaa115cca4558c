import MaaSRuntime
import MaaSTesting
import Synchronization
import Testing

/// An `apply` that records every batch it is given, answers each item with its batch's number,
/// and can hold a batch until released or fail the next one.
final class RecordingApply: Sendable {
  private struct State {
    var batches: [(key: String, items: [Int])] = []
    var holding = false
    var held: [CheckedContinuation<Void, Never>] = []
    var failNext = false
  }

  struct Refused: Error, Equatable {}

  private let state = Mutex(State())

  var batches: [[Int]] { state.withLock { $0.batches.map(\.items) } }
  func batches(of key: String) -> [[Int]] { state.withLock { $0.batches.filter { $0.key == key }.map(\.items) } }
  var heldCount: Int { state.withLock { $0.held.count } }

  /// Batches that start from now on wait, after being recorded, until `release()`.
  func hold() { state.withLock { $0.holding = true } }

  func release() {
    let held = state.withLock { state in
      defer { state.held = []; state.holding = false }
      return state.held
    }
    for continuation in held { continuation.resume() }
  }

  func failNext() { state.withLock { $0.failNext = true } }

  func apply(_ key: String, _ items: [Int]) async throws -> [Int] {
    let (number, holding, fails) = state.withLock { state in
      state.batches.append((key, items))
      defer { state.failNext = false }
      return (state.batches.count, state.holding, state.failNext)
    }
    if holding { await withCheckedContinuation { continuation in state.withLock { $0.held.append(continuation) } } }
    if fails { throw Refused() }
    return items.map { _ in number }
  }
}

@Suite("Keyed batches (group commit)", .timeLimit(.minutes(1)))
struct KeyedBatcherTests {
  let recorder = RecordingApply()
  let batcher = KeyedBatcher<String, Int, Int>(maxBatch: 3)

  func submit(_ item: Int, _ key: String = "a") -> Task<Int, any Error> {
    Task { [batcher, recorder] in try await batcher.submit(item, for: key) { try await recorder.apply($0, $1) } }
  }

  /// Starts item 0, held inside `apply`, then `items` one after another, so their order is known.
  func heldBatchAndQueue(_ items: [Int], _ key: String = "a") async -> (first: Task<Int, any Error>, queued: [Task<Int, any Error>]) {
    recorder.hold()
    let first = submit(0, key)
    #expect(await waitUntil { recorder.heldCount == 1 }, "the condition never held")
    var queued: [Task<Int, any Error>] = []
    for (position, item) in items.enumerated() {
      queued.append(submit(item, key))
      // Queued in this order: each is waiting before the next is submitted.
      #expect(await waitUntil { batcher.waiting(for: key) == position + 1 }, "item \(item) never queued")
    }
    return (first, queued)
  }

  @Test("a lone item is applied at once, in a batch of its own")
  func loneItem() async throws {
    #expect(try await submit(7).value == 1)
    #expect(recorder.batches == [[7]])
  }

  @Test("items that arrive while a batch is applied go together in the next one, in arrival order")
  func itemsArrivingDuringABatchGoTogether() async throws {
    let (first, queued) = await heldBatchAndQueue([1, 2])
    #expect(recorder.batches == [[0]], "nothing submitted later joined the batch already running")
    recorder.release()
    #expect(try await first.value == 1)
    #expect(try await queued[0].value == 2)
    #expect(try await queued[1].value == 2)
    #expect(recorder.batches == [[0], [1, 2]])
  }

  @Test("a batch holds at most maxBatch items; the rest go in the next one")
  func batchesAreBounded() async throws {
    let (first, queued) = await heldBatchAndQueue([1, 2, 3, 4])
    recorder.release()
    _ = try await first.value
    for task in queued { _ = try await task.value }
    #expect(recorder.batches == [[0], [1, 2, 3], [4]])
  }

  @Test("another key's item does not wait for this key's batch")
  func keysAreIndependent() async throws {
    recorder.hold()
    let first = submit(0, "a")
    #expect(await waitUntil { recorder.heldCount == 1 }, "the condition never held")
    let other = submit(9, "b")
    #expect(await waitUntil { recorder.heldCount == 2 }, "the condition never held")
    #expect(recorder.batches(of: "b") == [[9]], "b's batch started while a's was held")
    recorder.release()
    _ = try await first.value
    _ = try await other.value
  }

  @Test("a batch that throws fails each of its items, and the batches before and after it are answered")
  func failureFailsTheBatchOnly() async throws {
    let (first, queued) = await heldBatchAndQueue([1, 2])
    recorder.failNext()
    recorder.release()
    #expect(try await first.value == 1, "the batch running when the failure was set up is not failed")
    await #expect(throws: RecordingApply.Refused.self) { try await queued[0].value }
    await #expect(throws: RecordingApply.Refused.self) { try await queued[1].value }
    #expect(try await submit(3).value == 3)
    #expect(recorder.batches == [[0], [1, 2], [3]])
  }

  @Test("callers that ask while a shared run is going share the next run, and each gets its answer")
  func sharedRuns() async throws {
    let runs = KeyedBatcher<String, Void, Int>()
    let share = { [recorder] in Task { try await runs.share(for: "a") { key in try await recorder.apply(key, [0])[0] } } }
    recorder.hold()
    let first = share()
    #expect(await waitUntil { recorder.heldCount == 1 }, "the first run is held")
    let later = (0..<5).map { _ in share() }
    #expect(await waitUntil { runs.waiting(for: "a") == 5 }, "the five callers never queued behind the held run")
    recorder.release()
    #expect(try await first.value == 1)
    var answers: [Int] = []
    for caller in later { answers.append(try await caller.value) }
    #expect(answers == [2, 2, 2, 2, 2], "the five callers were answered by one run, the second")
    #expect(recorder.batches.count == 2)
  }
}
