import GRPCCore

extension StreamingServerRequest {
  /// The first message, and a request that still yields it (then the rest) to the handler.
  /// Every public method takes exactly one request message.
  func peekingFirstMessage() async throws -> (Message?, StreamingServerRequest<Message>) {
    let iterator = IteratorBox(self.messages.makeAsyncIterator())
    let first = try await iterator.next()
    let replay = Replay(first: first, rest: iterator)
    return (first, StreamingServerRequest(metadata: self.metadata, messages: RPCAsyncSequence(wrapping: replay)))
  }
}

/// The request's iterator, shared by the peek and the replay that continues it. Only ever used
/// by one task at a time: the interceptor, then the handler it calls.
private final class IteratorBox<Element: Sendable>: @unchecked Sendable {
  private var iterator: RPCAsyncSequence<Element, any Error>.AsyncIterator

  init(_ iterator: RPCAsyncSequence<Element, any Error>.AsyncIterator) { self.iterator = iterator }

  func next() async throws -> Element? { try await self.iterator.next() }
}

/// A message already read, followed by the rest of the request.
private struct Replay<Element: Sendable>: AsyncSequence, Sendable {
  let first: Element?
  let rest: IteratorBox<Element>

  struct AsyncIterator: AsyncIteratorProtocol {
    var first: Element?
    let rest: IteratorBox<Element>

    mutating func next() async throws -> Element? {
      if let first = self.first {
        self.first = nil
        return first
      }
      return try await self.rest.next()
    }
  }

  func makeAsyncIterator() -> AsyncIterator { AsyncIterator(first: self.first, rest: self.rest) }
}

extension StreamingServerResponse {
  /// The response with `call` also current while its messages are produced, which for a
  /// streaming method happens after the handler has returned.
  func producing(within call: GatewayCall) -> StreamingServerResponse<Message> {
    guard case .success(var contents) = self.accepted else { return self }
    let producer = contents.producer
    contents.producer = { writer in
      try await GatewayCall.$current.withValue(call) { try await producer(writer) }
    }
    return StreamingServerResponse(accepted: .success(contents))
  }
}
