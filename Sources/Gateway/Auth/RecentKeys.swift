import Foundation

/// Keys noted at an instant and known for `ttl` after it: what the gateway remembers of the
/// directory's answers that carry no record (an API-key prefix with no key, a tenant that
/// exists). At most `capacity` keys; when a new one finds it full, all are forgotten at once, so
/// a flood of new keys costs constant time per call and bounded memory. It takes no lock: its
/// owner keeps it under its own.
struct RecentKeys {
  let ttl: Duration
  let capacity: Int
  /// Key -> when it was noted.
  private var noted: [String: Date] = [:]

  init(ttl: Duration, capacity: Int) {
    self.ttl = ttl
    self.capacity = capacity
  }

  /// Whether an answer read at `read` still counts at `now`: not before it (a clock that steps
  /// back does not extend it), and less than `ttl` after.
  static func isFresh(_ read: Date, at now: Date, ttl: Duration) -> Bool {
    read <= now && now.timeIntervalSince(read) < ttl / .seconds(1)
  }

  /// Whether `key` was noted less than `ttl` before `now`. A lapsed note is dropped.
  mutating func contains(_ key: String, at now: Date) -> Bool {
    guard let read = self.noted[key] else { return false }
    if Self.isFresh(read, at: now, ttl: self.ttl) { return true }
    self.noted[key] = nil
    return false
  }

  mutating func note(_ key: String, at now: Date) {
    if self.noted[key] == nil, self.noted.count >= self.capacity { self.noted.removeAll(keepingCapacity: true) }
    self.noted[key] = now
  }

  mutating func forget(_ key: String) { self.noted[key] = nil }

  /// Keys noted, fresh or not.
  var count: Int { self.noted.count }
}
