public import GRPCCore
public import GRPCShimTransport
public import ServiceLifecycle

/// A gRPC client of another MaaS service (the gateway's registry and quota, the registry's
/// quota), as a swift-service-lifecycle `Service`: its connections run beside the server and
/// close after it, so in-flight forwarded calls finish during a drain.
///
/// ```swift
/// let quota = UpstreamClient(target: settings.quotaTarget)
/// let stub = Maas_Quota_V1_Quota.Client(wrapping: quota.client)
/// return .init(services: [...], background: [quota])
/// ```
public final class UpstreamClient: Service, Sendable {
  public let target: String
  public let client: GRPCClient<ShimClientTransport>
  /// The client's transport, for unary calls made straight through it
  /// (`ShimClientTransport.unaryCall`); open while the client runs.
  public let transport: ShimClientTransport

  public init(target: String, configuration: ShimTransportConfiguration = .defaults) {
    self.target = target
    self.transport = ShimClientTransport(target: target, configuration: configuration)
    self.client = GRPCClient(transport: self.transport)
  }

  public func run() async throws {
    try await withGracefulShutdownHandler {
      try await self.client.runConnections()
    } onGracefulShutdown: {
      self.client.beginGracefulShutdown()
    }
  }
}
