public import Logging
public import ServiceLifecycle

/// Background work a service repeats every `interval` until graceful shutdown (sweeps, retries,
/// reloads): a round that fails is logged and the next round tries again, and shutdown never
/// waits out a sleep. Work that holds something only in memory (a flush) asks for one last
/// round at graceful shutdown; background parts stop after the server has drained, so that round
/// sees everything the server's last calls left.
public struct PeriodicTask: Service {
  let name: String
  let interval: Duration
  let delayFirstRound: Bool
  let finalRound: Bool
  let logger: Logger
  let round: @Sendable () async throws -> Void

  /// - Parameters:
  ///   - name: what the work is, for the log ("idempotency sweep").
  ///   - delayFirstRound: wait `interval` before the first round (work that is pointless at start).
  ///   - finalRound: run one more round at graceful shutdown (not when the task is cancelled).
  ///   - round: one round; a `CancellationError` ends the task quietly.
  public init(
    _ name: String, every interval: Duration, delayFirstRound: Bool = false, finalRound: Bool = false,
    logger: Logger, round: @escaping @Sendable () async throws -> Void
  ) {
    self.name = name
    self.interval = interval
    self.delayFirstRound = delayFirstRound
    self.finalRound = finalRound
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
    // Graceful shutdown cancelled only the loop above; a cancelled task ends here.
    guard finalRound, !Task.isCancelled else { return }
    do {
      try await round()
    } catch {
      logger.warning("\(name) failed at shutdown", metadata: ["error": "\(error)"])
    }
  }
}
