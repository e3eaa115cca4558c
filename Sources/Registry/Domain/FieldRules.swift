/// The field rules of registry.proto and resources.proto. Each check appends to a list instead
/// of returning early, so a caller learns every problem with a request at once.
public enum RegistryFieldRules {
  /// Longest tenant id, in UTF-8 bytes (the quota service's bound).
  public static let maxTenantIDBytes = 128
  /// registry.proto: "idempotency_key (required, 1 to 128 bytes)".
  public static let maxIdempotencyKeyBytes = 128
  /// Model.name: "1 to 128 characters".
  public static let maxModelNameCharacters = 128
  /// Model.description: "at most 4096 bytes of UTF-8".
  public static let maxDescriptionBytes = 4096
  /// Model.labels: "At most 64 labels. Keys: 1 to 63 characters ... Values: at most 255 bytes".
  public static let maxLabels = 64
  public static let maxLabelKeyCharacters = 63
  public static let maxLabelValueBytes = 255
  /// ListModelsRequest.name_prefix: a model name cut short, so at most 128 characters of the
  /// name alphabet (it may be empty, and may start with any of it). Anything else could match
  /// nothing, and is more likely a mistake than a question.
  static func namePrefix(_ value: String, into problems: inout [FieldViolation]) {
    let bytes = value.utf8
    if bytes.count > maxModelNameCharacters {
      problems.append(FieldViolation("name_prefix", .tooManyCharacters(max: maxModelNameCharacters)))
    } else if !bytes.allSatisfy({ isASCIIAlphanumeric($0) || "._-".utf8.contains($0) }) {
      problems.append(FieldViolation("name_prefix", .alphabet("use only [A-Za-z0-9._-]")))
    }
  }

  /// Aliases one model may have. Each costs a row and a line in every answer that shows the
  /// model, and no quota counts them, so they are bounded here.
  public static let maxAliasesPerModel = 100
  /// Versions one model may have. A version of size 0 costs no storage quota, and nothing else
  /// counts versions, so without this bound a tenant could write them without end.
  public static let maxVersionsPerModel = 1_000
  /// ModelVersion.version and Alias.name: "1 to 64 characters".
  public static let maxVersionCharacters = 64
  /// Artifact.uri: "at most 2048 bytes".
  public static let maxURIBytes = 2048
  /// Artifact.format: "At most 64 characters".
  public static let maxFormatCharacters = 64
  /// The largest artifact the registry records. The quota service refuses amounts above a
  /// quarter of Int64 (so counters cannot overflow); refusing here names the right field.
  public static let maxSizeBytes: Int64 = .max / 4
  /// ListModelsRequest.page_size: "Required: 1 to 1000".
  public static let pageSizes = 1...1000
  /// Ids are UUIDs (36 bytes); anything much longer is not an id but an attack on the logs.
  public static let maxIDBytes = 128

  static func tenantID(_ value: String, into problems: inout [FieldViolation]) {
    if value.isEmpty {
      problems.append(FieldViolation("tenant_id", .missing))
    } else if value.utf8.count > maxTenantIDBytes {
      problems.append(FieldViolation("tenant_id", .tooLong(maxBytes: maxTenantIDBytes)))
    } else if !isPrintableName(value) {
      problems.append(FieldViolation("tenant_id", .controlCharacters))
    }
  }

  static func idempotencyKey(_ value: String, into problems: inout [FieldViolation]) {
    if value.isEmpty {
      problems.append(FieldViolation("idempotency_key", .missing))
    } else if value.utf8.count > maxIdempotencyKeyBytes {
      problems.append(FieldViolation("idempotency_key", .tooLong(maxBytes: maxIdempotencyKeyBytes)))
    } else if value.unicodeScalars.contains(where: isControl) {
      problems.append(FieldViolation("idempotency_key", .controlCharacters))
    }
  }

  /// Model.name: 1 to 128 characters from [A-Za-z0-9._-], starting with a letter or digit.
  static func modelName(_ value: String, field: String, into problems: inout [FieldViolation]) {
    identifier(value, field: field, max: maxModelNameCharacters, extra: "._-", into: &problems)
  }

