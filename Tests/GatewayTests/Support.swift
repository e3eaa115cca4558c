import Foundation
import GRPCCore
import JWTKit
import Logging
import Synchronization
@testable import Gateway
import MaaSRuntime

let quietLogger = Logger(label: "maas.gateway.test") { _ in SwiftLogNoOpLogHandler() }

/// A clock tests move by hand.
final class ManualClock: GatewayClock {
  private let instant: Mutex<Date>

  init(_ start: Date = Date()) { self.instant = Mutex(start) }

  func now() -> Date { instant.withLock { $0 } }

  func advance(by interval: TimeInterval) { instant.withLock { $0 += interval } }
}

/// RSA key pairs made for these tests only (2048 bits, `openssl genrsa`): the gateway trusts
/// `trustedPublicKey`; tokens signed with `untrustedPrivateKey` are forgeries.
enum TestKeys {
  static let trustedPrivateKey = """
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC6c9rRbbf4BxWd
a7LG0B2a1f/MYFP4tERQj8gbAAodX1ywvd9zSGM1W6HZYMZJ+3tFEZazmmO6pwp9
vWwJBGuGshJDlNGeeefJYAIVhFv2nQ8BkBYuyKfQP2MeHfAAk8gfl+Rp6CdeNaVa
/HhU4Ylt61FlnKPIGouCTdcn8G+TI9NuuVZf64yHDIvqDNyLctEvjX7ooAFF/P/6
UDRzUm7w43Kr7TxnW/RwK/Pc8B26BtzBSg47jSNZeQRAVgcdmYjZuJpmVmv8Sy3H
0PAJDxRXPxn7CaZR2mfzLeL49eidFOkMSd71Gwsa+eQxn9h/M5zxidzpl/A5wSrM
GFnhhLfNAgMBAAECggEAHMRmRPzALyjsqVKmDS2r+6k7480S96LcjW95qMzLQrfl
ZbGN6cwH3oIqSQ842M5PuRrbHQ/bhj9ii37vzb5cVrZfwgSSiPh3DiddevNmevjF
iXCxM3urBKLbCJkG4Bfs/w7g44Q5mrv9LLoaWMJJgWeWse5GiMersamP4i4jENjo
oKGCqNpM38gZs8+AECz7QPiBN2cofgE70V1gqyat7XSTmHbrKQSzoXMVpnZZmEuM
MTOOWQCHK8HU4tSpvN65jM057mqbS2l3bhkYKfiKE1N0S33EYJz3c6EC+ULW5vMr
GH5gc0u+kc/CjTkLGR6sQIu+DCunx68ALyWG5s7gAwKBgQD7TXEQE2yz+WR8s9yH
EIeT0r1Vpv68FPZnvILUmRDSw+ZIjmWd4mg8740zaPObiHvEUDpp7D12BqLZZxJN
qDZQg9GSELBN7CYkmZtUrJT4Hr9+PzjTiE9gPqUU2mHFhzp4Vsat9O7ohBlhJs4L
V4/bOJP4ZZg6dV8FSY3ZVLmzOwKBgQC98BYmnf6EciMD6NnJ3HeG4uobaPBaUKRQ
2wuq9PHrq4BcDbF0HSCqJLyZTE0Edk149YebyfdNG+wjt7ejzGSQXVODVkfnp6Ok
HE8lVBQ7CSdSiqJumHF+3E83qX0usuju+hyKzFeVbddgKuUI40mkP0VmiXMfPqkq
gaZJgDQAlwKBgEn0zXxUqx4AHDGS4SiilbPMRkopvjft12JKGRql/Ux5uJDLz136
noCoYx6pGWBBd2Mb1UUM8D2G0HA4pCtUgL+LO6bH4IreH4+P4SW3MJQgwGxQANJI
AEwrw3tylWmDVZLKvue8+H5XOfzcZbDy0PRMH0fv5i/2EMPGlMdL5ua3AoGBAKVX
TFENlDQDj4ultYDNlJctDRITRbe5H3DrXbrSQ44d2z1HBkTH3ll+ZVclXp4VxdcY
FZZ+N/M97VAia5ABK0GonDxmbW2xNvhzVEpwaLQDgeGOoVuZBKOkcKlJt5lhUPhH
bXU98Lg5yBUFAh+8i6yZD3b1C+wVBfnkpraxDZO9AoGBAJU+uOVD3VCK4XF15BU0
OUxzoNnkIFrY9TIOizLH4CBeGuVAiSaEZWmP06IzWgp1H28SAfvDfpJMa0sp2slI
pyY4bIMvASD2zkoFMF9ZNMXW7U3hDJabCa/wjQAjBZOotScJl857QuPnQzPIs3H0
ZmwR9UPRRAOvPkWGUxDpsArc
-----END PRIVATE KEY-----
"""

