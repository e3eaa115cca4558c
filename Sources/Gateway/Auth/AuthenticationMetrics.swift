public import MaaSRuntime

/// What the gateway's door sees, for its metrics endpoint: each credential presented to the
/// Gateway service (Admin's own token is checked apart, and not counted here), by kind
/// (`api_key`, `jwt`, or `none` when none could be read) and outcome (`ok`, the refusal's
/// `AuthenticationError.reason`, or `unavailable` when the credential store could not be asked);
/// and how API-key records were found (`fresh` in the cache, `refresh`: in the cache and read
/// again behind the call, `miss`: read during the call, `absent`: known from a recent read to
/// have no key). A rising `miss` share under steady load
/// means the cache's TTL is shorter than the keys' call intervals.
public final class AuthenticationMetrics: Sendable {
  private struct Outcome: Hashable, Sendable {
    var credential: String
    var outcome: String
  }

  private let outcomes: LabelledCounters<Outcome>
  private let lookups: LabelledCounters<String>

  public init(_ metrics: ServerMetrics) {
    self.outcomes = LabelledCounters(
      metrics.registry, metricName: "maas_gateway_authentications",
      helpText: "Credentials presented to the gateway, by kind and outcome."
    ) { [("credential", $0.credential), ("outcome", $0.outcome)] }
    self.lookups = LabelledCounters(
      metrics.registry, metricName: "maas_gateway_api_key_cache_lookups",
      helpText: "API-key records looked up in the gateway's cache, by what the cache had.", known: ["fresh", "refresh", "miss", "absent"]
    ) { [("result", $0)] }
  }

  func authenticated(_ credential: BearerCredential?, outcome: String) {
    let kind =
      switch credential {
      case .apiKey: "api_key"
      case .jwt: "jwt"
      case nil: "none"
      }
    self.outcomes[Outcome(credential: kind, outcome: outcome)].increment()
  }

  /// - Parameter result: `fresh`, `refresh`, `miss` or `absent`.
  func lookedUp(_ result: String) {
    self.lookups[result].increment()
  }
}
