import Foundation
import Synchronization

/// Tenants the `CredentialDirectory` said exist, remembered for a short time, so that a busy JWT
/// caller costs one tenant query per `ttl` instead of one per call (an API key's tenant comes with
/// its record, which `ApiKeyCache` keeps).
///
/// Only the directory's yes is kept: a tenant it does not know is asked about on every call, as
/// before. That costs nothing to fear, since only a token signed by a trusted issuer gets as far
/// as the question. Tenants are never deleted through the API; one deleted by hand is still
/// accepted for at most `ttl` after.
///
/// At most `capacity` tenants: when full, all are forgotten at once (a lookup each, once), so the
/// cost per call stays constant. Time is the injected `GatewayClock`'s; a tenant counts as known
/// only between the answer and `ttl` later, so a clock that steps back does not extend it.
public final class KnownTenants: Sendable {
  /// How long the directory's yes is used.
  public let ttl: Duration
  /// Most tenants kept.
  public let capacity: Int
  let clock: any GatewayClock

  /// Tenant id -> when the directory said it exists.
  private let seen = Mutex<[String: Date]>([:])

  /// - Parameters:
  ///   - ttl: must be positive (a service that wants every call asked has none of these).
  public init(ttl: Duration, capacity: Int = 10_000, clock: any GatewayClock = SystemGatewayClock()) {
    precondition(ttl > .zero && capacity > 0, "known tenants need a positive ttl and capacity")
    self.ttl = ttl
    self.capacity = capacity
    self.clock = clock
  }

  /// Whether the directory said `tenantID` exists less than `ttl` ago.
  func contains(_ tenantID: String) -> Bool {
    let now = self.clock.now()
    let ttl = self.ttl / .seconds(1)
    return self.seen.withLock { seen in
      guard let answered = seen[tenantID] else { return false }
      return answered <= now && now.timeIntervalSince(answered) < ttl
    }
  }

  /// Remembers that the directory, asked just now, said `tenantID` exists.
  func insert(_ tenantID: String) {
    let now = self.clock.now()
    self.seen.withLock { seen in
      if seen.count >= self.capacity, seen[tenantID] == nil { seen.removeAll(keepingCapacity: true) }
      seen[tenantID] = now
    }
  }

  /// Tenants kept (fresh or not), for tests.
  var count: Int { self.seen.withLock { $0.count } }
}
