public import Prometheus
import Synchronization

/// The counters of one metric, one per label set, each made the first time it is asked for and
/// then kept. The registry would hand back the same counter, but only after validating the name
/// and labels again, which is too much for counts taken on every call. The `known` keys are made
/// at once, so that their series read 0 before anything is counted.
///
/// The keys must be few (status codes, outcomes, resources): each one is a series for good.
public final class LabelledCounters<Key: Hashable & Sendable>: Sendable {
  private let registry: PrometheusCollectorRegistry
  private let metricName: String
  private let unitName: String
  private let helpText: String
  private let labels: @Sendable (Key) -> [(String, String)]
  private let counters = Mutex<[Key: Counter]>([:])

  /// - Parameters:
  ///   - metricName: the name before the unit (`grpc_server_handled` of `grpc_server_handled_total`).
  ///   - labels: the label set of a key.
  public init(
    _ registry: PrometheusCollectorRegistry, metricName: String, unitName: String = "total", helpText: String,
    known: [Key] = [], labels: @escaping @Sendable (Key) -> [(String, String)]
  ) {
    self.registry = registry
    self.metricName = metricName
    self.unitName = unitName
    self.helpText = helpText
    self.labels = labels
    for key in known { _ = self[key] }
  }

  /// The counter of `key`'s label set.
  public subscript(key: Key) -> Counter {
    self.counters.withLock { counters in
      if let counter = counters[key] { return counter }
      let counter = self.registry.makeCounter(
        descriptor: .init(metricName: self.metricName, unitName: self.unitName, helpText: self.helpText),
        labels: self.labels(key))
      counters[key] = counter
      return counter
    }
  }
}
