import Foundation
import GRPCCore
import GRPCShimTransport
import Testing
@testable import Gateway
import MaaSRuntime

@Suite("API keys: format, generation, digests")
struct ApiKeyTokenTests {
  @Test("a generated key reads maas_<8-symbol prefix>_<43-symbol secret> and parses back to itself")
  func generatedKeyFormat() throws {
    let token = ApiKeyToken.generate()
    let text = token.text
    #expect(text.hasPrefix("maas_"))
    #expect(text.utf8.count == 5 + 8 + 1 + 43)
    #expect(token.displayPrefix == "maas_" + token.prefix)
    #expect(token.prefix.utf8.allSatisfy { ApiKeyToken.prefixAlphabet.contains($0) })
    #expect(Base64URL.decode(token.secret)?.count == 32)
    #expect(ApiKeyToken(parsing: text) == token)
  }

  @Test("generated keys differ in prefix and secret")
  func keysAreRandom() {
    let tokens = (0..<200).map { _ in ApiKeyToken.generate() }
    #expect(Set(tokens.map(\.prefix)).count == 200)
    #expect(Set(tokens.map(\.secret)).count == 200)
  }

  @Test("a key's description never shows its secret")
  func descriptionRedactsSecret() {
    let token = ApiKeyToken.generate()
    #expect(!"\(token)".contains(token.secret))
    #expect("\(token)".hasPrefix(token.displayPrefix))
  }

  @Test(
    "malformed keys do not parse",
    arguments: [
      "", "maas_", "maas_abcdefgh", "maas_abcdefgh_", "maas_abcdefg_" + String(repeating: "A", count: 43),
      "maas_abcdefgh_" + String(repeating: "A", count: 42), "maas_abcdefgh_" + String(repeating: "A", count: 44),
      "maas_ABCDEFGH_" + String(repeating: "A", count: 43), "maas_abcdefgh-" + String(repeating: "A", count: 43),
      "maas_abcdefgh_" + String(repeating: "A", count: 42) + "=", "maas_abcdefgh_" + String(repeating: "A", count: 42) + "+",
      "mass_abcdefgh_" + String(repeating: "A", count: 43), " maas_abcdefgh_" + String(repeating: "A", count: 43),
      "maas_abcdefgl_" + String(repeating: "A", count: 43),
    ])
  func malformedKeys(text: String) {
    #expect(ApiKeyToken(parsing: text) == nil)
  }

  @Test("the digest is SHA-256 of the whole key; equal digests match, others do not")
  func digests() throws {
    let token = ApiKeyToken.generate()
    let other = ApiKeyToken.generate()
    #expect(token.digest.bytes.count == 32)
    #expect(token.digest == ApiKeyDigest(of: token.text))
    #expect(token.digest.matches(ApiKeyDigest(of: token.text)))
    #expect(!token.digest.matches(other.digest))
    // Same prefix, other secret: the digest covers the secret.
    let forged = try #require(ApiKeyToken(parsing: token.displayPrefix + "_" + other.secret))
    #expect(!token.digest.matches(forged.digest))
    #expect(ApiKeyDigest(bytes: Array(repeating: 0, count: 31)) == nil)
  }

  @Test("constant-time comparison agrees with equality")
  func constantTimeComparison() {
    #expect(ConstantTime.equal([1, 2, 3], [1, 2, 3]))
    #expect(!ConstantTime.equal([1, 2, 3], [1, 2, 4]))
    #expect(!ConstantTime.equal([1, 2, 3], [1, 2]))
    #expect(ConstantTime.equalSecrets("admin-token-123456", "admin-token-123456"))
    #expect(!ConstantTime.equalSecrets("admin-token-123456", "admin-token-12345"))
    #expect(!ConstantTime.equalSecrets("", "x"))
  }
}

