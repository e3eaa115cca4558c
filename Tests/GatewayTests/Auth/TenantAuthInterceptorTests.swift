import Foundation
import GRPCCore
import MaaSContracts
import SwiftProtobuf
import Synchronization
import Testing
@testable import Gateway

/// Consume calls held until the test answers them, first come first answered.
final class HeldConsumes: Sendable {
  private let held = Mutex<[CheckedContinuation<Void, any Error>]>([])
  /// One element per Consume that arrived (and is now held).
  let arrivals: AsyncStream<Void>
  private let arrived: AsyncStream<Void>.Continuation

  init() {
    (self.arrivals, self.arrived) = AsyncStream.makeStream()
  }

  func consume() async throws {
    try await withCheckedThrowingContinuation { continuation in
      self.held.withLock { $0.append(continuation) }
      self.arrived.yield()
    }
  }

  func answerFirst(_ outcome: Result<Void, any Error>) {
    self.held.withLock { $0.removeFirst() }.resume(with: outcome)
  }
}

/// A handler that records that it ran and answers "page".
final class RecordingHandler: Sendable {
  private let count = Mutex(0)
  let runs: AsyncStream<Void>
  private let ran: AsyncStream<Void>.Continuation

  init() {
    (self.runs, self.ran) = AsyncStream.makeStream()
  }

  var timesRun: Int { self.count.withLock { $0 } }

  func handle<Input: Sendable>(_ request: StreamingServerRequest<Input>, _ context: ServerContext) async throws
    -> StreamingServerResponse<String>
  {
    self.count.withLock { $0 += 1 }
    self.ran.yield()
    return StreamingServerResponse(single: ServerResponse(message: "page", metadata: [:]))
  }
}

// A broken overlap would leave a test waiting for a handler that never runs: the limit fails it.
@Suite("The tenant guard: reads forwarded while charged, writes only once admitted", .timeLimit(.minutes(1)))
struct TenantAuthInterceptorTests {
  let token = ApiKeyToken.generate()
  let directory = InMemoryDirectory(tenants: ["tenant-a"])
  let quota = HeldConsumes()
  let handler = RecordingHandler()

  func interceptor() -> TenantAuthInterceptor {
    _ = directory.add(token, tenant: "tenant-a")
    let quota = self.quota
    return TenantAuthInterceptor(
      authenticator: Authenticator(directory: directory, jwt: nil, logger: quietLogger),
      charger: ApiCallCharger(upstream: UpstreamPolicy(), logger: quietLogger) { _, _ in try await quota.consume() },
      unmeteredMethods: GatewayRPCService.unimplementedMethods, overlappedMethods: GatewayRPCService.registryReadMethods,
      logger: quietLogger)
  }

  /// Starts one call of `method` through `interceptor`, with the tenant's key.
  func call<Input: SwiftProtobuf.Message & Sendable>(_ interceptor: TenantAuthInterceptor, _ method: String, _ message: Input)
    -> Task<StreamingServerResponse<String>, any Error>
  {
    let request = StreamingServerRequest(
      metadata: ["authorization": "Bearer \(token.text)"], messages: RPCAsyncSequence(wrapping: AsyncStream { continuation in
        continuation.yield(message)
        continuation.finish()
      }.map { $0 }))
    let context = ServerContext(
      descriptor: MethodDescriptor(fullyQualifiedService: "maas.gateway.v1.Gateway", method: method), remotePeer: "test",
      localPeer: "test", cancellation: ServerContext.RPCCancellationHandle())
    let handler = self.handler
    return Task {
      try await interceptor.intercept(request: request, context: context) { try await handler.handle($0, $1) }
    }
  }

  @Test("a read runs while its API call is being charged, and is answered only once the call is admitted")
  func readOverlapsItsCharge() async throws {
    let interceptor = interceptor()
    let call = call(interceptor, "ListModels", Maas_Gateway_V1_ListModelsRequest.with { $0.pageSize = 10 })
    var arrivals = quota.arrivals.makeAsyncIterator()
    var runs = handler.runs.makeAsyncIterator()
    _ = await arrivals.next()
    _ = await runs.next()
    #expect(handler.timesRun == 1, "the handler ran while the charge was held")
    quota.answerFirst(.success(()))
    _ = try await call.value
  }

