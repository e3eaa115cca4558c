#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One thing wrong with the configuration: which variable, what it held, and why that is wrong.
public struct ConfigurationProblem: Sendable, Hashable, CustomStringConvertible {
  /// The environment variable at fault.
  public var variable: String
  /// Its value as found, or nil when the problem is its absence.
  public var value: String?
  /// Why the value is refused, phrased to follow the quoted value ("is not a port (0-65535)").
  public var reason: String

  /// A problem with `variable`, which held `value` (nil: was unset) and is refused for `reason`.
  public init(variable: String, value: String?, reason: String) {
    self.variable = variable
    self.value = value
    self.reason = reason
  }

  /// `MAAS_QUOTA_PORT: "abc" is not a port (0-65535; 0 picks a free one)`
  public var description: String {
    if let value { return "\(self.variable): \(String(reflecting: value)) \(self.reason)" }
    return "\(self.variable): \(self.reason)"
  }
}

/// Every problem found while loading a configuration, thrown once loading is complete.
///
/// Tests match on `problems` (the variables named), never on the description's wording.
public struct ConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
  /// The problems, in the order the variables were read; never empty.
  public var problems: [ConfigurationProblem]

  /// An error listing `problems`, which should not be empty.
  public init(problems: [ConfigurationProblem]) {
    self.problems = problems
  }

  /// The variables named by the problems.
  public var variables: [String] { self.problems.map(\.variable) }

  /// A header line, then one problem per line: what an operator reads in the pod's log.
  public var description: String {
    let count = self.problems.count
    let header = "invalid configuration (\(count) \(count == 1 ? "problem" : "problems")):"
    return ([header] + self.problems.map { "  \($0)" }).joined(separator: "\n")
  }
}

/// The exit status of an executable whose configuration is invalid. Distinct from 1 (a failure
/// while running) so that scripts and tests can tell "fix the settings" from "it crashed".
public let configurationErrorExitStatus: Int32 = 2

/// Runs `load`; if it throws, prints the error (for a `ConfigurationError`, every problem, one
/// per line) to stderr, prefixed with `program`, and exits with status 2 before anything starts
/// serving. Any error counts: whatever fails while settings are loaded is the settings' fault.
///
/// ```swift
/// let settings = loadConfigurationOrExit(program: "maas-quota") {
///   try ServerSettings.load(prefix: "MAAS_QUOTA")
/// }
/// ```
public func loadConfigurationOrExit<Settings>(
  program: String,
  _ load: () throws -> Settings
) -> Settings {
  do {
    return try load()
  } catch {
    writeToStandardError("\(program): \(error)\n")
    exit(configurationErrorExitStatus)
  }
}

/// Writes `text` to stderr in one call, so that lines from several threads do not interleave.
func writeToStandardError(_ text: String) {
  writeAll(text, to: 2)
}

/// Writes `text` to stdout unbuffered.
func writeToStandardOutput(_ text: String) {
  writeAll(text, to: 1)
}

private func writeAll(_ text: String, to descriptor: Int32) {
  let bytes = Array(text.utf8)
  var written = 0
  while written < bytes.count {
    let result = bytes.withUnsafeBytes { buffer in
      write(descriptor, buffer.baseAddress! + written, buffer.count - written)
    }
    // A closed or broken stream must not take the service down; the line is dropped.
    if result <= 0 {
      if result < 0 && errno == EINTR { continue }
      return
    }
    written += result
  }
}
