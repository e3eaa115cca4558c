import Foundation

/// The running benchmark's name, its executable's (`quota-bench`, ...): the prefix of its notes,
/// so that a line in a shared log says whose it is, and of its temporary files, so that two
/// benchmarks running at once never write to the same one.
public let benchName = URL(fileURLWithPath: CommandLine.arguments[0]).lastPathComponent

/// The directory this executable is in, where `make` builds the services a benchmark starts.
public let programDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()

/// A failure a benchmark reports as it is: the text is the whole message.
public struct BenchError: Error, CustomStringConvertible {
  public let description: String
  public init(_ description: String) { self.description = description }
}

/// A progress or diagnostic line, on stderr: stdout carries the report alone.
public func note(_ message: String) {
  FileHandle.standardError.write(Data("\(benchName): \(message)\n".utf8))
}

extension Array {
  /// The elements from `offset` (modulo the count) to the end, then those before it: the order in
  /// which a run's peers take their turn at one concurrency, so that which goes first rotates.
  public func rotated(by offset: Int) -> [Element] {
    guard !self.isEmpty else { return self }
    let start = offset % self.count
    return Array(self[start...] + self[..<start])
  }
}

extension Duration {
  /// Whole nanoseconds, as latencies are kept.
  public var nanoseconds: Int64 {
    self.components.seconds * 1_000_000_000 + self.components.attoseconds / 1_000_000_000
  }

  public var seconds: Double {
    self / .seconds(1)
  }
}
