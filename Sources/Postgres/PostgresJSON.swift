public import Foundation

/// A JSON document for a jsonb (or json) column: sent as jsonb, decoded from json or jsonb.
///
/// ```swift
/// try await pool.execute("INSERT INTO models (labels) VALUES ($1)", [try PostgresJSON(encoding: labels)])
/// let labels = try row.decode(PostgresJSON.self, column: "labels").decode([String: String].self)
/// ```
public struct PostgresJSON: Sendable, Hashable, PostgresEncodable, PostgresDecodable {
  /// The document's UTF-8 text.
  public var data: Data

  public init(data: Data) { self.data = data }

  public init(_ text: String) { self.data = Data(text.utf8) }

  /// The document `JSONEncoder` makes of `value`.
  /// - Throws: whatever `encoder` throws for `value`.
  public init<T: Encodable>(encoding value: T, encoder: JSONEncoder = JSONEncoder()) throws {
    self.data = try encoder.encode(value)
  }

  public var text: String { String(decoding: self.data, as: UTF8.self) }

  /// The document decoded into `type`.
  /// - Throws: whatever `decoder` throws (`DecodingError` when the document does not fit).
  public func decode<T: Decodable>(_ type: T.Type = T.self, decoder: JSONDecoder = JSONDecoder()) throws -> T {
    try decoder.decode(type, from: self.data)
  }

  // jsonb's binary form is a version byte (1) and the text, so no escaping or NUL handling.
  public func postgresParameter() throws -> PostgresParameter {
    PostgresParameter(type: .jsonb, format: .binary, bytes: [1] + [UInt8](self.data))
  }

  public static func decode(from cell: PostgresCell) throws -> PostgresJSON {
    try cell.decodeValue(as: PostgresJSON.self, accepting: [.json, .jsonb]) { PostgresJSON(data: Data($0)) }
  }
}
