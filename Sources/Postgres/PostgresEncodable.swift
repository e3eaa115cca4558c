public import Foundation

/// One statement parameter as it goes to the server.
public struct PostgresParameter: Sendable, Hashable {
  /// The type the server takes the parameter as; `.unspecified` lets it infer one from context.
  public var type: PostgresDataType
  public var format: PostgresFormat
  /// The value in `format`; nil is SQL NULL. Text values must not contain NUL bytes.
  public var bytes: [UInt8]?

  public init(type: PostgresDataType, format: PostgresFormat, bytes: [UInt8]?) {
    self.type = type
    self.format = format
    self.bytes = bytes
  }

  /// SQL NULL, typed by the statement's context.
  public static let null = PostgresParameter(type: .unspecified, format: .text, bytes: nil)
}

/// A Swift value that can be bound to a statement parameter (`$1`, `$2`, ...).
///
/// Parameters always travel out of band, never spliced into SQL text, so no value needs quoting.
/// Conform a type of your own by returning the parameter of a type that already conforms; a
/// `RawRepresentable` whose raw value conforms gets it for free.
public protocol PostgresEncodable: Sendable {
  /// This value as one statement parameter.
  ///
  /// Called on the caller's task before the statement is queued, so the work here must not block.
  /// - Throws: `PostgresError` with kind `.encoding` when the value has no Postgres form (text
  ///   containing NUL, an array too long for the wire format).
  func postgresParameter() throws -> PostgresParameter
}

extension PostgresEncodable where Self: RawRepresentable, RawValue: PostgresEncodable {
  public func postgresParameter() throws -> PostgresParameter {
    try self.rawValue.postgresParameter()
  }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
  public func postgresParameter() throws -> PostgresParameter {
    switch self {
    case .none: return .null
    case .some(let value): return try value.postgresParameter()
    }
  }
}

// Strings go as untyped text, exactly like a quoted literal: the server reads them as whatever
// the context needs (uuid, enum, numeric, citext, ...), and "abc" into an integer column fails
// with 22P02 instead of being silently accepted as text.
extension String: PostgresEncodable {
  public func postgresParameter() throws -> PostgresParameter {
    PostgresParameter(type: .unspecified, format: .text, bytes: try BinaryWriter.textBytes(self))
  }
}

extension Substring: PostgresEncodable {
  public func postgresParameter() throws -> PostgresParameter {
    try String(self).postgresParameter()
  }
}

// Integers, floats, booleans, bytes, uuids and timestamps go in binary: no formatting, no
// parsing, and no dependency on the session's DateStyle or TimeZone.
extension Int: PostgresEncodable {
  public func postgresParameter() throws -> PostgresParameter {
    PostgresParameter(type: .int8, format: .binary, bytes: BinaryWriter.bigEndian(Int64(self)))
  }
}

extension Int64: PostgresEncodable {
  public func postgresParameter() throws -> PostgresParameter {
    PostgresParameter(type: .int8, format: .binary, bytes: BinaryWriter.bigEndian(self))
  }
}

extension Int32: PostgresEncodable {
  public func postgresParameter() throws -> PostgresParameter {
    PostgresParameter(type: .int4, format: .binary, bytes: BinaryWriter.bigEndian(self))
  }
}

extension Int16: PostgresEncodable {
  public func postgresParameter() throws -> PostgresParameter {
    PostgresParameter(type: .int2, format: .binary, bytes: BinaryWriter.bigEndian(self))
  }
}

extension Bool: PostgresEncodable {
  public func postgresParameter() throws -> PostgresParameter {
    PostgresParameter(type: .bool, format: .binary, bytes: [self ? 1 : 0])
  }
}

extension Double: PostgresEncodable {
  public func postgresParameter() throws -> PostgresParameter {
    PostgresParameter(type: .float8, format: .binary, bytes: BinaryWriter.bigEndian(self.bitPattern))
  }
}

