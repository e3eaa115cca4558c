import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import MaaSTesting
import Synchronization
import Testing
@testable import Gateway

/// Quota's Consume in memory, all or nothing against one limit (its refusal worded as quota's),
/// recording every request; the next call can be held at the door until released, and calls can
/// be made to fail.
final class FakeConsume: Sendable {
  private struct State {
    var limit: Int64
    var used: Int64 = 0
    var requests: [Maas_Quota_V1_ConsumeRequest] = []
    var holdNext = false
    var held: CheckedContinuation<Void, Never>?
    var failure: RPCError?
  }

  private let state: Mutex<State>

  init(limit: Int64) { self.state = Mutex(State(limit: limit)) }

  var used: Int64 { state.withLock { $0.used } }
  var amounts: [Int64] { state.withLock { $0.requests.map(\.amount) } }
  var keys: [String] { state.withLock { $0.requests.map(\.idempotencyKey) } }
  var isHolding: Bool { state.withLock { $0.held != nil } }

  /// The next Consume waits, before quota decides anything, until `release()`.
  func holdNext() { state.withLock { $0.holdNext = true } }

  func release() { state.withLock { state in defer { state.held = nil }; return state.held }?.resume() }

  /// Consumes that start from now on fail with `failure`.
  func fail(with failure: RPCError) { state.withLock { $0.failure = failure } }

  func consume(_ request: Maas_Quota_V1_ConsumeRequest, _ timeout: CallTimeout) async throws {
    let (hold, failure) = state.withLock { state in
      state.requests.append(request)
      defer { state.holdNext = false }
      return (state.holdNext, state.failure)
    }
    if hold { await withCheckedContinuation { continuation in state.withLock { $0.held = continuation } } }
    if let failure { throw failure }
    try state.withLock { state in
      guard state.used + request.amount <= state.limit else {
        throw RPCError(
          code: .resourceExhausted,
          message: "api_calls_per_day: limit \(state.limit), used \(state.used), asked \(request.amount), resets 2026-11-23T00:00:00Z")
      }
      state.used += request.amount
    }
  }
}

/// A charger over a `FakeConsume`.
struct ChargerFixture {
  let quota: FakeConsume
  let charger: ApiCallCharger

  init(limit: Int64 = 100) {
    let quota = FakeConsume(limit: limit)
    self.quota = quota
    self.charger = ApiCallCharger(upstream: UpstreamPolicy(), logger: quietLogger) { try await quota.consume($0, $1) }
  }

  func charge(_ tenant: String = "tenant-a", key: String? = nil, urgency: ChargeUrgency? = nil) -> Task<Void, any Error> {
    Task { try await charger.charge(tenant: tenant, idempotencyKey: key, deadline: nil, urgency: urgency) }
  }

  /// Holds a batch of two at quota's door (so that the tenant's next batch waits for an urgent
  /// charge); returns its two charges.
  func heldBatchOfTwo() async throws -> [Task<Void, any Error>] {
    let (first, queued) = await heldChargeAndQueue(2)
    quota.holdNext()
    quota.release()
    try await first.value
    #expect(await waitUntil { quota.isHolding }, "the batch of two never reached quota")
    #expect(quota.amounts == [1, 2])
    return queued
  }

  /// Lets the held batch of two through.
  func releaseBatchOfTwo(_ pair: [Task<Void, any Error>]) async throws {
    quota.release()
    for task in pair { try await task.value }
  }

  /// Queues a charge whose answer is not ready yet.
  func notYetUrgentCharge() async -> (task: Task<Void, any Error>, urgency: ChargeUrgency) {
    let urgency = ChargeUrgency()
    let before = charger.waitingCharges(tenant: "tenant-a")
    let task = charge(urgency: urgency)
    #expect(await waitUntil { charger.waitingCharges(tenant: "tenant-a") == before + 1 }, "the charge never queued")
    return (task, urgency)
  }

  /// Starts a charge that quota holds at its door, then `count` charges queued behind it, one
  /// after another, so their order is known.
  func heldChargeAndQueue(_ count: Int) async -> (first: Task<Void, any Error>, queued: [Task<Void, any Error>]) {
    quota.holdNext()
    let first = charge()
    #expect(await waitUntil { quota.isHolding }, "the condition never held")
    var queued: [Task<Void, any Error>] = []
    for index in 0..<count {
      queued.append(charge())
      #expect(await waitUntil { charger.waitingCharges(tenant: "tenant-a") == index + 1 }, "the condition never held")
    }
    return (first, queued)
  }
}

@Suite("Charging API calls: concurrent charges of a tenant share a Consume, each still admitted on its own", .timeLimit(.minutes(1)))
struct ApiCallChargerTests {
  let fixture = ChargerFixture()
  var quota: FakeConsume { fixture.quota }
  var charger: ApiCallCharger { fixture.charger }

  func charge(_ tenant: String = "tenant-a", key: String? = nil) -> Task<Void, any Error> { fixture.charge(tenant, key: key) }

  func heldChargeAndQueue(_ count: Int) async -> (first: Task<Void, any Error>, queued: [Task<Void, any Error>]) {
    await fixture.heldChargeAndQueue(count)
  }

  @Test("a lone charge is one Consume of one, at once")
  func loneCharge() async throws {
    try await charge().value
    #expect(quota.amounts == [1])
    #expect(quota.used == 1)
  }

