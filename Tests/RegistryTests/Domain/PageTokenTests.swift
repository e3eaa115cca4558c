import Foundation
@testable import Registry
import Testing

@Suite("Page tokens")
struct PageTokenTests {
  static let listing = PageTokens.Listing.models(tenant: "acme", namePrefix: "ll", labels: ["team": "a"], state: nil)
  static let cursor = ModelCursor(name: "llama-7b", id: UUID())

  @Test("a token opens to the cursor it was made from, for the same listing")
  func roundTrip() {
    let token = testTokens.token(after: Self.cursor, in: Self.listing)
    #expect(testTokens.modelCursor(token, in: Self.listing) == Self.cursor)
    #expect(!token.contains("llama"), "opaque: the cursor is not readable as text")
    let versions = PageTokens.Listing.versions(tenant: "acme", model: .name("m"), labels: [:])
    let versionCursor = VersionCursor(createMicros: 1_795_000_000_123_456, id: UUID())
    #expect(testTokens.versionCursor(testTokens.token(after: versionCursor, in: versions), in: versions) == versionCursor)
  }

  @Test("a token of another tenant, other filters or another kind of listing is refused")
  func boundToItsListing() {
    let token = testTokens.token(after: Self.cursor, in: Self.listing)
    let others: [PageTokens.Listing] = [
      .models(tenant: "globex", namePrefix: "ll", labels: ["team": "a"], state: nil),
      .models(tenant: "acme", namePrefix: "l", labels: ["team": "a"], state: nil),
      .models(tenant: "acme", namePrefix: "ll", labels: ["team": "b"], state: nil),
      .models(tenant: "acme", namePrefix: "ll", labels: ["team": "a"], state: .active),
    ]
    for other in others { #expect(testTokens.modelCursor(token, in: other) == nil) }
    let versions = PageTokens.Listing.versions(tenant: "acme", model: .name("m"), labels: [:])
    #expect(testTokens.versionCursor(token, in: versions) == nil)
  }

  @Test("every single-character change, truncation, garbage, or another secret's token is refused")
  func tamperEvident() {
    let token = testTokens.token(after: Self.cursor, in: Self.listing)
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    var characters = Array(token)
    for index in characters.indices {
      let original = characters[index]
      characters[index] = alphabet.first { $0 != original }!
      #expect(testTokens.modelCursor(String(characters), in: Self.listing) == nil, "changed at \(index)")
      characters[index] = original
    }
    #expect(testTokens.modelCursor(String(token.dropLast(2)), in: Self.listing) == nil)
    #expect(testTokens.modelCursor("not a token!", in: Self.listing) == nil)
    #expect(testTokens.modelCursor(String(repeating: "A", count: 5000), in: Self.listing) == nil)
    let forged = PageTokens(secret: "somebody else's secret").token(after: Self.cursor, in: Self.listing)
    #expect(testTokens.modelCursor(forged, in: Self.listing) == nil)
  }

  @Test("ListModels refuses a forged token as INVALID_ARGUMENT page_token")
  func forgedTokenIsInvalidArgument() {
    let result = ListModelsQuery.validate(
      tenantID: "acme", pageSize: 10, pageToken: "Zm9yZ2Vk", namePrefix: "", labelSelector: [:], state: .some(nil),
      tokens: testTokens)
    #expect(result.failure == .invalidRequest([FieldViolation("page_token", .foreignPageToken)]))
    #expect(result.failure?.description.hasPrefix("page_token: ") == true)
  }
}
