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

  /// A flag a command does not know, or one whose value is missing or not what it takes.
  public static func badFlag(_ flag: String, _ value: String?) -> BenchError {
    BenchError("bad or unknown flag \(flag) \(value ?? "")")
  }
}

/// A progress or diagnostic line, on stderr: stdout carries the report alone.
public func note(_ message: String) {
  FileHandle.standardError.write(Data("\(benchName): \(message)\n".utf8))
}

/// The entry point: runs the command the first argument names with the arguments after it.
/// Anything else prints `usage` and exits with 2; a command that throws is noted and exits with 1.
public func runBench(usage: [String], commands: [String: (ArraySlice<String>) async throws -> Void]) async {
  let arguments = Array(CommandLine.arguments.dropFirst())
  guard let name = arguments.first, let command = commands[name] else {
    for line in usage { print(line) }
    exit(2)
  }
  do {
    try await command(arguments.dropFirst())
  } catch {
    note("failed: \(error)")
    exit(1)
  }
}

/// What every benchmark's `run` takes: seconds per cell, the warm-up before each, and where the
/// JSON report goes.
public protocol RunOptions {
  var seconds: Int { get set }
  var warmUpSeconds: Int { get set }
  var jsonPath: String? { get set }
}

/// A command line's flags, read front to back.
public struct Flags {
  private var rest: ArraySlice<String>

  public init(_ arguments: ArraySlice<String>) { self.rest = arguments }

  /// The next flag; nil at the end.
  public mutating func next() -> String? { self.rest.popFirst() }

  /// The next flag and the word after it, for commands whose every flag takes a value.
  public mutating func nextWithValue() -> (flag: String, value: String?)? {
    guard let flag = self.rest.popFirst() else { return nil }
    return (flag, self.rest.popFirst())
  }

  /// The word after a flag; nil at the end.
  public mutating func value() -> String? { self.rest.popFirst() }

  /// The word after `flag`, which must be a whole number (0 or more).
  public mutating func wholeNumber(after flag: String) throws -> Int {
    guard let text = self.rest.popFirst(), let value = Int(text), value >= 0 else {
      throw BenchError("\(flag) needs a whole number")
    }
    return value
  }

  /// The word after `flag`, which must be there.
  public mutating func path(after flag: String) throws -> String {
    guard let path = self.rest.popFirst() else { throw BenchError("\(flag) needs a path") }
    return path
  }

  /// Reads `flag` into `options` if it is one that every `run` takes (`--seconds`, at least 1;
  /// `--warm-up`; `--json`); false for any other flag.
  public mutating func readCommon(_ flag: String, into options: inout some RunOptions) throws -> Bool {
    switch flag {
    case "--seconds": options.seconds = max(1, try self.wholeNumber(after: flag))
    case "--warm-up": options.warmUpSeconds = try self.wholeNumber(after: flag)
    case "--json": options.jsonPath = self.value()
    default: return false
    }
    return true
  }
}

/// `text` as a number greater than 0; nil when it is missing or anything else.
public func positiveNumber(_ text: String?) -> Int? {
  text.flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil }
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
    Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18
  }
}
