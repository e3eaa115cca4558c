import Foundation
import GRPCShimTransport
import GRPCCore
import Logging
import MaaSContracts
import MaaSRuntime
import Synchronization

/// Spends the API-call budget at the quota service: one unit per admitted call, each call
/// admitted or refused against the tenant's true total, as quota's `Consume` decides.
///
/// Charges of one tenant that arrive while a Consume for that tenant is in flight wait for it,
/// then go together as one Consume of their number (group commit, as the quota service does with
/// its database writes): under load, one Consume per several calls instead of one per call; a
/// charge that finds nothing in flight goes at once, so a lone call waits for no batch. Consume
/// is all or nothing, so:
/// - admitted: every call of the batch is admitted, and the counter moved by exactly their number;
/// - RESOURCE_EXHAUSTED for a batch of more than one: the budget may still hold some of them, so
///   each is asked again alone, in arrival order: exactly those that fit are admitted, the others
///   refused with quota's own message (`... asked 1, resets ...`), as if each had come alone;
/// - any other failure (UNAVAILABLE, DEADLINE_EXCEEDED, ...) fails every call of the batch with it.
///
/// When a batch goes: the first of a run at once, as does the next after a batch of one call
/// (light load: nobody waits for company). After a batch of several, the next goes once one of
/// its calls needs its answer: a charge the caller waits for before doing anything (`urgency`
/// nil), or a read whose answer is ready (`ChargeUrgency`, signalled by the interceptor). Under
/// load the reads of a tenant's calls overlap their charges, so a batch gathers every call that
/// arrived while the first of them was being read, not only those that arrived during the
/// previous Consume: at 16 callers of `make bench-gateway`, fewer Consumes (each a durable write
/// at quota), less CPU per call, and a lower p99. Every call's handler ends (its deadline and the
/// upstream timeout bound it) or its caller goes away (taking its charge out), so a batch never
/// waits forever.
///
/// Charges with an idempotency key (a retry must be recognised and replay its first answer) are
/// never combined: each is its own Consume under its own key.
///
/// A caller that goes away (cancelled, or its deadline passed) while waiting is taken out of the
/// next batch and charged nothing; one whose batch is already at the quota service may be
/// charged, as a call cancelled during its own Consume always could be. A batch's Consume is
/// bounded by the latest deadline among its calls (the upstream timeout if one has none), and
/// runs apart from any caller's task, so one caller hanging up does not fail the others.
final class ApiCallCharger: Sendable {
  /// One Consume at the quota service, bounded by `timeout`; throws quota's status.
  typealias Consume = @Sendable (Maas_Quota_V1_ConsumeRequest, CallTimeout) async throws -> Void

  private let consume: Consume
  private let upstream: UpstreamPolicy
  private let logger: Logger
  /// Per tenant with a batch running: the charges waiting for the next one.
  private let queues = Mutex<[String: TenantQueue]>([:])
  /// Tenants whose most recent charge was refused for their budget.
  private let refusedTenants = Mutex<Set<String>>([])

  init(upstream: UpstreamPolicy, logger: Logger, consume: @escaping Consume) {
    self.consume = consume
    self.upstream = upstream
    self.logger = logger
  }

  /// Consumes through `quota`: in the service, the quota client's transport called straight
  /// through (`ShimClientTransport.unaryCall`); any `GRPCClient` answers alike.
  convenience init(quota: any UnaryChannel, upstream: UpstreamPolicy, logger: Logger) {
    self.init(upstream: upstream, logger: logger) { request, timeout in
      _ = try await quota.unary(
        request, metadata: timeout.metadata, descriptor: Maas_Quota_V1_Quota.Method.Consume.descriptor,
        answering: Maas_Quota_V1_ConsumeResponse.self)
    }
  }