  static let trustedPublicKey = """
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAunPa0W23+AcVnWuyxtAd
mtX/zGBT+LREUI/IGwAKHV9csL3fc0hjNVuh2WDGSft7RRGWs5pjuqcKfb1sCQRr
hrISQ5TRnnnnyWACFYRb9p0PAZAWLsin0D9jHh3wAJPIH5fkaegnXjWlWvx4VOGJ
betRZZyjyBqLgk3XJ/BvkyPTbrlWX+uMhwyL6gzci3LRL41+6KABRfz/+lA0c1Ju
8ONyq+08Z1v0cCvz3PAdugbcwUoOO40jWXkEQFYHHZmI2biaZlZr/Estx9DwCQ8U
Vz8Z+wmmUdpn8y3i+PXonRTpDEne9RsLGvnkMZ/YfzOc8Ync6ZfwOcEqzBhZ4YS3
zQIDAQAB
-----END PUBLIC KEY-----
"""

  static let untrustedPrivateKey = """
-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDoIFR4Mw1hXcki
XS+FMbUyuL3Jy6uMrbRAlaFp5oT8Lf92BB3wD7WoqBnQOqdPeOtPSX3yux3cKRnZ
pODHzYvcaoie0u1USxuqb2gQlwJcj0z2ETwg2d1OHHof+nvut5NJkm/zwLlqKBLy
Liw2Cd/7I5C27Y1qIEaYN1qJA1ce0XaFgrgrQJn2H7XlpsFOVGxNucnpfBIOH/mY
yTNPi7y04BgRQmLY3c0OADp+v0GtTJT6QaECAkukgQqsgHpvHP+ZO9+i2SDEroMk
MPBYvHQ4kecG3X26JnozPLvg2M4wRqwkWbj9zYxjbdL+2WY2v4NsiV6h26Y1QHH8
o2ob8QA5AgMBAAECggEADWErrT/4Efgna0Emx40dbh6C5fpE2Zd7j8twIdwFJ0n5
cxJ6rUcih+Wkk0GGOkj0ez33sgGCD5oY4Nglkq6w1JQZatoqjtTDc/f27hneK3qh
C3/j0Nrt7B4tFeHIufI/3ZpAtLKTnWBQ8z+hEb5Q+DdNFJYttAPHPefW4pXcNCzv
h0L7Wjyz8+3zWxT2Qr6jp4aLULD/OqDNQOkD7D3dNpTxN2n2VVfVIB5nBYx/JXVq
pSZryTGFzNz8nYOLMch3K00Dm2KL3SdZsvNsUoZDk5d4Q/dHENNvFTm7G1O0FQ5M
tjBB5bkFIwcl0dCWwRAxr6A2behS5C7EVTSCWtlh2QKBgQD0+H8OMrssQ8Ouvk6q
0tDemSOuZzPkkKwTrDt2/EYoieJ0dq23SlI2f2KYLsOpxDttta36WtGxXO6zjBZX
9CNvmBw96fkfDXwbGy8rwkR/gCDHUETA/bSTY8loPmaG6URD0cM7BPJgrorwD2OL
IsGEHBdPCMdFietayMt9y7hj5QKBgQDyk8pkDS/sliPT2Y6NKsXoKrIKE33BSYn/
w4jmw/y6u4hx8DrBw7u069TBUgO/FZZhrksBl52k/rMkb1JVWm8/cSsXTzYxYMap
nabEwsAOWOIsY/uCaczAx9928ErxvAWTFgmpLTa8slNcUD3fkxBYlEGIume2zdmu
VLBGFXuNxQKBgGJIyQEzTXFnBr23UOyshGyq2GwCsAlGGiQSeBE3Chb9q0O60du2
D+IZnb8dFBeqyYUs3U6S3YrhlEupKtXC9+ywBLS6iN7ylBZ0A6r02HKnP394Lv2X
TLnN0WLnlk8Oi/sBz+iABZbQsKG8Kt4J5cZRVvC4vuqheTIFWc9wytwZAoGBAIZI
R9aA8lGef3DL0zzUO8AcungXeBrikbDy1jsgrSvVml+wY2ZV6vfpQNpPg2FpGtkx
+bWE77ChihuWQFadfE37YKZDpDVLZE4KxoHPaS/IBlQaeOUlmkHxowOdW29b7R4S
KgDr1Yw5jyngBZBZQcg3Mdv1jGpGo8T8fqQdSksdAoGBAOJcNexcc3z0S/WxIf99
SDZ47ogV3ACZyCp2rYBoY0yquF4vwTGEVY41FSS9NUdjzZOl3a8ptg210Ms0Jb0T
w2TecZ6ceMwTx11fVEcmedypalAFlnYXXnnaTHl1ChNQg9WxzSEl5fjte+iDZ/LS
rCbfQR+cl/96U9tqjoIBlTn6
-----END PRIVATE KEY-----
"""

