/// What a tenant's quota limits, mirroring `maas.quota.v1.Resource`.
///
/// Raw values are the proto enum numbers, so storage can keep them in a small integer column and
/// the handlers can translate without a table; `RESOURCE_UNSPECIFIED` (0) and unknown numbers have
/// no case on purpose: they never get past validation.
public enum QuotaResource: Int, CaseIterable, Sendable, Hashable, Codable, CustomStringConvertible {
  case models = 1
  case storageBytes = 2
  case gpuSeconds = 3
  case apiCallsPerDay = 4
  case concurrentGPUs = 5

  /// How a resource is taken and given back.
  public enum Kind: Sendable, Hashable, Codable {
    /// Held: taken with Reserve/Commit, given back with Release or expiry; never resets.
    case stock
    /// Spent within a window: taken with Consume or RecordUsage, back when the window resets.
    case flow
  }

  public var kind: Kind {
    switch self {
    case .models, .storageBytes, .concurrentGPUs: .stock
    case .gpuSeconds, .apiCallsPerDay: .flow
    }
  }

  /// The window usage is counted over; `.none` for stock resources.
  public var window: QuotaWindow {
    switch self {
    case .models, .storageBytes, .concurrentGPUs: .none
    case .apiCallsPerDay: .utcDay
    // The proto counts GPU-seconds over a calendar month, not a day, although the seed speaks
    // of "GPU hours" without a period: a monthly budget is what billing and tools show.
    case .gpuSeconds: .utcMonth
    }
  }

  /// The base unit every amount is counted in (`ResourceQuota.unit`).
  public var unit: String {
    switch self {
    case .models: "models"
    case .storageBytes: "bytes"
    case .gpuSeconds: "GPU-seconds"
    case .apiCallsPerDay: "calls"
    case .concurrentGPUs: "GPUs"
    }
  }

  /// The unit a usage line bills in (`UsageLine.unit`): flow resources bill what was spent, stock
  /// resources the time integral of what was held, in base-unit-hours.
  public var billingUnit: String {
    switch self {
    case .models: "model-hours"
    case .storageBytes: "byte-hours"
    case .gpuSeconds: "GPU-seconds"
    case .apiCallsPerDay: "calls"
    case .concurrentGPUs: "GPU-hours"
    }
  }

  /// The name RESOURCE_EXHAUSTED messages use, as in quota.proto's example
  /// ("api_calls_per_day: limit 10000, ...").
  public var description: String {
    switch self {
    case .models: "models"
    case .storageBytes: "storage_bytes"
    case .gpuSeconds: "gpu_seconds"
    case .apiCallsPerDay: "api_calls_per_day"
    case .concurrentGPUs: "concurrent_gpus"
    }
  }
}
