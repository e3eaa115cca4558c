public import GRPCCore
public import SwiftProtobuf

/// Decodes request messages, and says which field is at fault when one does not decode.
///
/// Why not GRPCProtobuf's deserializer: a `string` field that is not UTF-8 makes SwiftProtobuf
/// refuse the whole message, and the stock deserializer answers "Can't deserialize to message
/// of type ...", naming no field. The contracts promise INVALID_ARGUMENT naming the field, so on
/// failure this walks the raw bytes with the message's `WireSchema` and names the first string
/// field that is not UTF-8 (`artifact.uri: is not valid UTF-8`). The registry serves with it,
/// and the gateway, which decodes its callers' requests before forwarding them.
public struct FieldNamingDeserializer<Message: SwiftProtobuf.Message>: MessageDeserializer {
  let schema: WireSchema

  public init(schema: WireSchema) { self.schema = schema }

  public func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> Message {
    do {
      // The common case is the stock decoding (no copy of bytes already in an array); the bytes
      // are walked only when it fails.
      return try ProtobufMessageDeserializer<Message>().deserialize(serializedMessageBytes)
    } catch let refusal {
      // SwiftProtobuf's own error, as before: the stock refusal's text would join this one's.
      let error = (refusal as? RPCError)?.cause ?? refusal
      let bytes = serializedMessageBytes.withUnsafeBytes { Array($0) }
      if let field = schema.firstInvalidUTF8(bytes[...]) {
        throw RPCError(code: .invalidArgument, message: "\(field): is not valid UTF-8", cause: error)
      }
      throw RPCError(
        code: .invalidArgument, message: "request: is not a valid \(Message.protoMessageName) message", cause: error)
    }
  }
}

/// Which length-delimited fields of a message hold text, by field number: enough of a contract to
/// find a field that is not UTF-8 on the wire. Fields not listed are skipped.
public final class WireSchema: Sendable {
  public enum Field: Sendable {
    case string(String)
    /// `map<string, string>`: each entry is a message with key 1 and value 2.
    case stringMap(String)
    case message(String, WireSchema)
  }

  let fields: [Int: Field]

  public init(_ fields: [Int: Field]) { self.fields = fields }

  /// The path of the first string field whose bytes are not UTF-8, or nil (also for bytes that
  /// are not a well-formed message: then no field is to blame).
  public func firstInvalidUTF8(_ bytes: ArraySlice<UInt8>, prefix: String = "") -> String? {
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

/// The text fields of the shared resources (maas/registry/v1/resources.proto and
/// google.protobuf.FieldMask) that the registry's and the gateway's requests carry.
public enum ResourceWireSchemas {
  public static let modelRef = WireSchema([1: .string("id"), 2: .string("name")])
  public static let versionRef = WireSchema([1: .string("id"), 2: .string("version"), 3: .string("alias")])
  public static let artifact = WireSchema([1: .string("uri"), 2: .string("format"), 4: .string("sha256")])
  public static let model = WireSchema([
    1: .string("id"), 2: .string("tenant_id"), 3: .string("name"), 4: .string("description"), 5: .stringMap("labels"),
    9: .stringMap("aliases"),
  ])
  public static let fieldMask = WireSchema([1: .string("paths")])
}

extension RPCRouter {
  /// One unary method served with the given coders, replacing the generated registration of the
  /// same method (which uses GRPCProtobuf's).
  public mutating func registerUnary<Input: Sendable, Output: Sendable>(
    _ descriptor: MethodDescriptor, deserializer: some MessageDeserializer<Input>, serializer: some MessageSerializer<Output>,
    _ handler: @escaping @Sendable (Input, ServerContext) async throws -> Output
  ) {
    self.registerHandler(
      forMethod: descriptor, deserializer: deserializer, serializer: serializer,
      handler: { request, context in
        let single = try await ServerRequest(stream: request)
        return StreamingServerResponse(single: ServerResponse(message: try await handler(single.message, context), metadata: [:]))
      })
  }

  /// One unary method whose requests `FieldNamingDeserializer` reads with `schema`.
  public mutating func registerUnary<Input: SwiftProtobuf.Message, Output: SwiftProtobuf.Message>(
    _ descriptor: MethodDescriptor, _ schema: WireSchema, _ handler: @escaping @Sendable (Input, ServerContext) async throws -> Output
  ) {
    self.registerUnary(
      descriptor, deserializer: FieldNamingDeserializer<Input>(schema: schema), serializer: ProtobufMessageSerializer<Output>(), handler)
  }
}
