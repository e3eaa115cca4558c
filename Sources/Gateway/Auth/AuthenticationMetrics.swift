public import MaaSRuntime
import Prometheus
import Synchronization

/// What the gateway's door sees, for its metrics endpoint: each credential presented to the
/// Gateway service (Admin's own token is checked apart, and not counted here), by kind
/// (`api_key`, `jwt`, or `none` when none could be read) and outcome (`ok`, the refusal's
/// `AuthenticationError.reason`, or `unavailable` when the credential store could not be asked);
/// and how API-key records were found (`fresh` in the cache, `refresh`: in the cache and read
/// again behind the call, `miss`: read during the call). A rising `miss` share under steady load
/// means the cache's TTL is shorter than the keys' call intervals.
public final class AuthenticationMetrics: Sendable {
  private let registry: PrometheusCollectorRegistry
  private let outcomes = Mutex<[String: Counter]>([:])
  private let lookups: [String: Counter]

  public init(_ metrics: ServerMetrics) {
    self.registry = metrics.registry
    var lookups: [String: Counter] = [:]
    for result in ["fresh", "refresh", "miss"] {
      lookups[result] = metrics.registry.makeCounter(
        descriptor: .init(
          metricName: "maas_gateway_api_key_cache_lookups", unitName: "total",
          helpText: "API-key records looked up in the gateway's cache, by what the cache had."),
        labels: [("result", result)])
    }
    self.lookups = lookups
  }

  func authenticated(_ credential: BearerCredential?, outcome: String) {
    let kind =
      switch credential {
      case .apiKey: "api_key"
      case .jwt: "jwt"
      case nil: "none"
      }
    let key = kind + "/" + outcome
    let counter = self.outcomes.withLock { outcomes in
      if let counter = outcomes[key] { return counter }
      let counter = self.registry.makeCounter(
        descriptor: .init(
          metricName: "maas_gateway_authentications", unitName: "total",
          helpText: "Credentials presented to the gateway, by kind and outcome."),
        labels: [("credential", kind), ("outcome", outcome)])
      outcomes[key] = counter
      return counter
    }
    counter.increment()
  }

  func lookedUp(_ result: String) {
    self.lookups[result]?.increment()
  }
}
