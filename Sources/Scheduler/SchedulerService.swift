public import QuotaClient
import Logging
import MaaSContracts
public import MaaSRuntime
import ServiceLifecycle

/// The scheduler's own configuration, beside the runtime's `MAAS_SCHEDULER_*` server and
/// database variables.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MAAS_SCHEDULER_QUOTA_*` | | the quota service: `QuotaUpstreamSettings` (target, timeout; no hold TTL, the scheduler takes quota committed at once) |
/// | `MAAS_SCHEDULER_HEARTBEAT_GRACE_SECONDS` | `30` | a node silent this long is NOT_READY and takes no placements |
/// | `MAAS_SCHEDULER_INDEX_REFRESH_SECONDS` | `5` | how often the placement index loads what changed in Postgres (other replicas' writes); every 60th load reads everything |
/// | `MAAS_SCHEDULER_PLACEMENT_ATTEMPTS` | `5` | commits retried after a conflict with another replica before ABORTED |
/// | `MAAS_SCHEDULER_QUOTA_RETRY_SECONDS` | `30` | how often quota holds of released allocations that could not be given back are retried, and quota intents reconciled |
/// | `MAAS_SCHEDULER_QUOTA_MARK_SECONDS` | `1` | how often the marks of quota holds Releases gave back are written, all in one statement (and once more at a graceful stop) |
/// | `MAAS_SCHEDULER_QUOTA_INTENT_GRACE_SECONDS` | `300` | a Schedule's quota intent this old with no allocation is taken for a dead Schedule's, and its hold given back; longer than any Schedule can take |
/// | `MAAS_SCHEDULER_PAGE_TOKEN_SECRET` | built in | key of the page tokens' MAC; the same on every replica, at least 16 bytes |
/// | `MAAS_SCHEDULER_RELEASED_RETENTION_HOURS` | `168` | how long RELEASED allocations are kept (GetAllocation and a repeated Release answer them) before they are deleted; 1 to 87,600 |
public struct SchedulerSettings: Sendable, Hashable {
  /// Used when `MAAS_SCHEDULER_PAGE_TOKEN_SECRET` is unset: tokens still cannot cross listings or
  /// filters, but anyone who reads this source can mint one. Set a secret in production.
  public static let defaultPageTokenSecret = "maas-scheduler-development-page-token-secret"

  public var quota: QuotaUpstreamSettings
  public var heartbeatGrace: Duration
  public var indexRefreshInterval: Duration
  public var placementAttempts: Int
  public var quotaRetryInterval: Duration
  public var quotaIntentGrace: Duration
  public var quotaMarkInterval: Duration
  public var pageTokenSecret: String
  public var releasedRetention: Duration

  public init(
    quota: QuotaUpstreamSettings = QuotaUpstreamSettings(),
    heartbeatGrace: Duration = .seconds(30), indexRefreshInterval: Duration = .seconds(5), placementAttempts: Int = 5,
    quotaRetryInterval: Duration = .seconds(30), quotaIntentGrace: Duration = .seconds(300),
    quotaMarkInterval: Duration = .seconds(1), pageTokenSecret: String = SchedulerSettings.defaultPageTokenSecret,
    releasedRetention: Duration = .seconds(168 * 3600)
  ) {
    self.quota = quota
    self.heartbeatGrace = heartbeatGrace
    self.indexRefreshInterval = indexRefreshInterval
    self.placementAttempts = placementAttempts
    self.quotaRetryInterval = quotaRetryInterval
    self.quotaIntentGrace = quotaIntentGrace
    self.quotaMarkInterval = quotaMarkInterval
    self.pageTokenSecret = pageTokenSecret
    self.releasedRetention = releasedRetention
  }

