public import MaaSRuntime
import Prometheus

/// What quota refuses, for its metrics endpoint: `maas_quota_refusals_total{resource}`, each call
/// answered RESOURCE_EXHAUSTED because the request does not fit under the tenant's limit, by the
/// resource whose limit it met (as the refusal's message names it: `concurrent_gpus`, ...). The runtime's per-method counts say how many calls were refused;
/// this says which limits tenants run into (a platform team raising default limits reads it).
public final class QuotaMetrics: Sendable {
  private let refusals: [QuotaResource: Counter]

  public init(_ metrics: ServerMetrics) {
    var refusals: [QuotaResource: Counter] = [:]
    for resource in QuotaResource.allCases {
      refusals[resource] = metrics.registry.makeCounter(
        descriptor: .init(
          metricName: "maas_quota_refusals", unitName: "total",
          helpText: "Calls refused because the request did not fit under the tenant's limit, by resource."),
        labels: [("resource", resource.description)])
    }
    self.refusals = refusals
  }

  /// Counts `error` when it is a refusal at a limit.
  func record(_ error: any Error) {
    if case QuotaError.exhausted(let resource, _, _, _, _) = error { self.refusals[resource]?.increment() }
  }
}
