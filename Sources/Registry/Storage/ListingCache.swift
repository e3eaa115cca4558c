import Synchronization

/// Pages already read, each with the tenant's catalogue version it was read at, bounded by how
/// many items they hold together (least recently used pages go first).
///
/// The cache decides nothing about freshness: the store serves a page from it only after reading
/// the tenant's current version (`catalog_versions`, which every committed change moves) and
/// finding it equal. That read is one key lookup, where a page is the list statement's per-row
/// work, so a catalogue that is read far more often than written is served mostly from here,
/// and every replica still answers what is committed.
final class ListingCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
  struct Entry {
    var version: Int64
    var value: Value
    var weight: Int
    var lastUse: UInt64
  }

  private struct State {
    var entries: [Key: Entry] = [:]
    var weight = 0
    var clock: UInt64 = 0
    var hits = 0
    var reads = 0
  }

  /// The most items (the sum of the entries' weights) kept.
  let capacity: Int
  private let state = Mutex(State())

  init(capacity: Int) {
    precondition(capacity > 0)
    self.capacity = capacity
  }

  /// The page kept for `key` and the version it was read at, whether or not it is still current.
  func entry(for key: Key) -> (version: Int64, value: Value)? {
    state.withLock { state in
      guard var entry = state.entries[key] else { return nil }
      state.clock += 1
      entry.lastUse = state.clock
      state.entries[key] = entry
      return (entry.version, entry.value)
    }
  }

  /// Keeps `value`, read at `version`, in place of what `key` had. A value heavier than the whole
  /// cache is not kept. Going over capacity drops the least recently used entries down to three
  /// quarters of it, so that the sort this takes is paid once per many inserts.
  func insert(_ value: Value, version: Int64, weight: Int, for key: Key) {
    guard weight <= capacity else { return }
    state.withLock { state in
      state.clock += 1
      if let old = state.entries.updateValue(
        Entry(version: version, value: value, weight: weight, lastUse: state.clock), forKey: key)
      {
        state.weight -= old.weight
      }
      state.weight += weight
      guard state.weight > capacity else { return }
      for (key, entry) in state.entries.sorted(by: { $0.value.lastUse < $1.value.lastUse }) {
        guard state.weight > capacity * 3 / 4 else { break }
        state.entries[key] = nil
        state.weight -= entry.weight
      }
    }
  }

  /// Records a page served from the cache (after its version was found current).
  func countHit() { state.withLock { $0.hits += 1 } }

  /// Records a page read from the database: not kept, or kept at an older version.
  func countRead() { state.withLock { $0.reads += 1 } }

  /// Pages served from the cache so far.
  var hits: Int { state.withLock { $0.hits } }

  /// Pages read from the database so far.
  var reads: Int { state.withLock { $0.reads } }

  /// Items kept now, the sum of the entries' weights.
  var weight: Int { state.withLock { $0.weight } }

  var count: Int { state.withLock { $0.entries.count } }
}

/// A ListModels page as `RegistryStore.listings` keeps it: the page, and what the last caller
/// that listed it made of it (`RegistryStore.listModels(_:rendering:)`), of whatever type.
struct KeptPage: Sendable {
  var page: Page<Model, ModelCursor>
  var rendering: any Sendable
}
