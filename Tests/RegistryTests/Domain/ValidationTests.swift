import Foundation
import Registry
import Testing

@Suite("Request validation")
struct ValidationTests {
  /// One bad CreateModelVersion field and the violation it must produce.
  struct Case: Sendable, CustomTestStringConvertible {
    var name: String
    var tenantID = "acme"
    var model: ModelRef? = .name("llama")
    var version = "1.0.0"
    var artifact: Artifact? = Artifact(uri: "s3://bucket/key", format: "safetensors", sizeBytes: 10, sha256: sha)
    var labels: [String: String] = [:]
    var key = "k"
    var expected: [FieldViolation]
    var testDescription: String { name }
  }

  static let tenKB = String(repeating: "a", count: 10_240)

  static func artifact(uri: String = "s3://bucket/key", format: String = "gguf", size: Int64 = 1, sha256: String = sha) -> Artifact {
    Artifact(uri: uri, format: format, sizeBytes: size, sha256: sha256)
  }

  static let versionCases: [Case] = [
    Case(name: "a valid request has no violations", expected: []),
    Case(name: "an empty tenant id is missing", tenantID: "", expected: [FieldViolation("tenant_id", .missing)]),
    Case(name: "a tenant id with a newline is refused", tenantID: "ac\nme", expected: [FieldViolation("tenant_id", .controlCharacters)]),
    Case(name: "a 10 KB tenant id is too long", tenantID: tenKB, expected: [FieldViolation("tenant_id", .tooLong(maxBytes: 128))]),
    Case(name: "no model reference is missing", model: nil, expected: [FieldViolation("model", .missing)]),
    Case(name: "an empty model id is missing", model: .id(""), expected: [FieldViolation("model.id", .missing)]),
    Case(name: "a 10 KB model id is too long", model: .id(tenKB), expected: [FieldViolation("model.id", .tooLong(maxBytes: 128))]),
    Case(name: "an empty model name is missing", model: .name(""), expected: [FieldViolation("model.name", .missing)]),
    Case(name: "a 10 KB model name is out of bounds", model: .name(tenKB),
      expected: [FieldViolation("model.name", .characterCount(min: 1, max: 128))]),
    Case(name: "an empty version is missing", version: "", expected: [FieldViolation("version", .missing)]),
    Case(name: "a 65-character version is out of bounds", version: String(repeating: "1", count: 65),
      expected: [FieldViolation("version", .characterCount(min: 1, max: 64))]),
    Case(name: "a version starting with a dot is refused", version: ".1",
      expected: [FieldViolation("version", .alphabet("use only [A-Za-z0-9._+-] and start with a letter or digit"))]),
    Case(name: "a version with a slash is refused", version: "1/2",
      expected: [FieldViolation("version", .alphabet("use only [A-Za-z0-9._+-] and start with a letter or digit"))]),
    Case(name: "a version with + is accepted", version: "1.0+build.5", expected: []),
    Case(name: "no artifact is missing", artifact: nil, expected: [FieldViolation("artifact", .missing)]),
    Case(name: "an empty uri is missing", artifact: artifact(uri: ""), expected: [FieldViolation("artifact.uri", .missing)]),
    Case(name: "a relative uri is refused", artifact: artifact(uri: "bucket/key"), expected: [FieldViolation("artifact.uri", .notAbsoluteURI)]),
    Case(name: "a uri with a space is refused", artifact: artifact(uri: "s3://bucket/a key"),
      expected: [FieldViolation("artifact.uri", .notAbsoluteURI)]),
    Case(name: "a uri of 2049 bytes is too long", artifact: artifact(uri: "s3://" + String(repeating: "k", count: 2044)),
      expected: [FieldViolation("artifact.uri", .tooLong(maxBytes: 2048))]),
    Case(name: "a file uri is accepted", artifact: artifact(uri: "file:///models/llama.gguf"), expected: []),
    Case(name: "a 65-character format is refused", artifact: artifact(format: String(repeating: "f", count: 65)),
      expected: [FieldViolation("artifact.format", .tooManyCharacters(max: 64))]),
    Case(name: "a negative size is refused", artifact: artifact(size: -1), expected: [FieldViolation("artifact.size_bytes", .negative)]),
    Case(name: "a size of zero is accepted", artifact: artifact(size: 0), expected: []),
    Case(name: "a size beyond what quota can count is refused", artifact: artifact(size: .max),
      expected: [FieldViolation("artifact.size_bytes", .tooLarge(max: .max / 4))]),
    Case(name: "an empty sha256 is missing", artifact: artifact(sha256: ""), expected: [FieldViolation("artifact.sha256", .missing)]),
    Case(name: "an upper-case sha256 is malformed", artifact: artifact(sha256: sha.uppercased()),
      expected: [FieldViolation("artifact.sha256", .notSHA256)]),
    Case(name: "a 63-digit sha256 is malformed", artifact: artifact(sha256: String(sha.dropLast())),
      expected: [FieldViolation("artifact.sha256", .notSHA256)]),
    Case(name: "a sha256 with a non-hex letter is malformed", artifact: artifact(sha256: "g" + sha.dropFirst()),
      expected: [FieldViolation("artifact.sha256", .notSHA256)]),
    Case(name: "65 labels are too many", labels: Dictionary(uniqueKeysWithValues: (0..<65).map { ("k\($0)", "v") }),
      expected: [FieldViolation("labels", .tooMany(max: 64))]),
    Case(name: "an upper-case label key is refused", labels: ["Team": "x"],
      expected: [FieldViolation("labels", .alphabet("have keys of 1 to 63 characters from [a-z0-9._/-], starting with a letter or digit"))]),
    Case(name: "an empty label key is refused", labels: ["": "x"],
      expected: [FieldViolation("labels", .alphabet("have keys of 1 to 63 characters from [a-z0-9._/-], starting with a letter or digit"))]),
    Case(name: "a label value of 256 bytes is too long", labels: ["team": String(repeating: "v", count: 256)],
      expected: [FieldViolation("labels[team]", .tooLong(maxBytes: 255))]),
    Case(name: "a label value with NUL is refused", labels: ["team": "a\u{0}b"],
      expected: [FieldViolation("labels[team]", .controlCharacters)]),
    Case(name: "a label key with a slash and dots is accepted", labels: ["maas.dev/team": "ml platform"], expected: []),
    Case(name: "an empty idempotency key is missing", key: "", expected: [FieldViolation("idempotency_key", .missing)]),
    Case(name: "a 129-byte idempotency key is too long", key: String(repeating: "k", count: 129),
      expected: [FieldViolation("idempotency_key", .tooLong(maxBytes: 128))]),
  ]

