import Foundation
import MaaSRuntime
import Testing

@Suite("Base64URL")
struct Base64URLTests {
  @Test("it spells bytes as Foundation's base64 with its three characters replaced, and reads them back")
  func spelling() {
    for length in 0..<70 {
      let bytes = (0..<length).map { _ in UInt8.random(in: 0...255) }
      let expected = Data(bytes).base64EncodedString()
        .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
      #expect(Base64URL.encode(bytes) == expected, "\(bytes.count) bytes")
      #expect(Base64URL.decode(expected) == bytes, "\(bytes.count) bytes")
      #expect(Base64URL.decodeCanonical(expected) == bytes, "\(bytes.count) bytes")
    }
    #expect(Base64URL.encode([0xfb, 0xff, 0xbf]) == "-_-_")
  }

  @Test("text outside the alphabet, or with padding, does not decode")
  func refusesOtherText() {
    for text in ["ab+c", "ab/c", "abc=", "ab c", "é"] {
      #expect(Base64URL.decode(text) == nil, "\(text)")
    }
  }

  @Test("only the canonical spelling decodes canonically: unused bits set are refused")
  func canonicalOnly() {
    // "AA" is one zero byte; "AB" spells the same byte with an unused bit set.
    #expect(Base64URL.decode("AB") == [0])
    #expect(Base64URL.decodeCanonical("AA") == [0])
    #expect(Base64URL.decodeCanonical("AB") == nil)
  }
}
