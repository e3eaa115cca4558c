import GRPCCore
import SwiftProtobuf

/// Decodes request messages, and says which field is at fault when one does not decode.
///
/// Why not GRPCProtobuf's deserializer: a `string` field that is not UTF-8 makes SwiftProtobuf
/// refuse the whole message, and the stock deserializer answers "Can't deserialize to message
/// of type ...", naming no field. registry.proto promises INVALID_ARGUMENT naming the field, so
/// on failure this walks the raw bytes with the message's `WireSchema` and names the first
/// string field that is not UTF-8 (`artifact.uri: is not valid UTF-8`).
struct RegistryDeserializer<Message: SwiftProtobuf.Message>: MessageDeserializer {
  let schema: WireSchema

  func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> Message {
    let bytes = serializedMessageBytes.withUnsafeBytes { Array($0) }
    do {
      return try Message(serializedBytes: bytes)
    } catch {
      if let field = schema.firstInvalidUTF8(bytes[...]) {
        throw RPCError(code: .invalidArgument, message: FieldViolation(field, .notUTF8).description, cause: error)
      }
      throw RPCError(
        code: .invalidArgument, message: "request: is not a valid \(Message.protoMessageName) message", cause: error)
    }
  }
}

/// Which length-delimited fields of a message hold text, by field number: enough of
/// registry.proto to find a field that is not UTF-8 on the wire. Fields not listed are skipped.
final class WireSchema: Sendable {
  enum Field: Sendable {
    case string(String)
    /// `map<string, string>`: each entry is a message with key 1 and value 2.
    case stringMap(String)
    case message(String, WireSchema)
  }

  let fields: [Int: Field]

  init(_ fields: [Int: Field]) { self.fields = fields }

  /// The path of the first string field whose bytes are not UTF-8, or nil (also for bytes that
  /// are not a well-formed message: then no field is to blame).
  func firstInvalidUTF8(_ bytes: ArraySlice<UInt8>, prefix: String = "") -> String? {
    var reader = WireReader(bytes: bytes)
    while !reader.isAtEnd {
      guard let tag = reader.varint() else { return nil }
      switch tag & 7 {
      case 0: guard reader.varint() != nil else { return nil }
      case 1: guard reader.skip(8) else { return nil }
      case 5: guard reader.skip(4) else { return nil }
      case 2:
        guard let length = reader.varint(), let value = reader.take(Int(exactly: length) ?? -1) else { return nil }
        switch fields[Int(tag >> 3)] {
        case .string(let name):
          if String(validating: value, as: UTF8.self) == nil { return prefix + name }
        case .stringMap(let name):
          let entry = WireSchema([1: .string(""), 2: .string("")])
          if entry.firstInvalidUTF8(value) != nil { return prefix + name }
        case .message(let name, let schema):
          if let inner = schema.firstInvalidUTF8(value, prefix: prefix + name + ".") { return inner }
        case nil:
          break
        }
      default:
        return nil  // groups (3, 4) are not in proto3; anything else is malformed
      }
    }
    return nil
  }
}

/// Reads protobuf's wire format: varints and length-delimited runs.
private struct WireReader {
  var bytes: ArraySlice<UInt8>

  var isAtEnd: Bool { bytes.isEmpty }

  mutating func varint() -> UInt64? {
    var value: UInt64 = 0
    var shift: UInt64 = 0
    while let byte = bytes.first, shift < 64 {
      bytes = bytes.dropFirst()
      value |= UInt64(byte & 0x7f) << shift
      if byte & 0x80 == 0 { return value }
      shift += 7
    }
    return nil
  }

  mutating func skip(_ count: Int) -> Bool { take(count) != nil }

  mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
    guard count >= 0, bytes.count >= count else { return nil }
    defer { bytes = bytes.dropFirst(count) }
    return bytes.prefix(count)
  }
}

/// The text fields of every request of registry.proto.
enum RegistryWireSchemas {
  static let modelRef = WireSchema([1: .string("id"), 2: .string("name")])
  static let versionRef = WireSchema([1: .string("id"), 2: .string("version"), 3: .string("alias")])
  static let artifact = WireSchema([1: .string("uri"), 2: .string("format"), 4: .string("sha256")])
  static let model = WireSchema([
    1: .string("id"), 2: .string("tenant_id"), 3: .string("name"), 4: .string("description"), 5: .stringMap("labels"),
    9: .stringMap("aliases"),
  ])
  static let fieldMask = WireSchema([1: .string("paths")])

  static let createModel = WireSchema([
    1: .string("tenant_id"), 2: .string("name"), 3: .string("description"), 4: .stringMap("labels"),
    5: .string("idempotency_key"),
  ])
  static let getModel = WireSchema([1: .string("tenant_id"), 2: .message("model", modelRef)])
  static let listModels = WireSchema([
    1: .string("tenant_id"), 3: .string("page_token"), 4: .string("name_prefix"), 5: .stringMap("label_selector"),
  ])
  static let updateModel = WireSchema([
    1: .string("tenant_id"), 2: .message("model", modelRef), 3: .message("update", model),
    4: .message("update_mask", fieldMask), 5: .string("idempotency_key"),
  ])
  static let deleteModel = WireSchema([1: .string("tenant_id"), 2: .message("model", modelRef), 4: .string("idempotency_key")])
  static let createVersion = WireSchema([
    1: .string("tenant_id"), 2: .message("model", modelRef), 3: .string("version"), 4: .message("artifact", artifact),
    5: .stringMap("labels"), 6: .string("idempotency_key"),
  ])
  static let getVersion = WireSchema([
    1: .string("tenant_id"), 2: .message("model", modelRef), 3: .message("version", versionRef),
  ])
  static let listVersions = WireSchema([
    1: .string("tenant_id"), 2: .message("model", modelRef), 4: .string("page_token"), 5: .stringMap("label_selector"),
  ])
  static let deleteVersion = WireSchema([
    1: .string("tenant_id"), 2: .message("model", modelRef), 3: .message("version", versionRef),
    4: .string("idempotency_key"),
  ])
  static let setAlias = WireSchema([
    1: .string("tenant_id"), 2: .message("model", modelRef), 3: .string("alias"), 4: .string("version"),
    5: .string("idempotency_key"),
  ])
  static let getAlias = WireSchema([1: .string("tenant_id"), 2: .message("model", modelRef), 3: .string("alias")])
  static let deleteAlias = WireSchema([
    1: .string("tenant_id"), 2: .message("model", modelRef), 3: .string("alias"), 4: .string("idempotency_key"),
  ])
}