  /// Spends one API call of `tenant`; returns once quota admitted it.
  ///
  /// - Parameters:
  ///   - idempotencyKey: the Consume key derived from the caller's own key (see
  ///     `ForwardedKey.forConsume`), or nil when the caller sent none: only those are combined.
  ///   - deadline: when the caller stops waiting.
  ///   - urgency: signalled when the caller needs the outcome (its read's answer is ready); nil
  ///     when it needs it now (it waits for the charge before doing anything).
  /// - Throws: `RPCError`: quota's RESOURCE_EXHAUSTED and other statuses, as `UpstreamPolicy`
  ///   passes them on; CANCELLED when the caller went away while waiting.
  func charge(
    tenant: String, idempotencyKey: String?, deadline: ContinuousClock.Instant?, urgency: ChargeUrgency? = nil
  ) async throws {
    do {
      try await self.chargeOnce(tenant: tenant, idempotencyKey: idempotencyKey, deadline: deadline, urgency: urgency)
      self.refusedTenants.withLock { _ = $0.remove(tenant) }
    } catch let error as RPCError where error.code == .resourceExhausted {
      self.refusedTenants.withLock { _ = $0.insert(tenant) }
      throw error
    }
  }

  /// Whether `tenant`'s most recent charge was refused for its budget (RESOURCE_EXHAUSTED).
  func lastChargeRefused(tenant: String) -> Bool {
    self.refusedTenants.withLock { $0.contains(tenant) }
  }

  private func chargeOnce(
    tenant: String, idempotencyKey: String?, deadline: ContinuousClock.Instant?, urgency: ChargeUrgency?
  ) async throws {
    if let idempotencyKey {
      try await self.consume(tenant: tenant, amount: 1, key: idempotencyKey, deadline: deadline)
      return
    }
    let waiter = Waiter(deadline: deadline, urgency: urgency)
    let leads = self.queues.withLock { queues in
      if queues[tenant] != nil {
        queues[tenant]!.waiters.append(waiter)
        return false
      }
      queues[tenant] = TenantQueue(waiters: [waiter])
      return true
    }
    if leads {
      // Not a child of this call's task: its cancellation must not fail the batch.
      Task { await self.run(tenant) }
    } else if let urgency {
      urgency.whenUrgent { self.wakeRun(of: tenant) }
    } else {
      self.wakeRun(of: tenant)
    }
    try await withTaskCancellationHandler {
      try await waiter.outcome()
    } onCancel: {
      // Still waiting for a batch: out of it, and nothing is spent. The run may be waiting for
      // this very charge.
      self.queues.withLock { queues in queues[tenant]?.waiters.removeAll { $0 === waiter } }
      waiter.finish(.failure(RPCError(code: .cancelled, message: "the call was cancelled")))
      self.wakeRun(of: tenant)
    }
  }

  /// Runs batches of `tenant` until none is waiting. The first batch is the charge that started
  /// the run; each next one is what arrived while the previous was at the quota service, and
  /// after a batch of several it also waits until one of its calls needs the outcome.
  private func run(_ tenant: String) async {
    var previousBatch = 0
    while true {
      if previousBatch > 1 { await self.untilOneIsUrgent(tenant) }
      let batch = self.queues.withLock { queues -> [Waiter] in
        guard let waiting = queues[tenant]?.waiters, !waiting.isEmpty else {
          queues[tenant] = nil
          return []
        }
        // The key stays, empty: charges arriving now wait for the next batch of this run.
        queues[tenant] = TenantQueue()
        return waiting
      }
      guard !batch.isEmpty else { return }
      previousBatch = batch.count
      await self.settle(batch, tenant: tenant)
    }
  }