@Suite("Bearer credentials: told apart by their shape")
struct BearerCredentialTests {
  @Test("an API key and a JWT are recognised after Bearer, whatever the scheme's case")
  func recognisesBoth() throws {
    let token = ApiKeyToken.generate()
    #expect(BearerCredential.parse(authorization: ["Bearer \(token.text)"]) == .success(.apiKey(token)))
    #expect(BearerCredential.parse(authorization: ["bearer \(token.text)"]) == .success(.apiKey(token)))
    #expect(BearerCredential.parse(authorization: ["  BEARER   \(token.text)  "]) == .success(.apiKey(token)))
    #expect(BearerCredential.parse(authorization: ["Bearer aGVhZA.cGF5bG9hZA.c2ln"]) == .success(.jwt("aGVhZA.cGF5bG9hZA.c2ln")))
    // An unsigned JWT is still a JWT here: the verifier refuses it with its own reason.
    #expect(BearerCredential.parse(authorization: ["Bearer aGVhZA.cGF5bG9hZA."]) == .success(.jwt("aGVhZA.cGF5bG9hZA.")))
  }

  @Test("no value is a missing credential; anything else unusable is malformed")
  func refusals() {
    #expect(BearerCredential.parse(authorization: []) == .failure(.missingCredential))
    let malformed: [[String]] = [
      ["Basic dXNlcjpwYXNz"], ["Bearer"], ["Bearer "], ["Bear \(ApiKeyToken.generate().text)"],
      ["Bearers \(ApiKeyToken.generate().text)"], ["Bearer\(ApiKeyToken.generate().text)"], ["Bearer  \t "], ["maas_abcdefgh_x"], ["Bearer maas_abcdefgh_short"],
      ["Bearer not-a-token"], ["Bearer a.b"], ["Bearer a.b.c.d"], ["Bearer a!.b.c"], ["Bearer .b.c"],
      ["Bearer \(ApiKeyToken.generate().text)", "Bearer \(ApiKeyToken.generate().text)"],
    ]
    for values in malformed {
      guard case .failure(.malformedCredential) = BearerCredential.parse(authorization: values) else {
        Issue.record("\(values) was not refused as malformed")
        continue
      }
    }
  }
}

@Suite("Forwarding: deadlines and idempotency keys")
struct ForwardedKeyAndDeadlineTests {
  @Test("grpc-timeout values parse in every unit; malformed ones are ignored")
  func timeouts() {
    #expect(CallTimeout.duration(parsing: "5S") == .seconds(5))
    #expect(CallTimeout.duration(parsing: "250m") == .milliseconds(250))
    #expect(CallTimeout.duration(parsing: "2M") == .seconds(120))
    #expect(CallTimeout.duration(parsing: "1H") == .seconds(3600))
    #expect(CallTimeout.duration(parsing: "7u") == .microseconds(7))
    #expect(CallTimeout.duration(parsing: "9n") == .nanoseconds(9))
    for bad in ["", "S", "5", "5s", "-1S", "123456789S", "5 S"] {
      #expect(CallTimeout.duration(parsing: bad) == nil, "\(bad)")
    }
    let now = ContinuousClock.now
    #expect(GatewayCall.deadline(from: ["grpc-timeout": "3S"], now: now) == now.advanced(by: .seconds(3)))
    #expect(GatewayCall.deadline(from: [:], now: now) == nil)
  }

  @Test("a caller's idempotency key is forwarded as is; without one each call gets a fresh key")
  func mutationKeys() {
    #expect(ForwardedKey.forMutation("retry-1") == "retry-1")
    let fresh = ForwardedKey.forMutation("")
    #expect(!fresh.isEmpty && fresh != ForwardedKey.forMutation(""))
  }

  @Test("the API-call charge of a keyed request is one per method and key, and fits quota's 128 bytes")
  func consumeKeys() {
    let method = "maas.gateway.v1.Gateway/CreateModel"
    let long = String(repeating: "k", count: 128)
    let key = ForwardedKey.forConsume(method: method, requestKey: long)
    #expect(key == ForwardedKey.forConsume(method: method, requestKey: long))
    #expect(key.utf8.count <= 128)
    #expect(key != ForwardedKey.forConsume(method: "maas.gateway.v1.Gateway/DeleteModel", requestKey: long))
    #expect(ForwardedKey.forConsume(method: method, requestKey: nil) != ForwardedKey.forConsume(method: method, requestKey: nil))
    #expect(ForwardedKey.forConsume(method: method, requestKey: "") != ForwardedKey.forConsume(method: method, requestKey: ""))
  }
}
