public import Foundation
import Synchronization

/// API-key records read from the `CredentialDirectory`, kept for a short time so that a busy key
/// costs one credential query per `ttl` instead of one per call.
///
/// It keeps what the directory answered (digest, tenant, expiry, revocation, last use), never a
/// verdict and never anything the caller presented: every call still compares the presented
/// key's digest with the record's in constant time and checks revocation and expiry against the
/// clock. So a cached record refuses whatever the database would refuse, with one exception, a
/// key revoked after its record was read:
/// - revoked through this process (`TenantAdministration.revokeApiKey` with this cache): refused
///   from the next call on; the key's entry is dropped, and a lookup that was in flight when it
///   was revoked is not kept;
/// - revoked anywhere else (another replica, SQL by hand): still accepted for at most `ttl` after
///   the revocation committed.
///
/// A busy key does not wait for the directory when its entry lapses: the first call after three
/// quarters of `ttl` starts one read in the background (`Lookup.refresh`), and the calls meanwhile
/// go on with the entry, which is still inside `ttl`. So under steady use a key's calls never
/// stop for a lookup (every call arriving while one ran used to make its own, once a `ttl`, which
/// `make bench-gateway`'s p99 felt), and an entry is still never used past `ttl` after its read.
///
/// A prefix the directory has no key for is remembered as absent for `ttl` too, so a client that
/// keeps presenting a deleted or mistyped key costs one credential query per `ttl`, not one per
/// call. That cannot refuse a key that exists: a prefix is drawn at random when its key is
/// created, and nobody can present it before then (a key created through this process also drops
/// any absent entry under its prefix). Absent prefixes are kept apart, at most `capacity` of them,
/// and all forgotten at once when full, so a flood of made-up prefixes costs constant time per
/// call and never pushes out a real key's record.
///
/// At most `capacity` records: when full, lapsed entries are dropped first, then arbitrary ones.
/// Time is the injected `GatewayClock`'s; an entry counts as fresh only between its read and
/// `ttl` later, so a clock that steps back does not extend it.
public final class ApiKeyCache: Sendable {
  /// How long a record read from the directory is used; revocation elsewhere takes up to this
  /// long to be seen.
  public let ttl: Duration
  /// Most entries kept.
  public let capacity: Int
  let clock: any GatewayClock

  private struct Entry {
    var credential: StoredApiKeyCredential
    var readTime: Date
    /// A background read of this key is running (one at a time).
    var refreshing = false
  }

  private struct State {
    var entries: [String: Entry] = [:]
    /// Prefixes the directory had no key for.
    var absent: RecentKeys
    /// Moves on every invalidation: a lookup that started before one does not store its answer.
    var generation: UInt64 = 0
  }

  private let state: Mutex<State>

  /// What `lookup` found.
  enum Lookup: Equatable {
    case fresh(StoredApiKeyCredential)
    /// Use the record, and read the key again in the background: hand the answer to
    /// `store(_:prefix:ticket:)`, or `refreshed(prefix:ticket:found:)` when there is none to keep.
    case refresh(StoredApiKeyCredential, ticket: UInt64)
    /// Ask the directory, then hand its answer to `store(_:prefix:ticket:)` with this ticket.
    case miss(ticket: UInt64)
    /// The directory had no key with the prefix less than `ttl` ago.
    case absent
  }

  /// - Parameters:
  ///   - ttl: must be positive (a service that wants no cache has none).
  ///   - capacity: at least 1.
  public init(ttl: Duration, capacity: Int = 10_000, clock: any GatewayClock = SystemGatewayClock()) {
    precondition(ttl > .zero && capacity > 0, "an API key cache needs a positive ttl and capacity")
    self.ttl = ttl
    self.capacity = capacity
    self.clock = clock
    self.state = Mutex(State(absent: RecentKeys(ttl: ttl, capacity: capacity)))
  }

  private func isFresh(_ entry: Entry, at now: Date) -> Bool {
    RecentKeys.isFresh(entry.readTime, at: now, ttl: self.ttl)
  }

