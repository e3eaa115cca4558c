internal import CGRPCShim
import GRPCCore

extension Metadata {
  /// Metadata received from the shim. Values of keys ending in "-bin" are raw bytes (grpc has
  /// already decoded them); all others are text.
  init(shimEntries entries: UnsafeBufferPointer<maas_grpc_metadata_entry>) {
    self.init()
    self.reserveCapacity(entries.count)
    for entry in entries {
      let key = String(
        decoding: UnsafeRawBufferPointer(start: entry.key, count: entry.key_length),
        as: UTF8.self
      )
      let value = UnsafeBufferPointer(start: entry.value, count: entry.value_length)
      if key.hasSuffix("-bin") {
        self.addBinary(Array(value), forKey: key)
      } else {
        self.addString(String(decoding: value, as: UTF8.self), forKey: key)
      }
    }
  }

  init(shimMetadata metadata: UnsafePointer<maas_grpc_metadata>?) {
    guard let metadata, metadata.pointee.count > 0 else {
      self.init()
      return
    }
    self.init(shimEntries: UnsafeBufferPointer(start: metadata.pointee.entries, count: metadata.pointee.count))
  }
}

/// Keys that HTTP/2 or grpc itself owns. grpc C++ sets them; an application value would be
/// rejected by grpc core and fail the call, so they are dropped before the shim sees them.
private func isReserved(_ key: String) -> Bool {
  key.hasPrefix(":") || key.hasPrefix("grpc-") || key == "content-type" || key == "te"
    || key == "user-agent" || key == "host" || key == "connection"
    || key == "transfer-encoding"
}

/// A header key is lower-case letters, digits, '-', '_' and '.'; a text value is printable ASCII.
private func isLegalKey(_ key: String) -> Bool {
  !key.isEmpty
    && key.utf8.allSatisfy { byte in
      (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
        || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
        || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
    }
}

private func isLegalTextValue(_ value: String) -> Bool {
  value.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }
}

/// Lays metadata out as C entries for the duration of `body`. Keys are lower-cased; reserved keys
/// and entries that HTTP/2 cannot carry are left out rather than failing the whole call.
func withShimMetadata<Result>(
  _ metadata: Metadata,
  _ body: (UnsafePointer<maas_grpc_metadata>) throws -> Result
) rethrows -> Result {
  if metadata.isEmpty {
    var empty = maas_grpc_metadata(entries: nil, count: 0)
    return try body(&empty)
  }
  // One buffer holds every key and value; the entries point into it.
  var storage: [UInt8] = []
  var spans: [(key: Range<Int>, value: Range<Int>)] = []
  spans.reserveCapacity(metadata.count)
  for (rawKey, value) in metadata {
    let key = rawKey.lowercased()
    guard !isReserved(key), isLegalKey(key) else { continue }
    let keyStart = storage.count
    storage.append(contentsOf: key.utf8)
    let valueStart = storage.count
    switch value {
    case .string(let text):
      guard !key.hasSuffix("-bin") else {
        storage.append(contentsOf: text.utf8)
        break
      }
      guard isLegalTextValue(text) else {
        storage.removeSubrange(keyStart...)
        continue
      }
      storage.append(contentsOf: text.utf8)
    case .binary(let bytes):
      guard key.hasSuffix("-bin") else {
        // A binary value under a text key is sent as base64, as grpc-swift's own transport does.
        storage.append(contentsOf: bytes.base64Encoded().utf8)
        break
      }
      storage.append(contentsOf: bytes)
    }
    spans.append((keyStart..<valueStart, valueStart..<storage.count))
  }
  return try storage.withUnsafeBufferPointer { buffer in
    let base = buffer.baseAddress
    let entries = spans.map { span in
      maas_grpc_metadata_entry(
        key: base.map { UnsafeRawPointer($0 + span.key.lowerBound).assumingMemoryBound(to: CChar.self) },
        key_length: span.key.count,
        value: base.map { $0 + span.value.lowerBound },
        value_length: span.value.count
      )
    }
    return try entries.withUnsafeBufferPointer { entryBuffer in
      var list = maas_grpc_metadata(entries: entryBuffer.baseAddress, count: entryBuffer.count)
      return try body(&list)
    }
  }
}

extension Array where Element == UInt8 {
  fileprivate func base64Encoded() -> String {
    let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var output: [UInt8] = []
    output.reserveCapacity((self.count + 2) / 3 * 4)
    var index = 0
    while index < self.count {
      let remaining = self.count - index
      let b0 = self[index]
      let b1 = remaining > 1 ? self[index + 1] : 0
      let b2 = remaining > 2 ? self[index + 2] : 0
      output.append(table[Int(b0 >> 2)])
      output.append(table[Int((b0 & 0x03) << 4 | b1 >> 4)])
      output.append(remaining > 1 ? table[Int((b1 & 0x0F) << 2 | b2 >> 6)] : UInt8(ascii: "="))
      output.append(remaining > 2 ? table[Int(b2 & 0x3F)] : UInt8(ascii: "="))
      index += 3
    }
    return String(decoding: output, as: UTF8.self)
  }
}
