public import Foundation

/// Reads settings from environment variables and collects every problem instead of stopping at
/// the first, so that an operator fixes a broken deployment in one round instead of one
/// restart per typo.
///
/// ```swift
/// var reader = EnvironmentReader()
/// let server = ServerSettings.read(prefix: "MAAS_QUOTA", from: &reader)
/// let url = reader.read("MAAS_QUOTA_DATABASE_URL", default: "postgres://localhost/maas", as: .nonEmptyString)
/// try reader.finish()   // throws one ConfigurationError naming every problem
/// ```
///
/// A variable that is unset or set to the empty string takes its default: Kubernetes ConfigMaps
/// and shell scripts routinely produce empty values, and "empty" never means anything else here.
public struct EnvironmentReader: Sendable {
  /// The variables read from; ProcessInfo's environment unless a test injects its own.
  public let environment: [String: String]
  /// The problems found so far, in the order the variables were read.
  public private(set) var problems: [ConfigurationProblem] = []
  /// Every variable asked for so far, once each, in the order first asked, with the default the
  /// caller gave: what `maas-<service> config` prints, so that deployment manifests can be
  /// checked against the names a binary really reads.
  public private(set) var requested: [RequestedVariable] = []

  /// A reader over `environment`, with no problems recorded yet.
  public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
    self.environment = environment
  }

  /// The value of `name` parsed by `parser`, or `defaultValue` when the variable is unset or
  /// empty. A value that does not parse is recorded as a problem and `defaultValue` is returned,
  /// so that reading can go on and find the other problems.
  public mutating func read<Value>(
    _ name: String,
    default defaultValue: Value,
    as parser: ConfigurationParser<Value>
  ) -> Value {
    self.record(name, defaultValue: RequestedVariable.text(of: defaultValue))
    return self.readOptional(name, as: parser) ?? defaultValue
  }

  /// The value of `name` parsed by `parser`, or nil when the variable is unset or empty; a value
  /// that does not parse is recorded as a problem and reads as nil.
  public mutating func readOptional<Value>(
    _ name: String,
    as parser: ConfigurationParser<Value>
  ) -> Value? {
    guard let raw = self.rawValue(name) else { return nil }
    switch parser.parse(raw) {
    case .success(let value):
      return value
    case .failure(let reason):
      self.problems.append(ConfigurationProblem(variable: name, value: raw, reason: reason.text))
      return nil
    }
  }

  /// The text of `name` as set, or nil when it is unset or empty, for a value the caller checks
  /// itself (a secret, whose refusal must not quote it). Recorded as asked for, like the others.
  public mutating func rawValue(_ name: String) -> String? {
    self.record(name, defaultValue: nil)
    guard let raw = self.environment[name], !raw.isEmpty else { return nil }
    return raw
  }

  private mutating func record(_ name: String, defaultValue: String?) {
    guard !self.requested.contains(where: { $0.name == name }) else { return }
    self.requested.append(RequestedVariable(name: name, defaultValue: defaultValue))
  }

  /// Records a problem found by a check that spans several variables (one setting that must be
  /// smaller than another, say).
  public mutating func report(_ problem: ConfigurationProblem) {
    self.problems.append(problem)
  }

  /// Throws one error listing every problem recorded, if there are any.
  public func finish() throws(ConfigurationError) {
    if !self.problems.isEmpty { throw ConfigurationError(problems: self.problems) }
  }
}

/// A variable some setting was read from, as `EnvironmentReader.requested` lists it.
public struct RequestedVariable: Sendable, Hashable {
  /// The full name, prefix included.
  public var name: String
  /// The value used when the variable is unset, as an operator would write it; nil when there
  /// is none (the setting stays off, or is required: a problem says which).
  public var defaultValue: String?

  public init(name: String, defaultValue: String?) {
    self.name = name
    self.defaultValue = defaultValue
  }

  /// `25` for 25 seconds and `info` for a log level, rather than Swift's debug spellings.
  static func text<Value>(of value: Value) -> String {
    switch value {
    case let duration as Duration: duration.secondsText
    case let raw as any RawRepresentable<String>: raw.rawValue
    default: String(describing: value)
    }
  }
}

/// Turns a variable's text into a value, or says in a few words why it cannot.
public struct ConfigurationParser<Value>: Sendable {
  /// Why a value was refused, phrased to follow the quoted value:
  /// `"abc" is not a port (0-65535)`.
  public struct Refusal: Error, Sendable {
    /// The reason, e.g. "is not a port (0-65535)".
    public var text: String
    /// A refusal that reads `text` after the quoted value.
    public init(_ text: String) { self.text = text }
  }

  /// What a valid value looks like, for the documentation table.
  public let expectation: String
  private let body: @Sendable (String) -> Result<Value, Refusal>

