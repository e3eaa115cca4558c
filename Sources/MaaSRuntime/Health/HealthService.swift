public import GRPCCore
public import MaaSContracts
import Synchronization

/// The standard `grpc.health.v1.Health` service, so that Kubernetes' `grpc:` probes, load
/// balancers and any stock client can ask whether this server takes calls.
///
/// The overall service, named by the empty string, starts SERVING. Names are the fully
/// qualified gRPC service names (`maas.quota.v1.Quota`); `MaaSServer` registers each service it
/// mounts as SERVING.
///
/// - Check answers the current status, or fails with NOT_FOUND for a name never set.
/// - Watch sends the current status at once (SERVICE_UNKNOWN for a name never set) and then
///   each change, until the client cancels or the server ends its watches at shutdown. A slow
///   reader may miss intermediate statuses but always receives the latest.
public final class HealthService: Grpc_Health_V1_Health.ServiceProtocol, Sendable {
  /// SERVING, NOT_SERVING, or SERVICE_UNKNOWN (which Watch alone reports).
  public typealias Status = Grpc_Health_V1_HealthCheckResponse.ServingStatus

  private struct State {
    var statuses: [String: Status] = ["": .serving]
    var watchers: [String: [Int: AsyncStream<Status>.Continuation]] = [:]
    var nextWatcher = 0
    /// Set by `markAllNotServing`: a server on its way down never reports SERVING again.
    var shuttingDown = false
    /// Set by `endWatches`: new watches get their status and end straight away.
    var watchesEnded = false
  }

  private let state = Mutex(State())

  /// A health service whose overall status ("") is SERVING.
  public init() {}

  /// Sets the status of the service `name` ("" for the whole server) and tells its watchers.
  ///
  /// Ignored once `markAllNotServing()` has been called: a background task must not announce a
  /// server that is shutting down as healthy again.
  public func setStatus(_ status: Status, forService name: String) {
    // Yielding under the lock keeps concurrent changes in the same order for every watcher;
    // yield only queues, so it cannot call back into this lock.
    self.state.withLock { state in
      guard !state.shuttingDown, state.statuses[name] != status else { return }
      state.statuses[name] = status
      for watcher in state.watchers[name]?.values ?? [:].values { watcher.yield(status) }
    }
  }

  /// The status Check would answer for `name`, or nil when it was never set.
  public func status(forService name: String) -> Status? {
    self.state.withLock { $0.statuses[name] }
  }

  /// Marks every known service, and the server itself, NOT_SERVING, for good: called first on
  /// shutdown so that health-checking load balancers stop routing here before the drain.
  public func markAllNotServing() {
    self.state.withLock { state in
      state.shuttingDown = true
      for name in state.statuses.keys where state.statuses[name] != .notServing {
        state.statuses[name] = .notServing
        for watcher in state.watchers[name]?.values ?? [:].values { watcher.yield(.notServing) }
      }
    }
  }

  /// Ends every Watch stream (after any status already queued for it) and makes later watches
  /// end after their first message. Called just before the server drains, because a watch runs
  /// until cancelled and would otherwise hold the drain open for the whole grace period.
  public func endWatches() {
    // Outside the lock: finishing runs each stream's onTermination, which takes the lock.
    let watchers = self.state.withLock { state -> [AsyncStream<Status>.Continuation] in
      state.watchesEnded = true
      defer { state.watchers = [:] }
      return state.watchers.values.flatMap(\.values)
    }
    for watcher in watchers { watcher.finish() }
  }

  /// The current status of `request.message.service` ("" for the server).
  ///
  /// - Throws: `RPCError` NOT_FOUND when that name was never given a status.
  public func check(
    request: ServerRequest<Grpc_Health_V1_HealthCheckRequest>,
    context: ServerContext
  ) async throws -> ServerResponse<Grpc_Health_V1_HealthCheckResponse> {
    let name = request.message.service
    guard let status = self.status(forService: name) else {
      throw RPCError(code: .notFound, message: "Unknown service \(String(reflecting: name)).")
    }
    return ServerResponse(message: .with { $0.status = status })
  }

  /// Streams the status of `request.message.service`: the current one (SERVICE_UNKNOWN for a
  /// name never set) at once, then each change, until the client cancels or `endWatches()`.
  public func watch(
    request: ServerRequest<Grpc_Health_V1_HealthCheckRequest>,
    context: ServerContext
  ) async throws -> StreamingServerResponse<Grpc_Health_V1_HealthCheckResponse> {
    let name = request.message.service
    // Only the latest status matters to a watcher, so a slow one keeps just that.
    let (statuses, continuation) = AsyncStream.makeStream(of: Status.self, bufferingPolicy: .bufferingNewest(1))
    // Registering and reading the current status under one lock means no change falls between.
    let id = self.state.withLock { state -> Int? in
      continuation.yield(state.statuses[name] ?? .serviceUnknown)
      if state.watchesEnded {
        continuation.finish()
        return nil
      }
      let id = state.nextWatcher
      state.nextWatcher += 1
      state.watchers[name, default: [:]][id] = continuation
      return id
    }
    if let id {
      continuation.onTermination = { [weak self] _ in
        self?.state.withLock { state in
          state.watchers[name]?[id] = nil
          if state.watchers[name]?.isEmpty == true { state.watchers[name] = nil }
        }
      }
    }

    return StreamingServerResponse { writer in
      var last: Status?
      // Iteration ends when the RPC is cancelled (the handler's task is) or the watch is ended.
      for await status in statuses where status != last {
        try await writer.write(.with { $0.status = status })
        last = status
      }
      return [:]
    }
  }
}
