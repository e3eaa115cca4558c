import Synchronization

/// Group commit for Consume: calls for the same tenant and resource that arrive while a
/// transaction for that pair is running wait and then go in the next one, together.
///
/// Why: every Consume of a tenant must serialise on that tenant's counter row, so one hot tenant
/// is limited by how many row-lock-and-commit cycles Postgres does per second (what `pgbench`
/// measures with `UPDATE ... SET used = used + 1`). Applying a batch per cycle multiplies that by
/// the batch size, and each call is still answered only after its own transaction commits: no
/// answer is given for usage that is not durable, and no quota is ever handed out ahead of time.
///
/// At most one transaction per pair runs in this process at a time, so this process never
/// contends with itself for the row; other pairs run in parallel, up to the pool's size.
final class ConsumeBatcher: Sendable {
  typealias Answer = Result<ConsumeReceipt, QuotaError>
  typealias Apply = @Sendable ([ConsumeCommand]) async throws -> [Answer]

  private struct Key: Hashable {
    var tenant: String
    var resource: QuotaResource
  }

  private struct Waiter {
    var command: ConsumeCommand
    var continuation: CheckedContinuation<Answer, any Error>
  }

  private struct State {
    var queues: [Key: [Waiter]] = [:]
  }

  private let state = Mutex(State())
  let maxBatch: Int

  init(maxBatch: Int) {
    precondition(maxBatch > 0)
    self.maxBatch = maxBatch
  }

  /// Queues `command` and returns its answer once the transaction it went in has finished.
  /// - Throws: what `apply` threw for the batch (every call in it gets the same error).
  func submit(_ command: ConsumeCommand, apply: @escaping Apply) async throws -> Answer {
    let key = Key(tenant: command.tenantID, resource: command.resource)
    return try await withCheckedThrowingContinuation { continuation in
      // The queue's presence marks a drain as running: whoever creates it starts the drain.
      let startsDrain = state.withLock { state in
        let idle = state.queues[key] == nil
        state.queues[key, default: []].append(Waiter(command: command, continuation: continuation))
        return idle
      }
      if startsDrain {
        Task { await self.drain(key, apply: apply) }
      }
    }
  }

  private func drain(_ key: Key, apply: Apply) async {
    while true {
      // Take the waiting calls, but leave the (possibly empty) queue in place while they run so
      // that newcomers wait for the next round instead of starting a second drain.
      let batch: [Waiter] = state.withLock { state in
        guard let queue = state.queues[key], !queue.isEmpty else {
          state.queues[key] = nil
          return []
        }
        let taken = Array(queue.prefix(maxBatch))
        state.queues[key] = Array(queue.dropFirst(taken.count))
        return taken
      }
      guard !batch.isEmpty else { return }
      do {
        let answers = try await apply(batch.map(\.command))
        for (waiter, answer) in zip(batch, answers) { waiter.continuation.resume(returning: answer) }
      } catch {
        for waiter in batch { waiter.continuation.resume(throwing: error) }
      }
    }
  }
}
