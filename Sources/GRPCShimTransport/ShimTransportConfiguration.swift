internal import CGRPCShim

/// Settings shared by the shim's server and client transports. The defaults suit services on one
/// cluster network; every value is validated by the shim's users (MaaSRuntime's configuration).
public struct ShimTransportConfiguration: Sendable, Hashable {
  /// Largest message accepted, in bytes. A larger one fails its call with RESOURCE_EXHAUSTED.
  public var maxReceiveMessageBytes: Int
  /// Largest message sent, in bytes.
  public var maxSendMessageBytes: Int
  /// Interval between keepalive pings on an idle connection; nil leaves grpc's default
  /// (clients: off; servers: two hours).
  public var keepaliveTime: Duration?
  /// How long a keepalive ping may go unanswered before the connection is closed.
  public var keepaliveTimeout: Duration
  /// Whether keepalive pings are sent (clients) or accepted (servers) with no call open.
  public var keepalivePermitWithoutCalls: Bool
  /// Servers: the shortest ping interval accepted from a client before it is told off.
  public var minimumPingInterval: Duration?
  /// Servers: the most calls one connection may have open at once; nil: grpc's default.
  public var maxConcurrentStreams: Int?
  /// Messages read ahead of the consumer per call.
  public var readWindow: Int
  /// Messages queued for writing per call before a writer waits.
  public var writeWindow: Int
  /// Servers: how long a graceful shutdown lets in-flight calls run before cancelling them;
  /// nil waits for them however long they take.
  public var shutdownGracePeriod: Duration?

  public init(
    maxReceiveMessageBytes: Int = 4 * 1024 * 1024,
    maxSendMessageBytes: Int = 4 * 1024 * 1024,
    keepaliveTime: Duration? = nil,
    keepaliveTimeout: Duration = .seconds(20),
    keepalivePermitWithoutCalls: Bool = false,
    minimumPingInterval: Duration? = nil,
    maxConcurrentStreams: Int? = nil,
    readWindow: Int = 16,
    writeWindow: Int = 16,
    shutdownGracePeriod: Duration? = .seconds(30)
  ) {
    self.maxReceiveMessageBytes = maxReceiveMessageBytes
    self.maxSendMessageBytes = maxSendMessageBytes
    self.keepaliveTime = keepaliveTime
    self.keepaliveTimeout = keepaliveTimeout
    self.keepalivePermitWithoutCalls = keepalivePermitWithoutCalls
    self.minimumPingInterval = minimumPingInterval
    self.maxConcurrentStreams = maxConcurrentStreams
    self.readWindow = readWindow
    self.writeWindow = writeWindow
    self.shutdownGracePeriod = shutdownGracePeriod
  }

  public static var defaults: Self { Self() }

  var shimOptions: maas_grpc_options {
    maas_grpc_options(
      max_receive_message_bytes: Int32(clamping: self.maxReceiveMessageBytes),
      max_send_message_bytes: Int32(clamping: self.maxSendMessageBytes),
      keepalive_time_ms: self.keepaliveTime.map { Int32(clamping: $0.milliseconds) } ?? 0,
      keepalive_timeout_ms: Int32(clamping: self.keepaliveTimeout.milliseconds),
      keepalive_permit_without_calls: self.keepalivePermitWithoutCalls ? 1 : 0,
      min_ping_interval_ms: self.minimumPingInterval.map { Int32(clamping: $0.milliseconds) } ?? 0,
      max_concurrent_streams: self.maxConcurrentStreams.map { Int32(clamping: $0) } ?? 0,
      read_window: Int32(clamping: self.readWindow),
      write_window: Int32(clamping: self.writeWindow)
    )
  }
}

extension Duration {
  var milliseconds: Int64 {
    let (seconds, attoseconds) = self.components
    return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
  }

  var nanoseconds: Int64 {
    let (seconds, attoseconds) = self.components
    let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
    return overflow ? Int64.max : scaled + attoseconds / 1_000_000_000
  }
}
