import Foundation

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

extension RunOptions {
  /// These options with `run`'s command line read into them: the flags every run takes
  /// (`--seconds`, at least 1; `--warm-up`; `--json`), and the benchmark's own through `own`,
  /// which reads a flag's value from `flags` and returns false for a flag it does not know.
  public func parsed(
    _ arguments: ArraySlice<String>, own: (_ flag: String, _ flags: inout Flags, _ options: inout Self) throws -> Bool
  ) throws -> Self {
    var options = self
    var flags = Flags(arguments)
    while let flag = flags.next() {
      switch flag {
      case "--seconds": options.seconds = max(1, try flags.wholeNumber(after: flag))
      case "--warm-up": options.warmUpSeconds = try flags.wholeNumber(after: flag)
      case "--json": options.jsonPath = flags.next()
      default: guard try own(flag, &flags, &options) else { throw BenchError("unknown flag \(flag)") }
      }
    }
    return options
  }
}

/// Reads a command line whose every flag takes a value (`load`'s): `read` takes each flag and
/// its value, and returns false for a flag it does not know or a value it does not take.
public func readValueFlags(_ arguments: ArraySlice<String>, _ read: (_ flag: String, _ value: String) -> Bool) throws {
  var rest = arguments
  while let flag = rest.popFirst() {
    let value = rest.popFirst()
    guard let value, read(flag, value) else { throw BenchError("bad or unknown flag \(flag) \(value ?? "")") }
  }
}

/// A command line's flags, read front to back.
public struct Flags {
  private var rest: ArraySlice<String>

  public init(_ arguments: ArraySlice<String>) { self.rest = arguments }

  /// The next word (a flag, or the value after one); nil at the end.
  public mutating func next() -> String? { self.rest.popFirst() }

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
}

/// `text` as a number greater than 0; nil for anything else.
public func positiveNumber(_ text: String) -> Int? {
  Int(text).flatMap { $0 > 0 ? $0 : nil }
}