extension Float: PostgresEncodable {
  public func postgresParameter() throws -> PostgresParameter {
    PostgresParameter(type: .float4, format: .binary, bytes: BinaryWriter.bigEndian(self.bitPattern))
  }
}

extension Array: PostgresEncodable where Element: PostgresArrayElement {
  public func postgresParameter() throws -> PostgresParameter {
    try Element.postgresArrayParameter(self)
  }
}

extension Data: PostgresEncodable {
  public func postgresParameter() throws -> PostgresParameter {
    PostgresParameter(type: .bytea, format: .binary, bytes: [UInt8](self))
  }
}

extension UUID: PostgresEncodable {
  public func postgresParameter() throws -> PostgresParameter {
    PostgresParameter(type: .uuid, format: .binary, bytes: BinaryWriter.uuid(self))
  }
}

extension Date: PostgresEncodable {
  public func postgresParameter() throws -> PostgresParameter {
    PostgresParameter(type: .timestamptz, format: .binary, bytes: BinaryWriter.bigEndian(PostgresTime.microseconds(self)))
  }
}

/// A Swift type whose arrays are Postgres values: `[String]` is text[], `[Int64]` and `[Int]`
/// are int8[], `[Int32]` is int4[], `[UUID]` is uuid[], `[Date]` is timestamptz[]
/// (one-dimensional, no NULL elements), and `[UInt8]` is bytea.
///
/// One protocol decides both directions for the whole array, because Swift allows `Array` only
/// one conformance to `PostgresEncodable` and `PostgresDecodable`: bytea and the real arrays
/// share it.
public protocol PostgresArrayElement: Sendable {
  /// An array of this element type as one statement parameter.
  /// - Throws: `PostgresError` with kind `.encoding` when an element has no Postgres form.
  static func postgresArrayParameter(_ elements: [Self]) throws -> PostgresParameter

  /// An array of this element type from one column's value.
  /// - Throws: `PostgresError` with kind `.decoding` when the column's type is not this array
  ///   type, the value is NULL, has a NULL element, has more than one dimension, or does not parse.
  static func decodePostgresArray(from cell: PostgresCell) throws -> [Self]
}

extension String: PostgresArrayElement {
  public static func postgresArrayParameter(_ elements: [String]) throws -> PostgresParameter {
    try BinaryWriter.arrayParameter(elements, elementType: .text, arrayType: .textArray, BinaryWriter.textBytes)
  }

  public static func decodePostgresArray(from cell: PostgresCell) throws -> [String] {
    try cell.decodeArray(accepting: [.textArray, .varcharArray, .bpcharArray, .nameArray], as: String.self) { String($0) }
  }
}

extension Int64: PostgresArrayElement {
  public static func postgresArrayParameter(_ elements: [Int64]) throws -> PostgresParameter {
    try BinaryWriter.arrayParameter(elements, elementType: .int8, arrayType: .int8Array) { BinaryWriter.bigEndian($0) }
  }

  public static func decodePostgresArray(from cell: PostgresCell) throws -> [Int64] {
    try cell.decodeArray(accepting: [.int2Array, .int4Array, .int8Array], as: Int64.self) { Int64($0) }
  }
}

extension Int: PostgresArrayElement {
  public static func postgresArrayParameter(_ elements: [Int]) throws -> PostgresParameter {
    try BinaryWriter.arrayParameter(elements, elementType: .int8, arrayType: .int8Array) { BinaryWriter.bigEndian(Int64($0)) }
  }

  public static func decodePostgresArray(from cell: PostgresCell) throws -> [Int] {
    try cell.decodeArray(accepting: [.int2Array, .int4Array, .int8Array], as: Int.self) { Int($0) }
  }
}

extension Int32: PostgresArrayElement {
  public static func postgresArrayParameter(_ elements: [Int32]) throws -> PostgresParameter {
    try BinaryWriter.arrayParameter(elements, elementType: .int4, arrayType: .int4Array) { BinaryWriter.bigEndian($0) }
  }

