public import Foundation

/// A Swift type that a result column decodes into.
///
/// Decoding checks the column's type, so `row.decode(Int.self, column: "name")` on a text column
/// throws instead of guessing; and it is NULL-safe: NULL decodes only into an `Optional`.
/// A `RawRepresentable` whose raw value conforms (a Swift enum over a text or enum column) gets a
/// conformance for free.
public protocol PostgresDecodable: Sendable {
  /// Decodes one column's value.
  ///
  /// - Parameter cell: the value in text format, with the column's name and type.
  /// - Throws: `PostgresError` with kind `.decoding` when the column's type cannot hold a `Self`,
  ///   when the value is NULL and `Self` is not optional, or when the text does not parse.
  static func decode(from cell: PostgresCell) throws -> Self
}

extension PostgresDecodable where Self: RawRepresentable, RawValue: PostgresDecodable {
  public static func decode(from cell: PostgresCell) throws -> Self {
    let raw = try RawValue.decode(from: cell)
    guard let value = Self(rawValue: raw) else {
      throw PostgresError.decoding("column \"\(cell.column.name)\" holds a value that is not a valid \(Self.self)")
    }
    return value
  }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
  public static func decode(from cell: PostgresCell) throws -> Wrapped? {
    if cell.isNull { return nil }
    return try Wrapped.decode(from: cell)
  }
}

extension String: PostgresDecodable {
  // Types with a Swift type of their own here must be decoded as that type (or cast to text in
  // SQL): reading an integer or a timestamp as a String is usually a mistake in the query.
  private static let refused: Set<PostgresDataType> = [
    .bool, .bytea, .int2, .int4, .int8, .float4, .float8, .date, .timestamp, .timestamptz,
    .boolArray, .byteaArray, .int2Array, .int4Array, .int8Array, .textArray, .varcharArray,
    .bpcharArray, .nameArray, .float8Array, .uuidArray, .jsonbArray, .timestamptzArray,
  ]

  public static func decode(from cell: PostgresCell) throws -> String {
    try cell.decodeValue(as: String.self, accepting: { !refused.contains($0) }) { String(decoding: $0, as: UTF8.self) }
  }
}

extension Int64: PostgresDecodable {
  public static func decode(from cell: PostgresCell) throws -> Int64 {
    try cell.decodeValue(as: Int64.self, accepting: [.int2, .int4, .int8, .oidType]) { TextFormats.int64($0) }
  }
}

extension Int: PostgresDecodable {
  public static func decode(from cell: PostgresCell) throws -> Int {
    Int(try Int64.decode(from: cell))
  }
}

extension Int32: PostgresDecodable {
  public static func decode(from cell: PostgresCell) throws -> Int32 {
    try cell.decodeValue(as: Int32.self, accepting: [.int2, .int4, .int8, .oidType]) {
      TextFormats.int64($0).flatMap(Int32.init(exactly:))
    }
  }
}

extension Int16: PostgresDecodable {
  public static func decode(from cell: PostgresCell) throws -> Int16 {
    try cell.decodeValue(as: Int16.self, accepting: [.int2, .int4, .int8]) {
      TextFormats.int64($0).flatMap(Int16.init(exactly:))
    }
  }
}

extension Bool: PostgresDecodable {
  public static func decode(from cell: PostgresCell) throws -> Bool {
    try cell.decodeValue(as: Bool.self, accepting: [.bool]) { bytes in
      switch bytes.first {
      case UInt8(ascii: "t"): return true
      case UInt8(ascii: "f"): return false
      default: return nil
      }
    }
  }
}

extension Double: PostgresDecodable {
  public static func decode(from cell: PostgresCell) throws -> Double {
    try cell.decodeValue(as: Double.self, accepting: [.float4, .float8, .numeric, .int2, .int4, .int8]) {
      Double(String(decoding: $0, as: UTF8.self))
    }
  }
}

extension Float: PostgresDecodable {
  public static func decode(from cell: PostgresCell) throws -> Float {
    Float(try Double.decode(from: cell))
  }
}