  /// ModelVersion.version and Alias.name: 1 to 64 characters from [A-Za-z0-9._+-], starting
  /// with a letter or digit.
  static func versionString(_ value: String, field: String, into problems: inout [FieldViolation]) {
    identifier(value, field: field, max: maxVersionCharacters, extra: "._+-", into: &problems)
  }

  private static func identifier(
    _ value: String, field: String, max: Int, extra: String, into problems: inout [FieldViolation]
  ) {
    // Counted in bytes first: a 10 MB name must not be walked character by character.
    let bytes = value.utf8
    guard !bytes.isEmpty, bytes.count <= max else {
      if bytes.isEmpty {
        problems.append(FieldViolation(field, .missing))
      } else {
        problems.append(FieldViolation(field, .characterCount(min: 1, max: max)))
      }
      return
    }
    let allowed = Set(extra.utf8)
    let valid =
      isASCIIAlphanumeric(bytes.first!) && bytes.allSatisfy { isASCIIAlphanumeric($0) || allowed.contains($0) }
    if !valid {
      problems.append(FieldViolation(field, .alphabet("use only [A-Za-z0-9\(extra)] and start with a letter or digit")))
    }
  }

  static func description(_ value: String, field: String, into problems: inout [FieldViolation]) {
    if value.utf8.count > maxDescriptionBytes {
      problems.append(FieldViolation(field, .tooLong(maxBytes: maxDescriptionBytes)))
    } else if value.unicodeScalars.contains(where: { isControl($0) && !["\n", "\r", "\t"].contains($0) }) {
      problems.append(FieldViolation(field, .controlCharacters))
    }
  }