  public static func read(prefix: String, from reader: inout EnvironmentReader) -> SchedulerSettings {
    let defaults = SchedulerSettings()
    let quota = QuotaUpstreamSettings.read(prefix: prefix, holds: false, from: &reader)
    let grace = reader.read("\(prefix)_HEARTBEAT_GRACE_SECONDS", default: defaults.heartbeatGrace, as: .seconds(in: 3...3600))
    let refresh = reader.read("\(prefix)_INDEX_REFRESH_SECONDS", default: defaults.indexRefreshInterval, as: .seconds(in: 0.1...600))
    let attempts = reader.read("\(prefix)_PLACEMENT_ATTEMPTS", default: defaults.placementAttempts, as: .integer(in: 1...50))
    let retry = reader.read("\(prefix)_QUOTA_RETRY_SECONDS", default: defaults.quotaRetryInterval, as: .seconds(in: 1...3600))
    let intentGrace = reader.read(
      "\(prefix)_QUOTA_INTENT_GRACE_SECONDS", default: defaults.quotaIntentGrace, as: .seconds(in: 60...86_400))
    let marks = reader.read("\(prefix)_QUOTA_MARK_SECONDS", default: defaults.quotaMarkInterval, as: .seconds(in: 0.1...3600))
    let secret = PageTokenSealer.secret(prefix: prefix, fallback: defaults.pageTokenSecret, from: &reader)
    let retentionHours = reader.read(
      "\(prefix)_RELEASED_RETENTION_HOURS", default: Int(defaults.releasedRetention.components.seconds / 3600),
      as: .integer(in: 1...87_600))
    return SchedulerSettings(
      quota: quota, heartbeatGrace: grace, indexRefreshInterval: refresh,
      placementAttempts: attempts, quotaRetryInterval: retry, quotaIntentGrace: intentGrace, quotaMarkInterval: marks,
      pageTokenSecret: secret, releasedRetention: .seconds(retentionHours * 3600))
  }
}

/// `maas-scheduler`: GPU inventory and placement on the shared runtime (default port 50053), a
/// client of the quota service.
public enum SchedulerService {
  public static let prefix = "MAAS_SCHEDULER"

  public static let definition = ServiceDefinition<SchedulerSettings>(
    program: "maas-scheduler", prefix: prefix, defaultPort: 50053,
    schema: SchedulerSchema.plan(serviceRole:),
    readSettings: { reader in SchedulerSettings.read(prefix: prefix, from: &reader) },
    // Every statement is a key lookup or a write over `unnest` arrays; with the server's `auto`
    // mode the writes were planned anew on each placement (a third of the scheduler's Postgres
    // CPU per placement in bench-scheduler).
    genericPlans: true,
    makeServices: { settings, pool, logger, metrics in
      let (upstream, quota) = settings.quota.connect()
      let store = SchedulerStore(
        pool: pool, quota: quota, heartbeatGrace: settings.heartbeatGrace,
        maxAttempts: settings.placementAttempts, logger: logger)
      SchedulerMetrics.register(store, in: metrics)
      return .init(
        services: [SchedulerRPCService(store: store, tokens: SchedulerPageTokens(secret: settings.pageTokenSecret), logger: logger)],
        background: [
          upstream,
          // The placement index in step with the database (what other replicas placed and
          // released, heartbeats they recorded): a complete load at start, then the rows changed
          // since (a complete load every 60th, or when a node was deleted); then nodes that
          // missed their heartbeats leave the placement orders until they heartbeat again.
          PeriodicTask("placement index reload", every: settings.indexRefreshInterval, logger: logger) {
            try await store.refreshIndex()
            store.leaveOutSilentNodes()
          },
          // The marks of quota holds Releases gave back, every second in one statement, and once
          // more after the server has drained at shutdown (a crash loses at most the last
          // interval's, each costing one repeated quota release later).
          PeriodicTask("quota release marks", every: settings.quotaMarkInterval, finalRound: true, logger: logger) {
            try await store.flushQuotaMarks()
          },
          // Quota holds of released allocations that Release could not give back (the quota
          // service was down; younger ones are left to the Release still giving them back), and,
          // through their quota intents, holds of Schedules that wrote no allocation and could
          // not give them back: the replica died, the quota service was down, or the COMMIT
          // outcome was lost while the database was unreachable.
          PeriodicTask("quota release retry", every: settings.quotaRetryInterval, delayFirstRound: true, logger: logger) {
            let released = try await store.releaseDueQuota(olderThan: settings.quotaRetryInterval)
            if released > 0 { logger.info("gave back quota holds of released allocations", metadata: ["count": "\(released)"]) }
            let intents = try await store.reconcileQuotaIntents(olderThan: settings.quotaIntentGrace)
            if intents.givenBack > 0 {
              logger.info("gave back quota holds of Schedules that wrote no allocation", metadata: ["count": "\(intents.givenBack)"])
            }
          },
          // RELEASED allocations past the retention, every ten minutes (a scan of the table;
          // every replica may run it, SKIP LOCKED keeps them apart).
          PeriodicTask("released allocations purge", every: .seconds(600), delayFirstRound: true, logger: logger) {
            let purged = try await store.purgeReleasedAllocations(olderThan: settings.releasedRetention)
            if purged > 0 { logger.info("deleted released allocations past the retention", metadata: ["count": "\(purged)"]) }
          },
        ])
    })
}
