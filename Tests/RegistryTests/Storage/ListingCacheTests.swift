import Foundation
@testable import Registry
import Testing

@Suite("The listing cache")
struct ListingCacheTests {
  @Test("a kept page comes back with the version it was read at, until a newer read replaces it")
  func keepsTheVersionItWasReadAt() {
    let cache = ListingCache<String, [Int]>(capacity: 10)
    #expect(cache.entry(for: "acme") == nil)
    cache.insert([1, 2], version: 4, weight: 2, for: "acme")
    #expect(cache.entry(for: "acme")?.version == 4)
    #expect(cache.entry(for: "acme")?.value == [1, 2])
    cache.insert([1, 2, 3], version: 5, weight: 3, for: "acme")
    #expect(cache.entry(for: "acme")?.version == 5)
    #expect(cache.entry(for: "acme")?.value == [1, 2, 3])
    #expect(cache.weight == 3, "the replaced page's items no longer count")
  }

  @Test("going over capacity drops the least recently used pages first, down to three quarters")
  func evictsLeastRecentlyUsed() {
    let cache = ListingCache<String, Int>(capacity: 8)
    cache.insert(1, version: 1, weight: 2, for: "a")
    cache.insert(2, version: 1, weight: 2, for: "b")
    cache.insert(3, version: 1, weight: 2, for: "c")
    _ = cache.entry(for: "a")  // a is now used more recently than b and c
    cache.insert(4, version: 1, weight: 4, for: "d")  // 10 > 8: drop b, then c (6 <= 6)
    #expect(cache.entry(for: "b") == nil)
    #expect(cache.entry(for: "c") == nil)
    #expect(cache.entry(for: "a")?.value == 1)
    #expect(cache.entry(for: "d")?.value == 4)
    #expect(cache.weight == 6)
    #expect(cache.count == 2)
  }

  @Test("a kept model counts once, or once per KiB it keeps when it is larger")
  func weighsLargeModels() {
    func model(description: Int = 0, aliases: Int = 0) -> Model {
      Model(
        id: UUID().uuidString, tenantID: "acme", name: "llama", description: String(repeating: "d", count: description),
        labels: ["team": "nlp"], state: .active, createdAt: Date(), updatedAt: Date(),
        aliases: Dictionary(uniqueKeysWithValues: (0..<aliases).map { ("alias-\($0)", "1.0.\($0)") }))
    }
    #expect(RegistryStore.listingWeight(of: [model(), model()]) == 2)
    // 4 KiB of description, kept twice: 8 units.
    #expect(RegistryStore.listingWeight(of: [model(description: 4096)]) == 8)
    // 10,000 aliases of about 20 bytes each: hundreds of units, not one.
    #expect(RegistryStore.listingWeight(of: [model(aliases: 10_000)]) > 300)
  }

  @Test("a page heavier than the whole cache is not kept")
  func refusesOversizedPages() {
    let cache = ListingCache<String, Int>(capacity: 3)
    cache.insert(1, version: 1, weight: 4, for: "big")
    #expect(cache.entry(for: "big") == nil)
    #expect(cache.weight == 0)
  }
}