  /// - Parameters:
  ///   - expectation: A short description of valid values ("a port (0-65535)").
  ///   - parse: Returns the value, or nil to refuse with "is not <expectation>".
  public init(expectation: String, parse: @escaping @Sendable (String) -> Value?) {
    self.expectation = expectation
    self.body = { text in
      parse(text).map(Result.success) ?? .failure(Refusal("is not \(expectation)"))
    }
  }

  /// A parser that words its own refusals; `parseOrRefuse` returns the value or why not.
  public init(expectation: String, parseOrRefuse: @escaping @Sendable (String) -> Result<Value, Refusal>) {
    self.expectation = expectation
    self.body = parseOrRefuse
  }

  /// Parses `text`, which is never empty.
  public func parse(_ text: String) -> Result<Value, Refusal> {
    self.body(text)
  }
}

extension ConfigurationParser where Value == String {
  /// Any text without surrounding whitespace (a stray space in a YAML file is a classic).
  public static var nonEmptyString: Self {
    Self(expectation: "text without surrounding whitespace") { text in
      text.trimmingCharacters(in: .whitespacesAndNewlines) == text ? text : nil
    }
  }

  /// A host name or IP address to bind or dial: no spaces, no port, no scheme.
  public static var host: Self {
    Self(expectation: "a host name or IP address (no port, no scheme)") { text in
      let forbidden = CharacterSet.whitespacesAndNewlines.union(CharacterSet(charactersIn: "/@?#"))
      guard text.rangeOfCharacter(from: forbidden) == nil else { return nil }
      // IPv6 literals contain colons and may come bracketed; anything else with a colon carries a port.
      let bare = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
      if bare.contains(":") { return bare.split(separator: ":", omittingEmptySubsequences: false).count > 2 ? bare : nil }
      return bare
    }
  }

  /// A gRPC target: `host:port`, `[v6]:port` or a resolver URI such as `dns:///name:port` (the
  /// services' `*_TARGET` variables).
  public static var grpcTarget: Self {
    Self(expectation: "a gRPC target such as 127.0.0.1:50054 or dns:///maas-quota:50054") { text in
      !text.isEmpty && !text.unicodeScalars.contains { $0.properties.isWhitespace } && text.contains(":") ? text : nil
    }
  }
}

extension ConfigurationParser where Value == Int {
  /// A TCP port; 0 asks the system for any free port (tests and scripts read the bound one back).
  public static var port: Self {
    let expectation = "a port (0-65535; 0 picks a free one)"
    return Self(expectation: expectation) { text in
      if let port = Int(text), (0...65_535).contains(port) { return .success(port) }
      // Kubernetes injects `<SERVICE>_PORT=tcp://10.0.0.1:50051` for every Service in the
      // namespace, which collides with `MAAS_<SERVICE>_PORT` when a Service is named maas-<service>.
      if text.hasPrefix("tcp://") || text.hasPrefix("udp://") {
        return .failure(Refusal(
          "is not \(expectation); it looks like a Kubernetes service link: set enableServiceLinks: false in the pod spec"
        ))
      }
      return .failure(Refusal("is not \(expectation)"))
    }
  }

  /// A whole number within `range`.
  public static func integer(in range: ClosedRange<Int>, expectation: String? = nil) -> Self {
    Self(expectation: expectation ?? "a whole number from \(range.lowerBound) to \(range.upperBound)") { text in
      Int(text).flatMap { range.contains($0) ? $0 : nil }
    }
  }
}

extension ConfigurationParser where Value == Duration {
  /// A number of seconds, fractions allowed ("0.5"), within `range`.
  public static func seconds(in range: ClosedRange<Double> = 0...86_400) -> Self {
    Self(expectation: "a number of seconds from \(range.lowerBound.compact) to \(range.upperBound.compact)") { text in
      guard let seconds = Double(text), seconds.isFinite, range.contains(seconds) else { return nil }
      return .milliseconds(Int64((seconds * 1_000).rounded()))
    }
  }
}

extension ConfigurationParser where Value == Bool {
  /// true/false, 1/0, yes/no, on/off, in any case.
  public static var boolean: Self {
    Self(expectation: "a boolean (true or false)") { text in
      switch text.lowercased() {
      case "true", "1", "yes", "on": true
      case "false", "0", "no", "off": false
      default: nil
      }
    }
  }
}

extension ConfigurationParser where Value: CaseIterable & RawRepresentable & Sendable, Value.RawValue == String {
  /// One of the enumeration's raw values, matched without regard to case.
  public static var oneOf: Self {
    let cases = Array(Value.allCases)
    let names = cases.map(\.rawValue)
    return Self(expectation: "one of \(names.joined(separator: ", "))") { text in
      cases.first { $0.rawValue == text.lowercased() }
    }
  }
}

extension Double {
  /// "30" rather than "30.0", for messages and documentation.
  var compact: String {
    self == self.rounded() && abs(self) < 1e15 ? String(Int64(self)) : String(self)
  }
}
