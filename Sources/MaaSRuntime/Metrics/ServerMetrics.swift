import GRPCCore
import MaaSContracts
public import Prometheus
import Synchronization

/// The metrics a MaaS server exports in Prometheus's text format: its calls (per method and
/// status code, their durations, the calls in flight) and the process (CPU, memory, open files).
///
/// Call metrics follow go-grpc-prometheus's names and labels, which dashboards and alerts already
/// know: `grpc_server_started_total`, `grpc_server_handled_total` (with `grpc_code` as Go spells
/// it: `OK`, `NotFound`, ...) and the histogram `grpc_server_handling_seconds`; plus
/// `maas_grpc_server_inflight_calls`, the gauge the autoscalers' custom-metric hook
/// (k8s/components/inflight-calls-metric) scales on. That gauge leaves out `grpc.health.v1`: a
/// load balancer's Watch stream stays open for good and is no work. There is no `grpc_type` label: the transport,
/// where calls are counted, does not know a method's streaming kind.
///
/// Labels only ever name the methods the server serves: a call to any other path is counted under
/// `grpc_service="unknown", grpc_method="unknown"`, so a caller cannot grow the series without
/// bound by inventing paths.
///
/// A service adds its own metrics to `registry`.
public final class ServerMetrics: Sendable {
  /// Where every metric of the server lives; what the metrics endpoint renders.
  public let registry: PrometheusCollectorRegistry

  /// Per served method: its started counter, histogram and handled counters. Filled by `serve`.
  private let methods = Mutex<[MethodDescriptor: MethodMetrics]>([:])
  private let unknownMethod: MethodMetrics
  private let inflight: Gauge
  private let process: ProcessMetrics
  /// Run at each scrape, before the registry is rendered: gauges read from a pool or an index.
  private let scrapeHooks = Mutex<[@Sendable () -> Void]>([])

  /// Upper bounds of `grpc_server_handling_seconds`: from half a millisecond (a cached read) to
  /// ten seconds (the callers' usual deadline).
  static let durationBuckets: [Duration] = [
    .microseconds(500), .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10),
    .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
    .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
  ]

  public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
    self.registry = registry
    self.inflight = registry.makeGauge(
      descriptor: .init(
        metricName: "maas_grpc_server_inflight", unitName: "calls", helpText: "Calls the server has started and not yet answered."))
    self.unknownMethod = MethodMetrics(registry: registry, service: "unknown", method: "unknown", inFlight: true)
    self.process = ProcessMetrics(registry: registry)
  }

  /// Creates the series of each method the server serves, so that they read 0 before the first
  /// call rather than being absent.
  func serve(_ descriptors: some Sequence<MethodDescriptor>) {
    self.methods.withLock { methods in
      for descriptor in descriptors where methods[descriptor] == nil {
        methods[descriptor] = MethodMetrics(
          registry: self.registry, service: descriptor.service.fullyQualifiedService, method: descriptor.method,
          inFlight: descriptor.service != Grpc_Health_V1_Health.descriptor)
      }
    }
  }

  /// Counts a call to `descriptor` as started; `CallMeter.finish(code:)` records its end.
  func start(_ descriptor: MethodDescriptor) -> CallMeter {
    let metrics = self.methods.withLock { $0[descriptor] } ?? self.unknownMethod
    metrics.started.increment()
    let inflight = metrics.inFlight ? self.inflight : nil
    inflight?.increment()
    return CallMeter(metrics: metrics, inflight: inflight, start: ContinuousClock.now)
  }

  /// Runs `update` at each scrape, before rendering: for gauges that read a state (a pool, an
  /// index) rather than count events. It runs on the metrics endpoint's thread and must be quick.
  public func onScrape(_ update: @escaping @Sendable () -> Void) {
    self.scrapeHooks.withLock { $0.append(update) }
  }

  /// The registry in Prometheus's text exposition format (version 0.0.4), the process's figures
  /// and the `onScrape` gauges read just before.
  public func render() -> [UInt8] {
    self.process.update()
    for update in self.scrapeHooks.withLock({ $0 }) { update() }
    return self.registry.emitToBuffer()
  }
}

/// One call between its start and its status.
struct CallMeter: Sendable {
  fileprivate let metrics: MethodMetrics
  fileprivate let inflight: Gauge?
  fileprivate let start: ContinuousClock.Instant

  /// Records the call's status code (nil: it ended without sending one, its stream broken or
  /// cancelled) and how long it took.
  func finish(code: Status.Code?) {
    self.metrics.handled[code].increment()
    self.metrics.duration.record(ContinuousClock.now - self.start)
    self.inflight?.decrement()
  }
}

/// The series of one method.
private final class MethodMetrics: Sendable {
  let started: Counter
  let duration: DurationHistogram
  /// Whether its calls count in `maas_grpc_server_inflight_calls`.
  let inFlight: Bool
  /// One counter per status code seen (nil: no status was sent), made on the first call that ends with it.
  let handled: LabelledCounters<Status.Code?>

  init(registry: PrometheusCollectorRegistry, service: String, method: String, inFlight: Bool) {
    self.inFlight = inFlight
    let labels = [("grpc_service", service), ("grpc_method", method)]
    self.started = registry.makeCounter(
      descriptor: .init(metricName: "grpc_server_started", unitName: "total", helpText: "Calls started on the server."),
      labels: labels)
    self.duration = registry.makeDurationHistogram(
      descriptor: .init(
        metricName: "grpc_server_handling", unitName: "seconds",
        helpText: "How long the server took from a call's start to its status."),
      labels: labels, buckets: ServerMetrics.durationBuckets)
    self.handled = LabelledCounters(
      registry, metricName: "grpc_server_handled", helpText: "Calls the server finished, by status code."
    ) { code in labels + [("grpc_code", MethodMetrics.name(of: code))] }
  }

  /// The code as go-grpc-prometheus labels it (Go's `codes.Code.String()`); "Canceled" for a call
  /// that ended without a status.
  static func name(of code: Status.Code?) -> String {
    guard let code else { return "Canceled" }
    switch code {
    case .ok: return "OK"
    case .cancelled: return "Canceled"
    case .unknown: return "Unknown"
    case .invalidArgument: return "InvalidArgument"
    case .deadlineExceeded: return "DeadlineExceeded"
    case .notFound: return "NotFound"
    case .alreadyExists: return "AlreadyExists"
    case .permissionDenied: return "PermissionDenied"
    case .resourceExhausted: return "ResourceExhausted"
    case .failedPrecondition: return "FailedPrecondition"
    case .aborted: return "Aborted"
    case .outOfRange: return "OutOfRange"
    case .unimplemented: return "Unimplemented"
    case .internalError: return "Internal"
    case .unavailable: return "Unavailable"
    case .dataLoss: return "DataLoss"
    case .unauthenticated: return "Unauthenticated"
    default: return "Code(\(code.rawValue))"
    }
  }
}