  static let hs256Secret = "test-hs256-secret-of-at-least-32-bytes!!"
}

/// The claims a token in the tests carries; nil leaves a claim out.
struct TestClaims: JWTPayload {
  var exp: ExpirationClaim?
  var nbf: NotBeforeClaim?
  var aud: AudienceClaim?
  var sub: SubjectClaim?
  var tenant_id: String?

  func verify(using algorithm: some JWTAlgorithm) async throws {}

  /// Valid for an hour from `now`, for audience "maas".
  static func valid(tenant: String, now: Date = Date()) -> TestClaims {
    TestClaims(
      exp: ExpirationClaim(value: now.addingTimeInterval(3600)), aud: AudienceClaim(value: ["maas"]),
      sub: SubjectClaim(value: "ci"), tenant_id: tenant)
  }
}

/// Signs tokens the way an identity provider would, with jwt-kit.
enum TokenIssuer {
  static func hs256(_ claims: TestClaims, secret: String = TestKeys.hs256Secret) async throws -> String {
    let keys = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
    return try await keys.sign(claims)
  }

  static func rs256(_ claims: TestClaims, privateKey: String = TestKeys.trustedPrivateKey) async throws -> String {
    let keys = await JWTKeyCollection().add(rsa: try Insecure.RSA.PrivateKey(pem: privateKey), digestAlgorithm: .sha256)
    return try await keys.sign(claims)
  }

  /// An unsigned token (`alg: none`, empty signature), built by hand: no library should make one.
  static func unsigned(_ claims: TestClaims, alg: String = "none") throws -> String {
    let header = Base64URL.encode(Array(#"{"alg":"\#(alg)","typ":"JWT"}"#.utf8))
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .secondsSince1970
    let payload = Base64URL.encode(Array(try encoder.encode(claims)))
    return "\(header).\(payload)."
  }
}

/// The error `body` throws, if any.
func thrownError(_ body: () async throws -> some Any) async -> (any Error)? {
  do {
    _ = try await body()
    return nil
  } catch {
    return error
  }
}
