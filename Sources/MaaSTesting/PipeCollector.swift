public import Foundation
import Synchronization

/// Reads a child's pipe to its end, on a thread of its own, and keeps what came.
///
/// A pipe nobody reads holds 64 KiB on Linux; once that is full the child's next write blocks.
/// A service that logs from Swift's cooperative threads then stops altogether, holding whatever
/// database locks it had, and a test of it hangs for a reason that has nothing to do with what it
/// tests. So every pipe a test gives a child is read from the start, whether the test looks at it
/// or not.
public final class PipeCollector: Sendable {
  private struct State {
    var data = Data()
    var ended = false
  }

  private let state = Mutex(State())

  /// Starts reading `handle` (the read end of a pipe whose write end the child holds).
  public init(reading handle: FileHandle) {
    // The thread keeps the collector alive until the pipe ends.
    Thread.detachNewThread { [self] in
      while true {
        // availableData blocks this thread (never a cooperative one) until bytes or the end come.
        let chunk = handle.availableData
        if chunk.isEmpty { break }
        self.state.withLock { $0.data.append(chunk) }
      }
      self.state.withLock { $0.ended = true }
    }
  }

  /// Everything read so far.
  public var data: Data { self.state.withLock { $0.data } }

  /// Everything read so far, as UTF-8.
  public var text: String { String(decoding: self.data, as: UTF8.self) }

  /// Whether the pipe has reached its end (every process holding its write end has closed it).
  public var ended: Bool { self.state.withLock { $0.ended } }

  /// The first line, without its newline, once it has come; nil when the pipe ends without one,
  /// or none came within `limit`.
  public func firstLine(within limit: Duration) async -> String? {
    let newline = UInt8(ascii: "\n")
    _ = await waitUntil(within: limit) { self.state.withLock { $0.ended || $0.data.contains(newline) } }
    let data = self.data
    return data.firstIndex(of: newline).map { String(decoding: data[..<$0], as: UTF8.self) }
  }

  /// Everything, once the pipe has ended; what came so far if it has not within `limit`.
  public func all(within limit: Duration) async -> Data {
    _ = await waitUntil(within: limit) { self.ended }
    return self.data
  }
}
