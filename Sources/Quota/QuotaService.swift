import Logging
public import MaaSRuntime
import Postgres
import ServiceLifecycle

/// The quota service's own configuration, beside the runtime's `MAAS_QUOTA_*` server and
/// database variables.
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MAAS_QUOTA_DEFAULT_LIMIT_<RESOURCE>` | the seed's | default limit: an integer in base units, or `unlimited` |
/// | `MAAS_QUOTA_PRICE_<RESOURCE>` | `0` | price of one billing unit, a decimal (at most 12 fraction digits) |
/// | `MAAS_QUOTA_CURRENCY` | `USD` | ISO 4217 code of report amounts |
/// | `MAAS_QUOTA_CURRENCY_DIGITS` | `2` | digits amounts are rounded to (half-even) |
/// | `MAAS_QUOTA_CONSUME_BATCH_MAX` | `256` | most Consume calls of one tenant and resource per transaction |
/// | `MAAS_QUOTA_IDEMPOTENCY_RETENTION_HOURS` | `48` | remembered answers older than this are swept (at least 24) |
///
/// `<RESOURCE>` is `MODELS`, `STORAGE_BYTES`, `GPU_SECONDS`, `API_CALLS_PER_DAY` or
/// `CONCURRENT_GPUS`.
public struct QuotaSettings: Sendable, Hashable {
  public var policy: QuotaPolicy
  public var maxConsumeBatch: Int
  public var idempotencyRetention: Duration

  public init(policy: QuotaPolicy = QuotaPolicy(), maxConsumeBatch: Int = 256, idempotencyRetention: Duration = .seconds(48 * 3600)) {
    self.policy = policy
    self.maxConsumeBatch = maxConsumeBatch
    self.idempotencyRetention = idempotencyRetention
  }

  public static func read(prefix: String, from reader: inout EnvironmentReader) -> QuotaSettings {
    var limits = QuotaDefaults.seed.limits
    var priceTexts: [QuotaResource: String] = [:]
    for resource in QuotaResource.allCases {
      let name = resource.description.uppercased()
      if let limit = reader.readOptional("\(prefix)_DEFAULT_LIMIT_\(name)", as: .quotaLimit) { limits[resource] = limit }
      priceTexts[resource] = reader.readOptional("\(prefix)_PRICE_\(name)", as: .nonEmptyString)
    }
    var prices = PriceTable()
    switch PriceTable.parse(priceTexts) {
    case .success(let table): prices = table
    case .failure(let error):
      for problem in error.problems {
        reader.report(ConfigurationProblem(
          variable: "\(prefix)_PRICE_\(problem.resource.description.uppercased())", value: problem.text,
          reason: "is not a price: \(problem.error)"))
      }
    }
    let code = reader.read("\(prefix)_CURRENCY", default: "USD", as: .currencyCode)
    let digits = reader.read("\(prefix)_CURRENCY_DIGITS", default: 2, as: .integer(in: 0...Money.fractionDigits))
    let batch = reader.read("\(prefix)_CONSUME_BATCH_MAX", default: 256, as: .integer(in: 1...10_000))
    let retentionHours = reader.read("\(prefix)_IDEMPOTENCY_RETENTION_HOURS", default: 48, as: .integer(in: 24...24 * 365))
    return QuotaSettings(
      policy: QuotaPolicy(
        defaults: QuotaDefaults(limits: limits), prices: prices,
        currency: Currency(code: code, minorUnitDigits: digits)),
      maxConsumeBatch: batch, idempotencyRetention: .seconds(retentionHours * 3600))
  }
}

/// `maas-quota`: the quota service on the shared runtime (default port 50054).
public enum QuotaService {
  public static let prefix = "MAAS_QUOTA"

  public static let definition = ServiceDefinition<QuotaSettings>(
    program: "maas-quota", prefix: prefix, defaultPort: 50054,
    schema: QuotaSchema.plan(serviceRole:),
    readSettings: { reader in QuotaSettings.read(prefix: prefix, from: &reader) },
    makeServices: { settings, pool, logger, metrics in
      let store = QuotaStore(pool: pool, policy: settings.policy, logger: logger, maxConsumeBatch: settings.maxConsumeBatch)
      return .init(
        services: [QuotaRPCService(store: store, logger: logger, metrics: QuotaMetrics(metrics))],
        background: [
          // Remembered idempotency answers past their retention, hourly.
          PeriodicTask("idempotency sweep", every: .seconds(3600), logger: logger) {
            let swept = try await store.sweepIdempotencyKeys(olderThan: settings.idempotencyRetention)
            if swept > 0 { logger.info("swept idempotency answers", metadata: ["count": "\(swept)"]) }
          }
        ])
    })
}

extension ConfigurationParser where Value == QuotaLimit {
  /// A non-negative integer, or `unlimited`.
  static var quotaLimit: Self {
    Self(expectation: "a non-negative integer or \"unlimited\"") { text in
      if text.lowercased() == "unlimited" { return .unlimited }
      guard let value = Int64(text), value >= 0 else { return nil }
      return .limited(value)
    }
  }
}

extension ConfigurationParser where Value == String {
  /// Three upper-case letters (ISO 4217).
  static var currencyCode: Self {
    Self(expectation: "an ISO 4217 code such as USD") { text in
      text.utf8.count == 3 && text.unicodeScalars.allSatisfy({ ("A"..."Z").contains($0) }) ? text : nil
    }
  }
}
