// Beside the other settings readers: the sealer itself knows nothing of the environment.
extension PageTokenSealer {
  /// The service's secret from `<prefix>_PAGE_TOKEN_SECRET`, or `fallback` when it is unset. A
  /// value under 16 bytes is reported without printing it.
  public static func secret(prefix: String, fallback: String, from reader: inout EnvironmentReader) -> String {
    let variable = "\(prefix)_PAGE_TOKEN_SECRET"
    guard let given = reader.rawValue(variable) else { return fallback }
    guard given.utf8.count >= 16 else {
      reader.report(ConfigurationProblem(
        variable: variable, value: nil, reason: "must be at least 16 bytes (it has \(given.utf8.count); the value is not shown)"))
      return fallback
    }
    return given
  }
}