  /// Label maps (Model.labels, ModelVersion.labels, and the label selectors, which must be
  /// satisfiable). A bad key is reported on the map (the key may be anything, so it is not
  /// echoed); a bad value on `field[key]`.
  static func labels(_ labels: [String: String], field: String, into problems: inout [FieldViolation]) {
    if labels.count > maxLabels {
      problems.append(FieldViolation(field, .tooMany(max: maxLabels)))
      return
    }
    var badKey = false
    for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
      let bytes = key.utf8
      let keyIsValid =
        !bytes.isEmpty && bytes.count <= maxLabelKeyCharacters && isLowerAlphanumeric(bytes.first!)
        && bytes.allSatisfy { isLowerAlphanumeric($0) || "._/-".utf8.contains($0) }
      if !keyIsValid {
        if !badKey {
          problems.append(FieldViolation(field, .alphabet(
            "have keys of 1 to \(maxLabelKeyCharacters) characters from [a-z0-9._/-], starting with a letter or digit")))
        }
        badKey = true
      } else if value.utf8.count > maxLabelValueBytes {
        problems.append(FieldViolation("\(field)[\(key)]", .tooLong(maxBytes: maxLabelValueBytes)))
      } else if value.unicodeScalars.contains(where: isControl) {
        problems.append(FieldViolation("\(field)[\(key)]", .controlCharacters))
      }
    }
  }

  static func artifact(_ artifact: Artifact?, into problems: inout [FieldViolation]) {
    guard let artifact else {
      problems.append(FieldViolation("artifact", .missing))
      return
    }
    if artifact.uri.isEmpty {
      problems.append(FieldViolation("artifact.uri", .missing))
    } else if artifact.uri.utf8.count > maxURIBytes {
      problems.append(FieldViolation("artifact.uri", .tooLong(maxBytes: maxURIBytes)))
    } else if !isAbsoluteURI(artifact.uri) {
      problems.append(FieldViolation("artifact.uri", .notAbsoluteURI))
    }
    // Bytes bound the work before characters are counted.
    if artifact.format.utf8.count > maxFormatCharacters * 4 || artifact.format.count > maxFormatCharacters {
      problems.append(FieldViolation("artifact.format", .tooManyCharacters(max: maxFormatCharacters)))
    } else if artifact.format.unicodeScalars.contains(where: isControl) {
      problems.append(FieldViolation("artifact.format", .controlCharacters))
    }
    if artifact.sizeBytes < 0 {
      problems.append(FieldViolation("artifact.size_bytes", .negative))
    } else if artifact.sizeBytes > maxSizeBytes {
      problems.append(FieldViolation("artifact.size_bytes", .tooLarge(max: maxSizeBytes)))
    }
    if artifact.sha256.isEmpty {
      problems.append(FieldViolation("artifact.sha256", .missing))
    } else if artifact.sha256.utf8.count != 64
      || !artifact.sha256.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
    {
      problems.append(FieldViolation("artifact.sha256", .notSHA256))
    }
  }

  /// RFC 3986's `scheme ":" rest` with a non-empty rest and no spaces or control characters.
  /// The registry records where an artifact lives; it does not dereference it, so it checks the
  /// shape only.
  static func isAbsoluteURI(_ value: String) -> Bool {
    let bytes = Array(value.utf8)
    guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")), colon > 0, colon < bytes.count - 1 else { return false }
    let scheme = bytes[..<colon]
    guard isASCIILetter(scheme.first!),
      scheme.allSatisfy({ isASCIIAlphanumeric($0) || "+-.".utf8.contains($0) })
    else { return false }
    return !value.unicodeScalars.contains { $0.properties.isWhitespace || isControl($0) }
  }

  static func pageSize(_ value: Int32, into problems: inout [FieldViolation]) {
    if !pageSizes.contains(Int(value)) {
      problems.append(FieldViolation("page_size", .outOfRange(min: pageSizes.lowerBound, max: pageSizes.upperBound)))
    }
  }

  /// A model reference: exactly one of id or name, each well-formed. A well-formed id that names
  /// nothing is NOT_FOUND later, not INVALID_ARGUMENT: ids are opaque.
  static func modelRef(_ ref: ModelRef?, field: String = "model", into problems: inout [FieldViolation]) {
    switch ref {
    case nil:
      problems.append(FieldViolation(field, .missing))
    case .id(let id):
      self.id(id, field: "\(field).id", into: &problems)
    case .name(let name):
      modelName(name, field: "\(field).name", into: &problems)
    }
  }

  static func versionRef(_ ref: VersionRef?, field: String = "version", into problems: inout [FieldViolation]) {
    switch ref {
    case nil:
      problems.append(FieldViolation(field, .missing))
    case .id(let id):
      self.id(id, field: "\(field).id", into: &problems)
    case .version(let version):
      versionString(version, field: "\(field).version", into: &problems)
    case .alias(let alias):
      versionString(alias, field: "\(field).alias", into: &problems)
    }
  }

  static func id(_ id: String, field: String, into problems: inout [FieldViolation]) {
    if id.isEmpty {
      problems.append(FieldViolation(field, .missing))
    } else if id.utf8.count > maxIDBytes {
      problems.append(FieldViolation(field, .tooLong(maxBytes: maxIDBytes)))
    }
  }

  static func finish<T>(_ problems: [FieldViolation], _ make: () -> T) -> Result<T, RegistryError> {
    problems.isEmpty ? .success(make()) : .failure(.invalidRequest(problems))
  }

  // MARK: - Characters

  static func isControl(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.properties.generalCategory {
    case .control, .format, .surrogate, .lineSeparator, .paragraphSeparator: true
    default: false
    }
  }

  /// Tenant ids travel in logs, metric labels and SQL parameters: whitespace and control or
  /// format characters there are a mistake or an attack (the quota service's rule).
  static func isPrintableName(_ value: String) -> Bool {
    !value.unicodeScalars.contains { $0.properties.isWhitespace || isControl($0) }
  }

  private static func isASCIILetter(_ byte: UInt8) -> Bool {
    (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
  }

  private static func isASCIIAlphanumeric(_ byte: UInt8) -> Bool {
    isASCIILetter(byte) || (byte >= 0x30 && byte <= 0x39)
  }

  private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
    (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
  }
}
