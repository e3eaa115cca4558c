public import Logging
public import ServiceLifecycle

/// Background work a service repeats every `interval` until graceful shutdown (sweeps, retries,
/// reloads): a round that fails is logged and the next round tries again, and shutdown never
/// waits out a sleep.
public struct PeriodicTask: Service {
  let name: String
  let interval: Duration
  let delayFirstRound: Bool
  let logger: Logger
  let round: @Sendable () async throws -> Void

  /// - Parameters:
  ///   - name: what the work is, for the log ("idempotency sweep").
  ///   - delayFirstRound: wait `interval` before the first round (work that is pointless at start).
  ///   - round: one round; a `CancellationError` ends the task quietly.
  public init(
    _ name: String, every interval: Duration, delayFirstRound: Bool = false, logger: Logger,
    round: @escaping @Sendable () async throws -> Void
  ) {
    self.name = name
    self.interval = interval
    self.delayFirstRound = delayFirstRound
    self.logger = logger
    self.round = round
  }

  public func run() async throws {
    // Returns at graceful shutdown instead of sleeping through it.
    await cancelWhenGracefulShutdown {
      if delayFirstRound { try? await Task.sleep(for: interval) }
      while !Task.isCancelled {
        do {
          try await round()
        } catch is CancellationError {
          return
        } catch {
          logger.warning("\(name) failed; retrying next round", metadata: ["error": "\(error)"])
        }
        try? await Task.sleep(for: interval)
      }
    }
  }
}
