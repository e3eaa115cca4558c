public import GRPCCore

/// Bytes as they are: for requests no Swift message can express (text that is not UTF-8).
public struct RawBytes: MessageSerializer, MessageDeserializer {
  public init() {}

  public func serialize<Bytes: GRPCContiguousBytes>(_ message: [UInt8]) throws -> Bytes { Bytes(message) }
  public func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> [UInt8] {
    serializedMessageBytes.withUnsafeBytes { Array($0) }
  }
}

/// Protobuf's wire format by hand: length-delimited fields, and messages made of them.
public enum Wire {
  public static func field(_ number: Int, _ bytes: [UInt8]) -> [UInt8] {
    varint(UInt64(number << 3 | 2)) + varint(UInt64(bytes.count)) + bytes
  }

  public static func field(_ number: Int, _ text: String) -> [UInt8] { field(number, Array(text.utf8)) }

  public static func varint(_ value: UInt64) -> [UInt8] {
    var value = value
    var bytes: [UInt8] = []
    repeat {
      var byte = UInt8(value & 0x7f)
      value >>= 7
      if value != 0 { byte |= 0x80 }
      bytes.append(byte)
    } while value != 0
    return bytes
  }

  /// Not UTF-8: a lone continuation byte and an invalid lead byte.
  public static let invalidUTF8: [UInt8] = [0x6c, 0x6c, 0x80, 0xff, 0x61]
}

extension GRPCClient {
  /// Calls `method` with `bytes` as the request, as they are; returns the status (nil: it
  /// succeeded).
  public func rawStatus(_ method: MethodDescriptor, _ bytes: [UInt8], metadata: Metadata = [:]) async
    -> (code: RPCError.Code, message: String)?
  {
    await status {
      try await self.unary(
        request: ClientRequest(message: bytes, metadata: metadata), descriptor: method, serializer: RawBytes(),
        deserializer: RawBytes(), options: .defaults
      ) { response in try response.message }
    }
  }
}
