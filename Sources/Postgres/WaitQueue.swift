/// Callers waiting their turn for something (a pool's connection, a share's turn), first come,
/// first served, each with the timer that ends its wait. Kept under its owner's lock: the pool
/// and `ConnectionShare` decide who goes, and both hand over, time out and cancel alike through
/// this.
struct WaitQueue<Value: Sendable> {
  struct Waiter {
    let id: Int
    let continuation: CheckedContinuation<Value, any Error>
    let since: ContinuousClock.Instant
    var timer: Task<Void, Never>?

    /// Ends the wait with `result`; its timer, if still running, stops.
    func resume(with result: Result<Value, any Error>) {
      self.timer?.cancel()
      self.continuation.resume(with: result)
    }
  }

  private var waiters: [Waiter] = []
  private var lastID = 0

  var count: Int { self.waiters.count }
  var isEmpty: Bool { self.waiters.isEmpty }

  /// The id of a caller about to wait (known before its continuation exists, so that its
  /// cancellation handler can name it).
  mutating func nextID() -> Int {
    self.lastID += 1
    return self.lastID
  }

  mutating func append(_ id: Int, _ continuation: CheckedContinuation<Value, any Error>, since: ContinuousClock.Instant) {
    self.waiters.append(Waiter(id: id, continuation: continuation, since: since))
  }

  /// The first waiter, taken out of the queue.
  mutating func popFirst() -> Waiter? {
    self.waiters.isEmpty ? nil : self.waiters.removeFirst()
  }

  /// The waiter `id`, taken out of the queue; nil when it was served, timed out or cancelled.
  mutating func remove(_ id: Int) -> Waiter? {
    guard let index = self.waiters.firstIndex(where: { $0.id == id }) else { return nil }
    return self.waiters.remove(at: index)
  }

  /// Every waiter, taken out of the queue.
  mutating func removeAll() -> [Waiter] {
    defer { self.waiters = [] }
    return self.waiters
  }

  /// Gives waiter `id` its timer; false when it is no longer waiting.
  mutating func attach(_ timer: Task<Void, Never>, to id: Int) -> Bool {
    guard let index = self.waiters.firstIndex(where: { $0.id == id }) else { return false }
    self.waiters[index].timer = timer
    return true
  }

  /// Starts the timer that ends a wait at `deadline` by calling `expire`. `attach` (which takes
  /// the owner's lock and calls `attach(_:to:)`) hands it to the waiter; a waiter served
  /// meanwhile has it stopped at once.
  static func startTimer(
    until deadline: ContinuousClock.Instant, attach: (Task<Void, Never>) -> Bool, expire: @escaping @Sendable () -> Void
  ) {
    let timer = Task {
      guard (try? await Task.sleep(until: deadline, clock: .continuous)) != nil else { return }
      expire()
    }
    if !attach(timer) { timer.cancel() }
  }
}

extension PostgresError {
  /// What a caller cancelled while it waited for a connection (or a turn for one) gets.
  static var cancelledWhileWaiting: PostgresError {
    PostgresError(kind: .cancelled, message: "cancelled while waiting for a connection")
  }
}
