/// An unambiguous byte form of a few values, for digests and fingerprints: every value is
/// length-prefixed, and maps are sorted by key. The same on every replica and every run (unlike
/// Swift's seeded `Hasher`), so what is derived from it can cross processes.
public struct Canonical: Sendable {
  public private(set) var bytes: [UInt8] = []

  public init() {}

  public mutating func add(_ text: String) { add(Array(text.utf8)) }

  public mutating func add(_ data: [UInt8]) {
    bytes += withUnsafeBytes(of: UInt32(data.count).bigEndian) { Array($0) }
    bytes += data
  }

  public mutating func add(_ map: [String: String]) {
    add(String(map.count))
    for (key, value) in map.sorted(by: { $0.key < $1.key }) {
      add(key)
      add(value)
    }
  }

  public mutating func add(_ flag: Bool) { add(flag ? "1" : "0") }

  public mutating func add(_ number: Int64) { add(String(number)) }

  /// Lower-case hex of the SHA-256 of what was added.
  public var fingerprint: String { Digest256.hex(Digest256.hash(bytes)) }
}
