public import QuotaClient
import Logging
import MaaSContracts
public import MaaSRuntime
import ServiceLifecycle

/// The registry service's own configuration, beside the runtime's `MAAS_REGISTRY_*` server and
/// database variables.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MAAS_REGISTRY_QUOTA_*` | | the quota service: `QuotaUpstreamSettings` (target, timeout, hold) |
/// | `MAAS_REGISTRY_PAGE_TOKEN_SECRET` | built in | key of the page tokens' MAC; the same on every replica, at least 16 bytes |
/// | `MAAS_REGISTRY_IDEMPOTENCY_RETENTION_HOURS` | `48` | remembered answers older than this are swept (at least 24) |
/// | `MAAS_REGISTRY_RELEASE_RETRY_SECONDS` | `30` | how often quota of deleted rows that could not be released is released again |
/// | `MAAS_REGISTRY_LIST_CACHE_MODELS` | `20000` | how many models the ListModels pages kept in memory may hold together (a model counts once per KiB it keeps when larger); `0` turns the cache off |
public struct RegistrySettings: Sendable, Hashable {
  /// Used when `MAAS_REGISTRY_PAGE_TOKEN_SECRET` is unset: tokens still cannot cross tenants or
  /// filters, but anyone who reads this source can mint one for their own listing. Set a secret
  /// in production.
  public static let defaultPageTokenSecret = "maas-registry-development-page-token-secret"

  public var quota: QuotaUpstreamSettings
  public var pageTokenSecret: String
  public var idempotencyRetention: Duration
  public var releaseRetryInterval: Duration
  public var listCacheModels: Int

  public init(
    quota: QuotaUpstreamSettings = QuotaUpstreamSettings(),
    pageTokenSecret: String = RegistrySettings.defaultPageTokenSecret, idempotencyRetention: Duration = .seconds(48 * 3600),
    releaseRetryInterval: Duration = .seconds(30), listCacheModels: Int = RegistryStore.defaultListingCacheModels
  ) {
    self.quota = quota
    self.pageTokenSecret = pageTokenSecret
    self.idempotencyRetention = idempotencyRetention
    self.releaseRetryInterval = releaseRetryInterval
    self.listCacheModels = listCacheModels
  }

  public static func read(prefix: String, from reader: inout EnvironmentReader) -> RegistrySettings {
    let defaults = RegistrySettings()
    let quota = QuotaUpstreamSettings.read(prefix: prefix, from: &reader)
    let secret = PageTokenSealer.secret(prefix: prefix, fallback: defaults.pageTokenSecret, from: &reader)
    let retentionHours = reader.read("\(prefix)_IDEMPOTENCY_RETENTION_HOURS", default: 48, as: .integer(in: 24...24 * 365))
    let retry = reader.read("\(prefix)_RELEASE_RETRY_SECONDS", default: defaults.releaseRetryInterval, as: .seconds(in: 1...3600))
    let listCache = reader.read("\(prefix)_LIST_CACHE_MODELS", default: defaults.listCacheModels, as: .integer(in: 0...10_000_000))
    return RegistrySettings(
      quota: quota, pageTokenSecret: secret,
      idempotencyRetention: .seconds(retentionHours * 3600), releaseRetryInterval: retry, listCacheModels: listCache)
  }
}

/// `maas-registry`: the model registry on the shared runtime (default port 50052), a client of
/// the quota service.
public enum RegistryService {
  public static let prefix = "MAAS_REGISTRY"

  public static let definition = ServiceDefinition<RegistrySettings>(
    program: "maas-registry", prefix: prefix, defaultPort: 50052,
    schema: RegistrySchema.plan(serviceRole:),
    readSettings: { reader in RegistrySettings.read(prefix: prefix, from: &reader) },
    // The list statement's two per-row subqueries (labels, aliases) made re-planning it under the
    // server's `auto` mode a third of its Postgres CPU (bench-gateway: 846 -> 603 µs per page).
    // Each filter combination is its own statement, and every plan leads with the tenant's index,
    // so one plan per statement loses nothing.
    genericPlans: true,
    makeServices: { settings, pool, logger, metrics in
      let (upstream, quota) = settings.quota.connect()
      let store = RegistryStore(
        pool: pool, quota: quota, logger: logger, holdTTL: settings.quota.holdTTL, listingCacheModels: settings.listCacheModels)
      RegistryMetrics.register(store, in: metrics)
      return .init(
        services: [RegistryRPCService(store: store, tokens: PageTokens(secret: settings.pageTokenSecret), logger: logger)],
        // The group stops these in reverse: the maintenance loops before the quota client they use.
        background: [
          upstream,
          // Quota of deleted rows that could not be released at delete time.
          PeriodicTask("quota release retry", every: settings.releaseRetryInterval, logger: logger) {
            let released = try await store.releasePendingReservations(olderThan: settings.releaseRetryInterval)
            if released > 0 { logger.info("released pending quota reservations", metadata: ["count": "\(released)"]) }
          },
          // Remembered idempotency answers past their retention, hourly.
          PeriodicTask("idempotency sweep", every: .seconds(3600), logger: logger) {
            let swept = try await store.sweepIdempotencyKeys(olderThan: settings.idempotencyRetention)
            if swept > 0 { logger.info("swept idempotency answers", metadata: ["count": "\(swept)"]) }
          },
        ])
    })
}
