public import Prometheus
import Synchronization

/// A Prometheus counter that follows a total kept elsewhere (an atomic in a store, the kernel's
/// CPU time): each `follow` adds what the total grew by since the last one. Prometheus counters
/// only go up; a total that went down (a restarted source) is taken as the new base.
public final class MirroredCounter: Sendable {
  private let counter: Counter
  private let last = Mutex<Double>(0)

  public init(_ counter: Counter) {
    self.counter = counter
  }

  /// Adds what `total` grew by since the last call.
  public func follow(_ total: Int) {
    let grown = self.grow(to: Double(total))
    if grown > 0 { self.counter.increment(by: Int64(grown)) }
  }

  /// Adds what `total` grew by since the last call.
  public func follow(_ total: Double) {
    let grown = self.grow(to: total)
    if grown > 0 { self.counter.increment(by: grown) }
  }

  private func grow(to total: Double) -> Double {
    self.last.withLock { last in
      defer { last = total }
      return total - last
    }
  }
}
