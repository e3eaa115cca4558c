import Synchronization

/// Group commit, keyed: items with the same key that arrive while a batch for that key is being
/// applied wait, then go together in the next batch. A lone item goes at once; under load, one
/// round trip (a transaction, a read) serves many callers instead of one each.
///
/// Two guarantees callers build on:
/// - at most one batch per key is applied at a time in this process, so a process never contends
///   with itself for what the key stands for (a counter row, say);
/// - an item's batch starts after the item was submitted, so what the batch reads is at least as
///   new as anything committed before the caller asked (a read shared this way is never one
///   that started earlier).
///
/// A batch is applied in a task of its own, so a caller that goes away does not fail the others;
/// it still waits for its batch's answer (batches are short: one round trip or two).
public final class KeyedBatcher<Key: Hashable & Sendable, Item: Sendable, Answer: Sendable>: Sendable {
  /// Applies one batch (items in arrival order); returns one answer per item, in the same order.
  public typealias Apply = @Sendable (Key, [Item]) async throws -> [Answer]

  private struct Waiter {
    var item: Item
    var continuation: CheckedContinuation<Answer, any Error>
  }

  /// Per key with a batch running: the items waiting for the next one.
  private let queues = Mutex<[Key: [Waiter]]>([:])
  private let maxBatch: Int

  /// - Parameter maxBatch: most items applied in one batch; the rest wait for the next.
  public init(maxBatch: Int = .max) {
    precondition(maxBatch > 0)
    self.maxBatch = maxBatch
  }

  /// Items of `key` waiting for the next batch (those of the batch being applied not counted).
  public func waiting(for key: Key) -> Int { queues.withLock { $0[key]?.count ?? 0 } }

  /// Queues `item` under `key` and returns its answer once its batch has been applied.
  ///
  /// - Parameter apply: applies a batch; what it throws fails every item of the batch. The
  ///   submitter that finds the key idle starts the drain, and its `apply` applies every batch of
  ///   it, so every submitter of a key must pass the same one.
  /// - Throws: what `apply` threw for the item's batch.
  public func submit(_ item: Item, for key: Key, apply: @escaping Apply) async throws -> Answer {
    try await withCheckedThrowingContinuation { continuation in
      // The queue's presence marks a drain as running: whoever creates it starts the drain.
      let startsDrain = queues.withLock { queues in
        let idle = queues[key] == nil
        queues[key, default: []].append(Waiter(item: item, continuation: continuation))
        return idle
      }
      if startsDrain {
        Task { await self.drain(key, apply: apply) }
      }
    }
  }

  private func drain(_ key: Key, apply: Apply) async {
    while true {
      // Take the waiting items, but leave the (possibly empty) queue in place while they are
      // applied, so that newcomers wait for the next round instead of starting a second drain.
      let batch: [Waiter] = queues.withLock { queues in
        guard let queue = queues[key], !queue.isEmpty else {
          queues[key] = nil
          return []
        }
        let taken = Array(queue.prefix(maxBatch))
        queues[key] = Array(queue.dropFirst(taken.count))
        return taken
      }
      guard !batch.isEmpty else { return }
      do {
        let answers = try await apply(key, batch.map(\.item))
        precondition(answers.count == batch.count, "a batch is answered item by item")
        for (waiter, answer) in zip(batch, answers) { waiter.continuation.resume(returning: answer) }
      } catch {
        for waiter in batch { waiter.continuation.resume(throwing: error) }
      }
    }
  }
}

extension KeyedBatcher where Item == Void {
  /// A shared run: callers of `key` that ask while a run is going share the next one, and each
  /// gets its answer. `run` starts after they asked, so its answer is as fresh as one of their own.
  /// - Throws: what that run threw.
  public func share(for key: Key, _ run: @escaping @Sendable (Key) async throws -> Answer) async throws -> Answer {
    try await submit((), for: key) { key, callers in
      let answer = try await run(key)
      return Array(repeating: answer, count: callers.count)
    }
  }
}
