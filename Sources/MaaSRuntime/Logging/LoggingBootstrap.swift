public import Logging
import Synchronization

/// Process-wide logging setup for MaaS executables.
public enum MaaSLogging {
  private static let bootstrapped = Mutex(false)

  /// Routes every `Logger` in the process to a `StructuredLogHandler` with the settings' format
  /// and level. swift-log allows one bootstrap per process and traps on a second, so later calls
  /// here do nothing and return false (tests that start several servers in one process rely on it).
  @discardableResult
  public static func bootstrap(format: LogFormat, level: Logger.Level) -> Bool {
    let first = self.bootstrapped.withLock { done in
      defer { done = true }
      return !done
    }
    guard first else { return false }
    LoggingSystem.bootstrap(
      { label, metadataProvider in
        StructuredLogHandler(label: label, format: format, level: level, metadataProvider: metadataProvider)
      },
      metadataProvider: nil
    )
    return true
  }

  /// Bootstraps logging from a server's settings; see `bootstrap(format:level:)`.
  @discardableResult
  public static func bootstrap(_ settings: ServerSettings) -> Bool {
    self.bootstrap(format: settings.logFormat, level: settings.logLevel)
  }
}
