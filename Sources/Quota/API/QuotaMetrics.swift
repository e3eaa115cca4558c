public import MaaSRuntime

/// What quota refuses, for its metrics endpoint: `maas_quota_refusals_total{resource}`, each call
/// answered RESOURCE_EXHAUSTED because the request does not fit under the tenant's limit, by the
/// resource whose limit it met (as the refusal's message names it: `concurrent_gpus`, ...). The
/// runtime's per-method counts say how many calls were refused; this says which limits tenants
/// run into (a platform team raising default limits reads it).
public final class QuotaMetrics: Sendable {
  private let refusals: LabelledCounters<QuotaResource>

  public init(_ metrics: ServerMetrics) {
    self.refusals = LabelledCounters(
      metrics.registry, metricName: "maas_quota_refusals",
      helpText: "Calls refused because the request did not fit under the tenant's limit, by resource.",
      known: Array(QuotaResource.allCases)
    ) { [("resource", $0.description)] }
  }

  /// Counts `error` when it is a refusal at a limit.
  func record(_ error: any Error) {
    if case QuotaError.exhausted(let resource, _, _, _, _) = error { self.refusals[resource].increment() }
  }
}
