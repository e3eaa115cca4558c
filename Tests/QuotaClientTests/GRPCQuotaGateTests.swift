import GRPCShimTransport
import QuotaClient
import Testing

@Suite("GRPCQuotaGate: the quota service's answers as QuotaGateErrors")
struct GRPCQuotaGateTests {
  // A release that fails this way must stay owed (the scheduler retries it): taken for a gone
  // reservation, the hold would be marked given back and stay held at quota for good.
  @Test("a call on a client transport that is shutting down is unavailable, not a reservation gone")
  func closedTransport() async throws {
    let transport = ShimClientTransport(target: "127.0.0.1:1")
    transport.beginGracefulShutdown()
    let gate = GRPCQuotaGate(channel: transport, timeout: .seconds(2))
    for call in [
      { try await gate.release(tenant: "acme", reservationID: "r-1", idempotencyKey: "k-1") },
      { try await gate.commit(tenant: "acme", reservationID: "r-1", idempotencyKey: "k-2") },
      { _ = try await gate.acquire(tenant: "acme", stock: .concurrentGPUs, amount: 1, idempotencyKey: "k-3") },
    ] as [@Sendable () async throws -> Void] {
      let error = await #expect(throws: QuotaGateError.self) { try await call() }
      guard case .unavailable(let message) = error else {
        Issue.record("expected unavailable, got \(String(describing: error))")
        continue
      }
      #expect(message.contains("closed"))
    }
  }

  @Test("a quota service that cannot be reached is unavailable within the deadline")
  func unreachable() async throws {
    let gate = GRPCQuotaGate(channel: ShimClientTransport(target: "127.0.0.1:1"), timeout: .seconds(2))
    let error = await #expect(throws: QuotaGateError.self) {
      try await gate.release(tenant: "acme", reservationID: "r-1", idempotencyKey: "k-1")
    }
    guard case .unavailable = error else {
      Issue.record("expected unavailable, got \(String(describing: error))")
      return
    }
  }
}