  /// Returns once a waiting charge of `tenant` is urgent, or none is waiting.
  private func untilOneIsUrgent(_ tenant: String) async {
    // A wake may be stale (a call of an earlier batch whose answer came after its charge), so
    // the condition is checked again after each.
    var satisfied = false
    while !satisfied {
      await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        satisfied = self.queues.withLock { queues in
          guard let waiters = queues[tenant]?.waiters, !waiters.isEmpty, !waiters.contains(where: \.isUrgent) else {
            return true
          }
          queues[tenant]!.wake = continuation
          return false
        }
        if satisfied { continuation.resume() }
      }
    }
  }

  /// Lets `tenant`'s run go on if it is waiting for an urgent charge.
  private func wakeRun(of tenant: String) {
    let wake = self.queues.withLock { queues -> CheckedContinuation<Void, Never>? in
      defer { queues[tenant]?.wake = nil }
      return queues[tenant]?.wake
    }
    wake?.resume()
  }

  private func settle(_ batch: [Waiter], tenant: String) async {
    let deadline = batch.contains { $0.deadline == nil } ? nil : batch.compactMap(\.deadline).max()
    do {
      try await self.consume(tenant: tenant, amount: Int64(batch.count), key: UUID().uuidString, deadline: deadline)
      for waiter in batch { waiter.finish(.success(())) }
    } catch let error as RPCError where error.code == .resourceExhausted && batch.count > 1 {
      // Not all of them fit; perhaps some do. One by one, in the order they came.
      for waiter in batch where !waiter.isFinished {
        do {
          try await self.consume(tenant: tenant, amount: 1, key: UUID().uuidString, deadline: waiter.deadline)
          waiter.finish(.success(()))
        } catch {
          waiter.finish(.failure(error))
        }
      }
    } catch {
      for waiter in batch { waiter.finish(.failure(error)) }
    }
  }

  /// Charges of `tenant` waiting for the next batch (for tests).
  func waitingCharges(tenant: String) -> Int {
    self.queues.withLock { $0[tenant]?.waiters.count ?? 0 }
  }

  private func consume(tenant: String, amount: Int64, key: String, deadline: ContinuousClock.Instant?) async throws {
    let request = Maas_Quota_V1_ConsumeRequest.with {
      $0.tenantID = tenant
      $0.resource = .apiCallsPerDay
      $0.amount = amount
      $0.idempotencyKey = key
    }
    try await self.upstream.call("quota service", deadline: deadline, logger: self.logger) { timeout in
      try await self.consume(request, timeout)
    }
  }
}

/// A tenant's charges waiting for the next batch, and its run when it waits for one of them to
/// become urgent.
private struct TenantQueue {
  var waiters: [Waiter] = []
  var wake: CheckedContinuation<Void, Never>?
}

/// When a caller needs the outcome of its charge. A read's charge is made while the read runs
/// (`TenantAuthInterceptor`); the charge becomes urgent once the read's answer is ready.
final class ChargeUrgency: Sendable {
  private struct State {
    var urgent = false
    var onUrgent: (@Sendable () -> Void)?
  }

  private let state: Mutex<State>

  init() { self.state = Mutex(State()) }

  var isUrgent: Bool { self.state.withLock { $0.urgent } }

  /// The caller needs the outcome now.
  func signal() {
    let hook = self.state.withLock { state -> (@Sendable () -> Void)? in
      state.urgent = true
      defer { state.onUrgent = nil }
      return state.onUrgent
    }
    hook?()
  }

  /// Runs `hook` once, when `signal()` is called, or now if it was.
  fileprivate func whenUrgent(_ hook: @escaping @Sendable () -> Void) {
    let now = self.state.withLock { state in
      if state.urgent { return true }
      state.onUrgent = hook
      return false
    }
    if now { hook() }
  }
}

/// One charge waiting for its batch: its outcome is delivered once (the batch's, or the caller's
/// cancellation, whichever comes first), before or after the caller starts waiting for it.
private final class Waiter: Sendable {
  let deadline: ContinuousClock.Instant?
  /// Nil: needed at once.
  private let urgency: ChargeUrgency?

  var isUrgent: Bool { self.urgency?.isUrgent ?? true }

  private enum State {
    case pending
    case waiting(CheckedContinuation<Void, any Error>)
    case finished(Result<Void, any Error>)
    case delivered
  }

  private let state = Mutex(State.pending)

  init(deadline: ContinuousClock.Instant?, urgency: ChargeUrgency?) {
    self.deadline = deadline
    self.urgency = urgency
  }

  var isFinished: Bool {
    self.state.withLock { state in
      switch state {
      case .pending, .waiting: false
      case .finished, .delivered: true
      }
    }
  }

  func outcome() async throws {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
      let ready = self.state.withLock { state -> Result<Void, any Error>? in
        guard case .finished(let outcome) = state else {
          state = .waiting(continuation)
          return nil
        }
        state = .delivered
        return outcome
      }
      if let ready { continuation.resume(with: ready) }
    }
  }

  /// Delivers `outcome` unless one was delivered already.
  func finish(_ outcome: Result<Void, any Error>) {
    let continuation = self.state.withLock { state -> CheckedContinuation<Void, any Error>? in
      switch state {
      case .pending:
        state = .finished(outcome)
        return nil
      case .waiting(let continuation):
        state = .delivered
        return continuation
      case .finished, .delivered:
        return nil
      }
    }
    continuation?.resume(with: outcome)
  }
}