  @Test("a refused read answers quota's RESOURCE_EXHAUSTED although its handler had answered")
  func refusedReadDropsItsAnswer() async throws {
    let interceptor = interceptor()
    let call = call(interceptor, "GetModel", Maas_Gateway_V1_GetModelRequest.with { $0.model.name = "llama" })
    var arrivals = quota.arrivals.makeAsyncIterator()
    var runs = handler.runs.makeAsyncIterator()
    _ = await arrivals.next()
    _ = await runs.next()
    quota.answerFirst(.failure(RPCError(code: .resourceExhausted, message: "API_CALLS_PER_DAY: limit 5, used 5")))
    let error = await #expect(throws: RPCError.self) { try await call.value }
    #expect(error?.code == .resourceExhausted)
    #expect(error?.message.contains("limit 5") == true)
  }

  @Test("a write is forwarded only after its API call is admitted")
  func writeWaitsForItsCharge() async throws {
    let interceptor = interceptor()
    let call = call(interceptor, "CreateModel", Maas_Gateway_V1_CreateModelRequest.with { $0.name = "llama" })
    var arrivals = quota.arrivals.makeAsyncIterator()
    _ = await arrivals.next()
    #expect(handler.timesRun == 0, "nothing was forwarded while the charge was held")
    quota.answerFirst(.success(()))
    _ = try await call.value
    #expect(handler.timesRun == 1)
  }

  @Test("after a refusal, the tenant's next read is charged before it is forwarded, until a charge is admitted")
  func refusedTenantIsChargedFirst() async throws {
    let interceptor = interceptor()
    var arrivals = quota.arrivals.makeAsyncIterator()
    let refused = call(interceptor, "ListModels", Maas_Gateway_V1_ListModelsRequest.with { $0.pageSize = 10 })
    _ = await arrivals.next()
    quota.answerFirst(.failure(RPCError(code: .resourceExhausted, message: "API_CALLS_PER_DAY: limit 5, used 5")))
    _ = try? await refused.value
    let ranBefore = handler.timesRun

    let next = call(interceptor, "ListModels", Maas_Gateway_V1_ListModelsRequest.with { $0.pageSize = 10 })
    _ = await arrivals.next()
    #expect(handler.timesRun == ranBefore, "nothing was forwarded while the charge was held")
    quota.answerFirst(.success(()))
    _ = try await next.value
    #expect(handler.timesRun == ranBefore + 1)

    let overlapped = call(interceptor, "ListModels", Maas_Gateway_V1_ListModelsRequest.with { $0.pageSize = 10 })
    var runs = handler.runs.makeAsyncIterator()
    _ = await arrivals.next()
    // Runs of the two earlier calls may still be in the stream; the third shows in the count.
    while handler.timesRun < ranBefore + 2 {
      guard await runs.next() != nil else { break }  // nil: the time limit cancelled the test
    }
    #expect(handler.timesRun == ranBefore + 2, "once a charge was admitted, the tenant's read ran while charged again")
    quota.answerFirst(.success(()))
    _ = try await overlapped.value
  }

  @Test("under load, reads queued behind a batch of several are charged once their answers are ready")
  func queuedReadsSignalTheirAnswers() async throws {
    let interceptor = interceptor()
    var arrivals = quota.arrivals.makeAsyncIterator()
    var runs = handler.runs.makeAsyncIterator()
    let list = Maas_Gateway_V1_ListModelsRequest.with { $0.pageSize = 10 }
    let first = call(interceptor, "ListModels", list)
    _ = await arrivals.next()
    _ = await runs.next()
    let pair = [call(interceptor, "ListModels", list), call(interceptor, "ListModels", list)]
    for _ in pair { _ = await runs.next() }
    quota.answerFirst(.success(()))
    _ = try await first.value
    _ = await arrivals.next()  // the pair's batch of two
    let more = [call(interceptor, "ListModels", list), call(interceptor, "ListModels", list)]
    for _ in more { _ = await runs.next() }
    quota.answerFirst(.success(()))
    for call in pair { _ = try await call.value }
    // The next batch goes only once an answer waits for it: without the handlers' signal, the
    // time limit ends this wait.
    _ = await arrivals.next()
    quota.answerFirst(.success(()))
    for call in more { _ = try await call.value }
    #expect(handler.timesRun == 5)
  }
}