  public static func decodePostgresArray(from cell: PostgresCell) throws -> [Int32] {
    try cell.decodeArray(accepting: [.int2Array, .int4Array], as: Int32.self) { Int32($0) }
  }
}

extension Date: PostgresArrayElement {
  public static func postgresArrayParameter(_ elements: [Date]) throws -> PostgresParameter {
    try BinaryWriter.arrayParameter(elements, elementType: .timestamptz, arrayType: .timestamptzArray) {
      BinaryWriter.bigEndian(PostgresTime.microseconds($0))
    }
  }

  public static func decodePostgresArray(from cell: PostgresCell) throws -> [Date] {
    try cell.decodeArray(accepting: [.timestamptzArray], as: Date.self) { text in
      var utf8 = String(text)
      return utf8.withUTF8 { PostgresTime.parse(UnsafeRawBufferPointer($0)) }
    }
  }
}

extension UUID: PostgresArrayElement {
  public static func postgresArrayParameter(_ elements: [UUID]) throws -> PostgresParameter {
    try BinaryWriter.arrayParameter(elements, elementType: .uuid, arrayType: .uuidArray, BinaryWriter.uuid)
  }

  public static func decodePostgresArray(from cell: PostgresCell) throws -> [UUID] {
    try cell.decodeArray(accepting: [.uuidArray], as: UUID.self) { UUID(uuidString: String($0)) }
  }
}

// `[UInt8]` is bytea, not an array of small integers.
extension UInt8: PostgresArrayElement {
  public static func postgresArrayParameter(_ elements: [UInt8]) throws -> PostgresParameter {
    PostgresParameter(type: .bytea, format: .binary, bytes: elements)
  }

  public static func decodePostgresArray(from cell: PostgresCell) throws -> [UInt8] {
    try cell.decodeBytea()
  }
}

/// The binary send formats of the types above (the server's *send/*recv functions).
enum BinaryWriter {
  static func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.bigEndian) { Array($0) }
  }

  static func textBytes(_ string: String) throws -> [UInt8] {
    let bytes = Array(string.utf8)
    // Postgres text cannot hold NUL, and libpq would cut a text parameter there silently.
    if bytes.contains(0) {
      throw PostgresError.encoding("text parameters cannot contain NUL (U+0000) characters")
    }
    return bytes
  }

  static func uuid(_ uuid: UUID) -> [UInt8] {
    withUnsafeBytes(of: uuid.uuid) { Array($0) }
  }

  static func arrayParameter<Element>(
    _ elements: [Element],
    elementType: PostgresDataType,
    arrayType: PostgresDataType,
    _ encode: (Element) throws -> [UInt8]
  ) throws -> PostgresParameter {
    PostgresParameter(type: arrayType, format: .binary, bytes: try self.array(elements, elementType: elementType, encode))
  }

  /// array_send's layout: dimensions, has-nulls flag, element type, then per dimension its
  /// length and lower bound, then each element as a length-prefixed binary value.
  static func array<Element>(
    _ elements: [Element],
    elementType: PostgresDataType,
    _ encode: (Element) throws -> [UInt8]
  ) throws -> [UInt8] {
    guard elements.count < Int(Int32.max) else {
      throw PostgresError.encoding("array parameter has \(elements.count) elements, more than Postgres accepts")
    }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(20 + elements.count * 12)
    bytes += bigEndian(Int32(elements.isEmpty ? 0 : 1))
    bytes += bigEndian(Int32(0))
    bytes += bigEndian(elementType.oid)
    if !elements.isEmpty {
      bytes += bigEndian(Int32(elements.count))
      bytes += bigEndian(Int32(1))
    }
    for element in elements {
      let value = try encode(element)
      bytes += bigEndian(Int32(value.count))
      bytes += value
    }
    return bytes
  }
}
