import Synchronization

/// The parts of one stream that grpc has delivered and the consumer has not read yet.
///
/// grpc threads push (`yield`, `finish`) and never wait; one task pulls (`next`). The buffer is
/// bounded by the shim's read credits, not here: `onConsume` returns a credit for every message
/// taken, so at most a window's worth of messages waits in memory.
final class InboundBuffer<Element: Sendable>: Sendable {
  private struct State {
    var elements: [Element] = []
    var head = 0
    var waiter: CheckedContinuation<Element?, any Error>?
    var end: Result<Void, any Error>?
    var consumerCancelled = false

    mutating func popFirst() -> Element? {
      guard self.head < self.elements.count else { return nil }
      let element = self.elements[self.head]
      self.head += 1
      if self.head == self.elements.count {
        self.elements.removeAll(keepingCapacity: true)
        self.head = 0
      }
      return element
    }
  }

  private let state = Mutex(State())
  private let onConsume: @Sendable (Element) -> Void

  init(onConsume: @escaping @Sendable (Element) -> Void) {
    self.onConsume = onConsume
  }

  /// Adds an element; ignored once the buffer has ended.
  func yield(_ element: Element) {
    let waiter: CheckedContinuation<Element?, any Error>? = self.state.withLock { state in
      guard state.end == nil else { return nil }
      if let waiter = state.waiter {
        state.waiter = nil
        return waiter
      }
      state.elements.append(element)
      return nil
    }
    waiter?.resume(returning: element)
  }

  /// Ends the stream after the buffered elements: `next` then returns nil, or throws `error`.
  /// Only the first end counts.
  func finish(throwing error: (any Error)? = nil) {
    let waiter: CheckedContinuation<Element?, any Error>? = self.state.withLock { state in
      guard state.end == nil else { return nil }
      state.end = error.map { .failure($0) } ?? .success(())
      defer { state.waiter = nil }
      return state.waiter
    }
    if let error {
      waiter?.resume(throwing: error)
    } else {
      waiter?.resume(returning: nil)
    }
  }

  /// The next element, nil at the end of the stream or once the consuming task is cancelled.
  private enum Immediate {
    case element(Element)
    case end(Result<Void, any Error>)
    case wait
  }

  func next() async throws -> Element? {
    let immediate: Immediate = self.state.withLock { state in
      if let element = state.popFirst() { return .element(element) }
      if let end = state.end { return .end(end) }
      if state.consumerCancelled { return .end(.success(())) }
      return .wait
    }
    let element: Element?
    switch immediate {
    case .element(let value):
      element = value
    case .end(let end):
      try end.get()
      return nil
    case .wait:
      element = try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
          let ready: Result<Element?, any Error>? = self.state.withLock { state in
            if let element = state.popFirst() { return .success(element) }
            if let end = state.end { return end.map { nil } }
            if state.consumerCancelled { return .success(nil) }
            state.waiter = continuation
            return nil
          }
          if let ready { continuation.resume(with: ready) }
        }
      } onCancel: {
        let waiter = self.state.withLock { state in
          state.consumerCancelled = true
          defer { state.waiter = nil }
          return state.waiter
        }
        waiter?.resume(returning: nil)
      }
    }
    if let element { self.onConsume(element) }
    return element
  }
}

/// The consuming side of an InboundBuffer as the AsyncSequence that GRPCCore reads.
struct InboundSequence<Element: Sendable>: AsyncSequence, Sendable {
  let buffer: InboundBuffer<Element>

  struct AsyncIterator: AsyncIteratorProtocol {
    let buffer: InboundBuffer<Element>
    mutating func next() async throws -> Element? {
      try await self.buffer.next()
    }
  }

  func makeAsyncIterator() -> AsyncIterator {
    AsyncIterator(buffer: self.buffer)
  }
}
