import Foundation
import MaaSRuntime
import Testing

@Suite("Page tokens sealed for every service")
struct PageTokenSealerTests {
  static let sealer = PageTokenSealer(secret: "tests-page-token-secret", service: "scheduler")

  static func listing(kind: UInt8 = 1, tenant: String = "acme", labels: [String: String] = ["team": "a"]) -> PageTokenSealer.Listing {
    var filters = Canonical()
    filters.add(tenant)
    filters.add(labels)
    return PageTokenSealer.Listing(kind: kind, filters: filters)
  }

  static let position = PositionBytes.of(Int64(1_795_000_000_123_456)) + PositionBytes.of(UUID())

  @Test("the digests tokens use are SHA-256 and HMAC-SHA256 (RFC 4231 case 2)")
  func digests() {
    #expect(Digest256.hex(Digest256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    #expect(
      Digest256.hex(Digest256.hmac(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
        == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
  }

  @Test("a token opens to the position it was sealed with, for the same listing, and does not show it")
  func roundTrip() throws {
    let token = Self.sealer.seal(Array("node-0042".utf8), in: Self.listing())
    #expect(try Self.sealer.open(token, in: Self.listing()) == Array("node-0042".utf8))
    #expect(!token.contains("node"))
    #expect(try Self.sealer.open(Self.sealer.seal(Self.position, in: Self.listing()), in: Self.listing()) == Self.position)
  }

  @Test("a genuine token of another tenant, other filters or another kind of listing is refused as of another listing")
  func boundToItsListing() {
    let token = Self.sealer.seal(Self.position, in: Self.listing())
    for other in [Self.listing(tenant: "globex"), Self.listing(labels: ["team": "b"]), Self.listing(labels: [:]), Self.listing(kind: 2)] {
      #expect(throws: PageTokenSealer.Refusal.otherListing) { try Self.sealer.open(token, in: other) }
    }
  }

  @Test("every single-character change, truncation, garbage, another secret's or another service's token is malformed")
  func tamperEvident() {
    let token = Self.sealer.seal(Self.position, in: Self.listing())
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    var characters = Array(token)
    for index in characters.indices {
      let original = characters[index]
      characters[index] = alphabet.first { $0 != original }!
      #expect(throws: PageTokenSealer.Refusal.malformed, "changed at \(index)") {
        try Self.sealer.open(String(characters), in: Self.listing())
      }
      characters[index] = original
    }
    let others = [
      String(token.dropLast(2)), "", "not a token!", String(repeating: "A", count: 5000),
      PageTokenSealer(secret: "somebody else's secret", service: "scheduler").seal(Self.position, in: Self.listing()),
      PageTokenSealer(secret: "tests-page-token-secret", service: "registry").seal(Self.position, in: Self.listing()),
    ]
    for other in others {
      #expect(throws: PageTokenSealer.Refusal.malformed) { try Self.sealer.open(other, in: Self.listing()) }
    }
  }

  @Test("positions keep their numbers and ids, and refuse the wrong width")
  func positions() {
    let id = UUID()
    #expect(PositionBytes.uuid(PositionBytes.of(id)[...]) == id)
    #expect(PositionBytes.int64(PositionBytes.of(Int64(-42))[...]) == -42)
    #expect(PositionBytes.of(Int64(1)) == [0, 0, 0, 0, 0, 0, 0, 1])
    #expect(PositionBytes.uuid(PositionBytes.of(id).dropLast()) == nil)
    #expect(PositionBytes.int64([1, 2, 3][...]) == nil)
  }

  @Test("the secret comes from <PREFIX>_PAGE_TOKEN_SECRET; unset is the fallback; under 16 bytes is refused without printing it")
  func secretFromTheEnvironment() throws {
    var unset = EnvironmentReader(environment: [:])
    #expect(PageTokenSealer.secret(prefix: "MAAS_X", fallback: "fallback", from: &unset) == "fallback")
    try unset.finish()

    var given = EnvironmentReader(environment: ["MAAS_X_PAGE_TOKEN_SECRET": "sixteen-bytes-ok"])
    #expect(PageTokenSealer.secret(prefix: "MAAS_X", fallback: "fallback", from: &given) == "sixteen-bytes-ok")
    try given.finish()

    var short = EnvironmentReader(environment: ["MAAS_X_PAGE_TOKEN_SECRET": "hunter2"])
    _ = PageTokenSealer.secret(prefix: "MAAS_X", fallback: "fallback", from: &short)
    let error = #expect(throws: ConfigurationError.self) { try short.finish() }
    let message = error.map { "\($0)" } ?? ""
    #expect(message.contains("MAAS_X_PAGE_TOKEN_SECRET") && message.contains("16 bytes"))
    #expect(!message.contains("hunter2"))
  }
}