  @Test("CreateModelVersion names each bad field", arguments: versionCases)
  func createVersion(_ item: Case) {
    let result = CreateVersionCommand.validate(
      tenantID: item.tenantID, model: item.model, version: item.version, artifact: item.artifact, labels: item.labels,
      idempotencyKey: item.key)
    if item.expected.isEmpty {
      #expect(result.success != nil, "\(String(describing: result.failure))")
    } else {
      #expect(result.failure == .invalidRequest(item.expected))
      #expect(result.failure?.description.hasPrefix(item.expected[0].field + ":") == true)
    }
  }

  @Test("a request with every field wrong reports every problem at once")
  func everyProblem() {
    let result = CreateModelCommand.validate(
      tenantID: "", name: "", description: String(repeating: "d", count: 4097), labels: ["BAD": "x"], idempotencyKey: "")
    let alphabet = "have keys of 1 to 63 characters from [a-z0-9._/-], starting with a letter or digit"
    #expect(result.failure == .invalidRequest([
      FieldViolation("tenant_id", .missing),
      FieldViolation("name", .missing),
      FieldViolation("description", .tooLong(maxBytes: 4096)),
      FieldViolation("labels", .alphabet(alphabet)),
      FieldViolation("idempotency_key", .missing),
    ]))
    #expect(result.failure?.category == .invalidArgument(field: "tenant_id"))
  }

  @Test("model names follow resources.proto: 1 to 128 of [A-Za-z0-9._-], starting with a letter or digit",
    arguments: [
      ("llama-3.1_8B", true), ("7b", true), (String(repeating: "m", count: 128), true),
      (String(repeating: "m", count: 129), false), ("-llama", false), ("_x", false), ("llama 3", false),
      ("llama+3", false), ("лама", false), ("llama\u{0}", false),
    ])
  func modelNames(_ name: String, _ valid: Bool) {
    let result = CreateModelCommand.validate(tenantID: "acme", name: name, description: "", labels: [:], idempotencyKey: "k")
    #expect((result.success != nil) == valid)
    if !valid { #expect(result.failure?.category == .invalidArgument(field: "name")) }
  }

  @Test("a description may hold newlines and tabs but no other control characters")
  func descriptions() {
    let ok = CreateModelCommand.validate(tenantID: "a", name: "m", description: "line 1\n\tline 2", labels: [:], idempotencyKey: "k")
    #expect(ok.success != nil)
    let bad = CreateModelCommand.validate(tenantID: "a", name: "m", description: "bell\u{7}", labels: [:], idempotencyKey: "k")
    #expect(bad.failure == .invalidRequest([FieldViolation("description", .controlCharacters)]))
  }

  @Test("page sizes of 0, -1, 1001 and 10^9 are refused; 1 and 1000 are accepted",
    arguments: [(Int32(0), false), (-1, false), (1001, false), (1_000_000_000, false), (1, true), (1000, true)])
  func pageSizes(_ size: Int32, _ valid: Bool) {
    let result = ListModelsQuery.validate(
      tenantID: "acme", pageSize: size, pageToken: "", namePrefix: "", labelSelector: [:], state: .some(nil), tokens: testTokens)
    #expect((result.success != nil) == valid)
    if !valid {
      #expect(result.failure == .invalidRequest([FieldViolation("page_size", .outOfRange(min: 1, max: 1000))]))
      #expect(result.failure?.description == "page_size: must be 1 to 1000")
    }
  }

  @Test("a name prefix may be empty or start with any name character, but not use others")
  func namePrefixes() {
    func validate(_ prefix: String) -> Result<ListModelsQuery, RegistryError> {
      ListModelsQuery.validate(
        tenantID: "acme", pageSize: 10, pageToken: "", namePrefix: prefix, labelSelector: [:], state: .some(nil),
        tokens: testTokens)
    }
    #expect(validate("").success != nil)
    #expect(validate("-x").success != nil)
    #expect(validate("a b").failure?.category == .invalidArgument(field: "name_prefix"))
    #expect(validate(ValidationTests.tenKB).failure?.category == .invalidArgument(field: "name_prefix"))
  }

  @Test("an unknown state filter is refused; UNSPECIFIED matches every state")
  func stateFilter() {
    let unknown = ListModelsQuery.validate(
      tenantID: "acme", pageSize: 10, pageToken: "", namePrefix: "", labelSelector: [:], state: nil, tokens: testTokens)
    #expect(unknown.failure == .invalidRequest([FieldViolation("state", .unknownState)]))
    let any = ListModelsQuery.validate(
      tenantID: "acme", pageSize: 10, pageToken: "", namePrefix: "", labelSelector: [:], state: .some(nil), tokens: testTokens)
    #expect(any.success?.state == nil)
  }

  @Test("UpdateModel reads only the masked fields and refuses unknown or empty masks")
  func updateMasks() {
    let update = UpdateModelCommand.Update(name: "", description: "", labels: ["BAD": ""], state: .some(nil))
    // Nothing outside the mask is read, not even invalid values.
    let describeOnly = UpdateModelCommand.validate(
      tenantID: "acme", model: .name("m"), update: update, updateMask: ["description"], idempotencyKey: "k")
    #expect(describeOnly.success?.changes == ModelChanges(description: ""))
    let empty = UpdateModelCommand.validate(tenantID: "acme", model: .name("m"), update: update, updateMask: [], idempotencyKey: "k")
    #expect(empty.failure == .invalidRequest([FieldViolation("update_mask", .missing)]))
    let unknown = UpdateModelCommand.validate(
      tenantID: "acme", model: .name("m"), update: update, updateMask: ["name", "id"], idempotencyKey: "k")
    #expect(unknown.failure == .invalidRequest([FieldViolation("update_mask", .unknownMaskPath("id"))]))
    let masked = UpdateModelCommand.validate(
      tenantID: "acme", model: .name("m"), update: update, updateMask: ["name", "labels", "state"], idempotencyKey: "k")
    #expect(masked.failure == .invalidRequest([
      FieldViolation("update.name", .missing),
      FieldViolation("update.labels", .alphabet("have keys of 1 to 63 characters from [a-z0-9._/-], starting with a letter or digit")),
      FieldViolation("update.state", .unknownState),
    ]))
  }

  @Test("a version may be named without its model only by id; deleting through an alias is refused")
  func versionReferences() {
    #expect(VersionQuery.validate(tenantID: "a", model: nil, version: .id("x")).success != nil)
    #expect(VersionQuery.validate(tenantID: "a", model: nil, version: .version("1")).failure
      == .invalidRequest([FieldViolation("model", .missing)]))
    #expect(VersionQuery.validate(tenantID: "a", model: .name("m"), version: nil).failure
      == .invalidRequest([FieldViolation("version", .missing)]))
    #expect(VersionQuery.validate(tenantID: "a", model: .name("m"), version: .alias("")).failure
      == .invalidRequest([FieldViolation("version.alias", .missing)]))
    #expect(DeleteVersionCommand.validate(tenantID: "a", model: .name("m"), version: .alias("prod"), idempotencyKey: "k").failure
      == .invalidRequest([FieldViolation("version", .aliasNotAllowed)]))
  }

  @Test("an alias must be a well-formed version string other than the version it names")
  func aliases() {
    #expect(SetAliasCommand.validate(tenantID: "a", model: .name("m"), alias: "production", version: "1.0", idempotencyKey: "k")
      .success != nil)
    #expect(SetAliasCommand.validate(tenantID: "a", model: .name("m"), alias: "1.0", version: "1.0", idempotencyKey: "k").failure
      == .invalidRequest([FieldViolation("alias", .namesAVersion)]))
    #expect(SetAliasCommand.validate(tenantID: "a", model: .name("m"), alias: "prod/x", version: "1.0", idempotencyKey: "k")
      .failure?.category == .invalidArgument(field: "alias"))
  }

  @Test("fingerprints differ when any field differs and ignore the key and label order")
  func fingerprints() throws {
    let base = try createModel("acme", "m", labels: ["a": "1", "b": "2"], key: "one")
    let sameOtherKey = try createModel("acme", "m", labels: ["b": "2", "a": "1"], key: "two")
    #expect(base.fingerprint == sameOtherKey.fingerprint)
    #expect(base.fingerprint != (try createModel("acme", "m2", labels: ["a": "1", "b": "2"])).fingerprint)
    #expect(base.fingerprint != (try createModel("acme", "m", labels: ["a": "1"])).fingerprint)
  }
}
