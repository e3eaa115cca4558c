import GRPCShimTransport
public import MaaSRuntime

/// How a service reaches the quota service and holds stock there, read from its
/// `<PREFIX>_QUOTA_*` variables (the registry's and the scheduler's alike):
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `<PREFIX>_QUOTA_TARGET` | `127.0.0.1:50054` | the quota service, as a gRPC target |
/// | `<PREFIX>_QUOTA_TIMEOUT_SECONDS` | `5` | deadline of each call to the quota service |
/// | `<PREFIX>_QUOTA_HOLD_SECONDS` | `60` | how long a hold may stay uncommitted (a crashed caller's lapses after it); more than twice the timeout; read only by services that reserve before they commit (the registry) |
public struct QuotaUpstreamSettings: Sendable, Hashable {
  public var target: String
  public var timeout: Duration
  public var holdTTL: Duration

  public init(target: String = "127.0.0.1:50054", timeout: Duration = .seconds(5), holdTTL: Duration = .seconds(60)) {
    self.target = target
    self.timeout = timeout
    self.holdTTL = holdTTL
  }

  /// - Parameter holds: whether the service holds quota uncommitted (Reserve, then Commit later)
  ///   and so reads `<PREFIX>_QUOTA_HOLD_SECONDS`; a service that only takes quota committed at
  ///   once (`QuotaGate.acquire`) neither reads nor lists it.
  public static func read(prefix: String, holds: Bool = true, from reader: inout EnvironmentReader) -> QuotaUpstreamSettings {
    let defaults = QuotaUpstreamSettings()
    let target = reader.read("\(prefix)_QUOTA_TARGET", default: defaults.target, as: .grpcTarget)
    let timeout = reader.read("\(prefix)_QUOTA_TIMEOUT_SECONDS", default: defaults.timeout, as: .seconds(in: 0.1...300))
    guard holds else { return QuotaUpstreamSettings(target: target, timeout: timeout) }
    let hold = reader.read("\(prefix)_QUOTA_HOLD_SECONDS", default: defaults.holdTTL, as: .seconds(in: 10...3600))
    if hold <= timeout * 2 {
      reader.report(ConfigurationProblem(
        variable: "\(prefix)_QUOTA_HOLD_SECONDS", value: "\(hold.components.seconds)",
        reason: "must be more than twice \(prefix)_QUOTA_TIMEOUT_SECONDS, or holds could lapse before they are committed"))
    }
    return QuotaUpstreamSettings(target: target, timeout: timeout, holdTTL: hold)
  }

  /// The quota client as a lifecycle service (run it in the background group, so it stops after
  /// the work that uses it) and the gate over it.
  public func connect() -> (upstream: UpstreamClient, gate: GRPCQuotaGate) {
    let upstream = UpstreamClient(target: target)
    return (upstream, GRPCQuotaGate(channel: upstream.transport, timeout: timeout))
  }
}