extension Data: PostgresDecodable {
  public static func decode(from cell: PostgresCell) throws -> Data {
    Data(try cell.decodeBytea())
  }
}

extension UUID: PostgresDecodable {
  public static func decode(from cell: PostgresCell) throws -> UUID {
    try cell.decodeValue(as: UUID.self, accepting: [.uuid]) { UUID(uuidString: String(decoding: $0, as: UTF8.self)) }
  }
}

extension Date: PostgresDecodable {
  public static func decode(from cell: PostgresCell) throws -> Date {
    try cell.decodeValue(as: Date.self, accepting: [.timestamptz, .timestamp, .date]) { PostgresTime.parse($0) }
  }
}

extension Array: PostgresDecodable where Element: PostgresArrayElement {
  public static func decode(from cell: PostgresCell) throws -> [Element] {
    try Element.decodePostgresArray(from: cell)
  }
}

extension PostgresCell {
  /// Checks the column type, refuses NULL, and parses the text; `parse` returns nil for text
  /// that does not parse.
  func decodeValue<T>(
    as type: T.Type,
    accepting accepts: (PostgresDataType) -> Bool,
    _ parse: (UnsafeRawBufferPointer) -> T?
  ) throws -> T {
    guard accepts(self.dataType) else { throw self.typeMismatch(T.self) }
    guard let parsed = self.withUnsafeBytes(parse) else { throw self.unexpectedNull(T.self) }
    guard let value = parsed else {
      throw PostgresError.decoding("column \"\(self.column.name)\" (\(self.dataType)) holds text that does not parse as \(T.self)")
    }
    return value
  }

  // The accepted types are an array, not a Set: these are literals of one to four types at each
  // call site, and building a Set (hashing every member) for each value decoded was 4% of the
  // registry's CPU when it lists models.
  func decodeValue<T>(
    as type: T.Type,
    accepting types: [PostgresDataType],
    _ parse: (UnsafeRawBufferPointer) -> T?
  ) throws -> T {
    try self.decodeValue(as: type, accepting: { types.contains($0) }, parse)
  }

  func decodeBytea() throws -> [UInt8] {
    try self.decodeValue(as: [UInt8].self, accepting: [.bytea]) { TextFormats.bytea($0) }
  }

  /// A one-dimensional array of non-NULL elements.
  func decodeArray<Element>(
    accepting types: [PostgresDataType],
    as element: Element.Type,
    _ parse: (Substring) -> Element?
  ) throws -> [Element] {
    guard types.contains(self.dataType) else { throw self.typeMismatch([Element].self) }
    let parsed: Result<[String?], TextFormats.ArrayProblem>? = self.withUnsafeBytes { bytes in
      Result { () throws(TextFormats.ArrayProblem) in try TextFormats.arrayElements(bytes) }
    }
    guard let parsed else { throw self.unexpectedNull([Element].self) }
    let name = self.column.name
    switch parsed {
    case .failure(.multidimensional):
      throw PostgresError.decoding("column \"\(name)\" is a multidimensional array; only one dimension decodes into [\(Element.self)]")
    case .failure(.malformed):
      throw PostgresError.decoding("column \"\(name)\" (\(self.dataType)) is not a well-formed array")
    case .success(let texts):
      return try texts.enumerated().map { position, text in
        guard let text else {
          throw PostgresError.decoding("column \"\(name)\" has a NULL at array position \(position + 1); [\(Element.self)] cannot hold NULL")
        }
        guard let value = parse(Substring(text)) else {
          throw PostgresError.decoding("column \"\(name)\" has an element at position \(position + 1) that does not parse as \(Element.self)")
        }
        return value
      }
    }
  }

  private func typeMismatch(_ type: Any.Type) -> PostgresError {
    PostgresError.decoding(
      "column \"\(self.column.name)\" is \(self.dataType), which does not decode as \(type); decode a matching type or cast the column in SQL"
    )
  }

  private func unexpectedNull(_ type: Any.Type) -> PostgresError {
    PostgresError.decoding("column \"\(self.column.name)\" is NULL; decode \(type)? to accept NULL")
  }
}
