/// One resource's limit: the most a tenant may hold (stock) or spend per window (flow).
public enum QuotaLimit: Sendable, Hashable, Codable, CustomStringConvertible {
  /// At most this many base units; `0` forbids any use. Never negative once validated.
  case limited(Int64)
  /// Every request is granted; usage is still counted.
  case unlimited

  /// Whether a total of `total` base units (used + reserved + asked) fits.
  public func allows(total: Int64) -> Bool {
    switch self {
    case .limited(let value): total <= value
    case .unlimited: true
    }
  }

  public var description: String {
    switch self {
    case .limited(let value): String(value)
    case .unlimited: "unlimited"
    }
  }
}

/// The limits a tenant gets for every resource it has no limit of its own for.
public struct QuotaDefaults: Sendable, Hashable {
  public var limits: [QuotaResource: QuotaLimit]

  public init(limits: [QuotaResource: QuotaLimit]) {
    self.limits = limits
  }

  /// The limit in force for `resource`; a resource missing from `limits` is unlimited, so a
  /// partial table never silently forbids a resource.
  public func limit(for resource: QuotaResource) -> QuotaLimit {
    limits[resource] ?? .unlimited
  }

  /// The seed's quota model (issue 4, resources.proto).
  public static let seed = QuotaDefaults(limits: [
    .models: .limited(100),
    // 50 GB in SI units (50 * 10^9 bytes), not 50 GiB: the seed says "GB" and resources.proto
    // spells the default out as 50,000,000,000 bytes, so tools showing GB agree with the limit.
    .storageBytes: .limited(50 * 1_000_000_000),
    // 100 GPU hours per UTC month, counted in GPU-seconds so that reports stay exact integers.
    .gpuSeconds: .limited(100 * 3_600),
    .apiCallsPerDay: .limited(10_000),
    .concurrentGPUs: .limited(16),
  ])
}