  @Test("charges that arrive while a Consume is in flight go together as one Consume of their number, under a fresh key")
  func coalesced() async throws {
    let (first, queued) = await heldChargeAndQueue(3)
    quota.release()
    try await first.value
    for task in queued { try await task.value }
    #expect(quota.amounts == [1, 3])
    #expect(quota.used == 4)
    #expect(Set(quota.keys).count == 2)
  }

  @Test("a batch the budget cannot hold is asked again call by call: exactly those that fit are admitted, in arrival order")
  func batchOverTheLimit() async throws {
    let limited = ChargerFixture(limit: 3)
    let (first, queued) = await limited.heldChargeAndQueue(4)
    limited.quota.release()
    try await first.value
    var outcomes: [RPCError?] = []
    for task in queued {
      outcomes.append(await thrownError { try await task.value } as? RPCError)
    }
    #expect(outcomes.map { $0?.code } == [nil, nil, .resourceExhausted, .resourceExhausted])
    #expect(outcomes[2]?.message.hasPrefix("api_calls_per_day: limit 3, used 3, asked 1, resets ") == true)
    #expect(limited.quota.amounts == [1, 4, 1, 1, 1, 1])
    #expect(limited.quota.used == 3)
  }

  @Test("a charge with an idempotency key goes alone under that key, without waiting for a batch")
  func keyedChargesGoAlone() async throws {
    let (first, queued) = await heldChargeAndQueue(1)
    try await charge(key: "gw:retry-key").value
    #expect(quota.keys.contains("gw:retry-key"))
    quota.release()
    try await first.value
    try await queued[0].value
    #expect(quota.amounts == [1, 1, 1])
  }

  @Test("a batch that fails fails each of its calls with the quota service's status")
  func failedBatch() async throws {
    let (first, queued) = await heldChargeAndQueue(2)
    quota.fail(with: RPCError(code: .unavailable, message: "quota database at 10.0.0.9 is down"))
    quota.release()
    try await first.value
    for task in queued {
      let failure = await thrownError { try await task.value } as? RPCError
      #expect(failure?.code == .unavailable)
      #expect(failure?.message.contains("10.0.0.9") == false)
    }
    #expect(quota.amounts == [1, 2])
    #expect(quota.used == 1)
  }

  @Test("a caller that goes away while waiting for its batch is CANCELLED and charged nothing")
  func cancelledWhileWaiting() async throws {
    let (first, queued) = await heldChargeAndQueue(2)
    queued[0].cancel()
    let cancelled = await thrownError { try await queued[0].value } as? RPCError
    #expect(cancelled?.code == .cancelled)
    #expect(charger.waitingCharges(tenant: "tenant-a") == 1)
    quota.release()
    try await first.value
    try await queued[1].value
    #expect(quota.amounts == [1, 1])
    #expect(quota.used == 2)
  }

  @Test("another tenant's charge does not wait for this tenant's Consume")
  func tenantsDoNotWait() async throws {
    let (first, _) = await heldChargeAndQueue(0)
    try await charge("tenant-b").value
    #expect(quota.isHolding)
    quota.release()
    try await first.value
    #expect(quota.amounts == [1, 1])
  }

  @Test("after a batch of several, the next waits until one of its calls needs its outcome, then takes them all")
  func nextBatchWaitsForAnUrgentCharge() async throws {
    let pair = try await fixture.heldBatchOfTwo()
    let (early, earlyUrgency) = await fixture.notYetUrgentCharge()
    let (late, _) = await fixture.notYetUrgentCharge()
    try await fixture.releaseBatchOfTwo(pair)
    // Nothing can be seen to happen without waiting a little: a batch that went would have reached
    // quota in this time.
    try await Task.sleep(for: .milliseconds(50))
    #expect(quota.amounts == [1, 2], "no Consume while no answer was ready")
    earlyUrgency.signal()
    try await early.value
    try await late.value
    #expect(quota.amounts == [1, 2, 2])
  }

  @Test("a charge its caller waits for before doing anything wakes the waiting batch at once, with the others in it")
  func chargeWithoutUrgencyGoesAtOnce() async throws {
    let pair = try await fixture.heldBatchOfTwo()
    let (reading, _) = await fixture.notYetUrgentCharge()
    try await fixture.releaseBatchOfTwo(pair)
    try await charge().value
    try await reading.value
    #expect(quota.amounts == [1, 2, 2])
  }

  @Test("an answer that was ready before its charge queued counts as urgent")
  func readyBeforeQueued() async throws {
    let pair = try await fixture.heldBatchOfTwo()
    let ready = ChargeUrgency()
    ready.signal()
    let charge = fixture.charge(urgency: ready)
    #expect(await waitUntil { charger.waitingCharges(tenant: "tenant-a") == 1 }, "the charge never queued")
    try await fixture.releaseBatchOfTwo(pair)
    try await charge.value
    #expect(quota.amounts == [1, 2, 1])
  }

  @Test("a batch waiting for an urgent charge ends when its only caller goes away, charging nothing")
  func waitingBatchEndsWhenItsCallerLeaves() async throws {
    let pair = try await fixture.heldBatchOfTwo()
    let (leaving, _) = await fixture.notYetUrgentCharge()
    try await fixture.releaseBatchOfTwo(pair)
    leaving.cancel()
    let cancelled = await thrownError { try await leaving.value } as? RPCError
    #expect(cancelled?.code == .cancelled)
    #expect(await waitUntil { charger.waitingCharges(tenant: "tenant-a") == 0 }, "the charge stayed queued")
    try await charge().value
    #expect(quota.amounts == [1, 2, 1])
    #expect(quota.used == 4)
  }
}
