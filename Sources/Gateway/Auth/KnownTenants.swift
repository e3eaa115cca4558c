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
/// At most `capacity` tenants (`RecentKeys`: when full, all are forgotten at once). Time is the
/// injected `GatewayClock`'s.
public final class KnownTenants: Sendable {
  /// How long the directory's yes is used.
  public let ttl: Duration
  let clock: any GatewayClock
  private let seen: Mutex<RecentKeys>

  /// - Parameters:
  ///   - ttl: must be positive (a service that wants every call asked has none of these).
  public init(ttl: Duration, capacity: Int = 10_000, clock: any GatewayClock = SystemGatewayClock()) {
    precondition(ttl > .zero && capacity > 0, "known tenants need a positive ttl and capacity")
    self.ttl = ttl
    self.clock = clock
    self.seen = Mutex(RecentKeys(ttl: ttl, capacity: capacity))
  }

  /// Whether the directory said `tenantID` exists less than `ttl` ago.
  func contains(_ tenantID: String) -> Bool {
    let now = self.clock.now()
    return self.seen.withLock { $0.contains(tenantID, at: now) }
  }

  /// Remembers that the directory, asked just now, said `tenantID` exists.
  func insert(_ tenantID: String) {
    let now = self.clock.now()
    self.seen.withLock { $0.note(tenantID, at: now) }
  }

  /// Tenants kept (fresh or not), for tests.
  var count: Int { self.seen.withLock { $0.count } }
}
