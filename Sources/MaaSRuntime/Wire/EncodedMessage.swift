public import GRPCCore
public import SwiftProtobuf

/// A message already in its protobuf encoding, sent or passed on without being decoded and
/// encoded again.
///
/// Two uses: the gateway hands the registry's list answers to its callers as the registry
/// encoded them, and the registry answers a ListModels page it has kept with the bytes it encoded
/// the first time. `Message` says what the bytes are, so a handler's type still names the
/// method's response.
public struct EncodedMessage<Message: SwiftProtobuf.Message>: Sendable {
  /// The message's protobuf encoding.
  public var bytes: [UInt8]

  public init(bytes: [UInt8]) {
    self.bytes = bytes
  }

  /// `message` encoded.
  /// - Throws: what SwiftProtobuf throws for a message it cannot encode.
  public init(encoding message: Message) throws {
    self.bytes = try message.serializedBytes()
  }

  /// The same bytes as an `Other`: only for messages whose fields have the same numbers and types.
  public func reinterpreted<Other: SwiftProtobuf.Message>(as: Other.Type) -> EncodedMessage<Other> {
    EncodedMessage<Other>(bytes: self.bytes)
  }

  /// The message itself.
  public func decoded() throws -> Message {
    try Message(serializedBytes: self.bytes)
  }
}

/// Takes a message off the wire as it is (one copy, no decoding).
public struct EncodedMessageDeserializer<Message: SwiftProtobuf.Message>: MessageDeserializer {
  public init() {}

  public func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> EncodedMessage<Message> {
    if let bytes = serializedMessageBytes as? [UInt8] { return EncodedMessage(bytes: bytes) }
    return EncodedMessage(bytes: serializedMessageBytes.withUnsafeBytes { Array($0) })
  }
}

/// Puts encoded bytes on the wire as they are.
public struct EncodedMessageSerializer<Message: SwiftProtobuf.Message>: MessageSerializer {
  public init() {}

  public func serialize<Bytes: GRPCContiguousBytes>(_ message: EncodedMessage<Message>) throws -> Bytes {
    if let bytes = message.bytes as? Bytes { return bytes }
    return Bytes(message.bytes)
  }
}

/// Encodes messages with SwiftProtobuf (GRPCProtobuf's coders are not a dependency of the
/// services' modules); a message that cannot be encoded is INTERNAL.
public struct ProtobufMessageSerializer<Message: SwiftProtobuf.Message>: MessageSerializer {
  public init() {}

  public func serialize<Bytes: GRPCContiguousBytes>(_ message: Message) throws -> Bytes {
    do {
      let bytes: [UInt8] = try message.serializedBytes()
      if let same = bytes as? Bytes { return same }
      return Bytes(bytes)
    } catch {
      throw RPCError(code: .internalError, message: "could not encode \(Message.protoMessageName)", cause: error)
    }
  }
}

/// Decodes requests with SwiftProtobuf, refusing undecodable ones as GRPCProtobuf's deserializer
/// does (INVALID_ARGUMENT).
public struct ProtobufMessageDeserializer<Message: SwiftProtobuf.Message>: MessageDeserializer {
  public init() {}

  public func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> Message {
    do {
      if let bytes = serializedMessageBytes as? [UInt8] { return try Message(serializedBytes: bytes) }
      return try Message(serializedBytes: serializedMessageBytes.withUnsafeBytes { Array($0) })
    } catch {
      throw RPCError(code: .invalidArgument, message: "Can't deserialize to message of type \(Message.self).", cause: error)
    }
  }
}