  /// The record of the key with `prefix` if one was read less than `ttl` ago; once it is three
  /// quarters of `ttl` old, the first caller is also asked to read it again (`.refresh`).
  /// `.absent` when the directory had none less than `ttl` ago.
  func lookup(prefix: String) -> Lookup {
    let now = self.clock.now()
    return self.state.withLock { state in
      if state.absent.contains(prefix, at: now) { return .absent }
      guard var entry = state.entries[prefix], self.isFresh(entry, at: now) else { return .miss(ticket: state.generation) }
      guard !entry.refreshing, now.timeIntervalSince(entry.readTime) >= self.ttl * 0.75 / .seconds(1) else {
        return .fresh(entry.credential)
      }
      entry.refreshing = true
      state.entries[prefix] = entry
      return .refresh(entry.credential, ticket: state.generation)
    }
  }

  /// A background read asked for by `.refresh` ended without a record to keep: the directory has
  /// none (`found` false: the key was deleted, and its entry goes), or the read failed (the entry
  /// stays for its `ttl`, and the next caller past three quarters of it tries again).
  func refreshed(prefix: String, ticket: UInt64, found: Bool) {
    self.state.withLock { state in
      guard state.generation == ticket else { return }
      if found { state.entries[prefix]?.refreshing = false } else { state.entries[prefix] = nil }
    }
  }

  /// Keeps what the directory answered for `prefix`, unless a key was invalidated since the
  /// lookup that handed out `ticket` (the answer may predate a revocation).
  func store(_ credential: StoredApiKeyCredential, prefix: String, ticket: UInt64) {
    let now = self.clock.now()
    self.state.withLock { state in
      guard state.generation == ticket else { return }
      if state.entries[prefix] == nil, state.entries.count >= self.capacity {
        state.entries = state.entries.filter { self.isFresh($0.value, at: now) }
        while state.entries.count >= self.capacity, let victim = state.entries.keys.first {
          state.entries[victim] = nil
        }
      }
      var credential = credential
      // A use this process recorded (or is recording) after the directory was read stays known,
      // so concurrent lookups of a busy key do not each record it again.
      if let known = state.entries[prefix]?.credential, known.keyID == credential.keyID,
        let recorded = known.lastUsedTime, recorded > credential.lastUsedTime ?? .distantPast
      {
        credential.lastUsedTime = recorded
      }
      state.entries[prefix] = Entry(credential: credential, readTime: now)
    }
  }

  /// Whether to record a use of the key at `time`: yes when the last use this cache knows of
  /// (the record's, or one recorded since) is a minute old or more, or unknown; nil when the key
  /// has no entry (the caller then goes by the record it read). Answers yes to one caller only
  /// and remembers `time` as the last use, so concurrent calls with a busy key make one write a
  /// minute, not one each for as long as the record stays cached.
  func claimUseRecording(prefix: String, keyID: UUID, at time: Date) -> Bool? {
    self.state.withLock { state in
      guard var entry = state.entries[prefix], entry.credential.keyID == keyID else { return nil }
      if let last = entry.credential.lastUsedTime, time.timeIntervalSince(last) < 60 { return false }
      entry.credential.lastUsedTime = time
      state.entries[prefix] = entry
      return true
    }
  }

  /// Remembers that the directory, asked after the lookup that handed out `ticket`, had no key
  /// with `prefix` (unless a key was invalidated since).
  func storeAbsent(prefix: String, ticket: UInt64) {
    let now = self.clock.now()
    self.state.withLock { state in
      guard state.generation == ticket else { return }
      state.absent.note(prefix, at: now)
    }
  }

  /// Forgets that `prefix` was absent: a key under it was just created.
  func forgetAbsent(prefix: String) {
    self.state.withLock { $0.absent.forget(prefix) }
  }

  /// Drops the key's entry, and makes lookups in flight forget what they read: after this
  /// returns, the key is checked against the directory again.
  public func invalidate(keyID: UUID) {
    self.state.withLock { state in
      state.generation &+= 1
      state.entries = state.entries.filter { $0.value.credential.keyID != keyID }
    }
  }

  /// Records kept (fresh or not), for tests.
  var count: Int { self.state.withLock { $0.entries.count } }
  /// Prefixes remembered as absent (fresh or not), for tests.
  var absentCount: Int { self.state.withLock { $0.absent.count } }
}
