public import Foundation
import MaaSRuntime

/// The Admin contract's field rules, as pure functions returning every problem at once.
public enum Validation {
  public static let pageSizes = 1...1000
  public static let maxIdempotencyKeyBytes = 128
  public static let maxDisplayNameBytes = 256
  public static let maxKeyNameBytes = 128

  /// 1 to 63 characters from [a-z0-9-], starting with a letter (e.g. "acme").
  public static func isTenantName(_ name: String) -> Bool {
    let bytes = Array(name.utf8)
    guard let first = bytes.first, bytes.count <= 63, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) else {
      return false
    }
    return bytes.allSatisfy { byte in
      (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        || byte == UInt8(ascii: "-")
    }
  }

  static func tenantName(_ name: String, field: String = "name") -> [FieldViolation] {
    if name.isEmpty { return [FieldViolation(field, .missing)] }
    return self.isTenantName(name) ? [] : [FieldViolation(field, .badTenantName)]
  }

  static func required(_ value: String, field: String) -> [FieldViolation] {
    value.isEmpty ? [FieldViolation(field, .missing)] : []
  }

  static func maxBytes(_ value: String, _ max: Int, field: String) -> [FieldViolation] {
    value.utf8.count > max ? [FieldViolation(field, .tooLong(maxBytes: max))] : []
  }

  static func pageSize(_ size: Int32) -> [FieldViolation] {
    self.pageSizes.contains(Int(size)) ? [] : [FieldViolation("page_size", .outOfRange(self.pageSizes))]
  }

  /// Optional; at most 128 bytes of printable characters.
  static func idempotencyKey(_ key: String) -> [FieldViolation] {
    if key.utf8.count > self.maxIdempotencyKeyBytes {
      return [FieldViolation("idempotency_key", .tooLong(maxBytes: self.maxIdempotencyKeyBytes))]
    }
    let printable = key.unicodeScalars.allSatisfy { !$0.properties.isWhitespace && !CharacterSet.controlCharacters.contains($0) }
    return printable ? [] : [FieldViolation("idempotency_key", .notPrintable)]
  }

  /// Throws every violation at once, if there are any.
  static func check(_ violations: [FieldViolation]) throws(GatewayError) {
    if !violations.isEmpty { throw .invalidRequest(violations) }
  }
}

/// Where the gateway reads the time: key expiry, JWT `exp`/`nbf`, usage periods. Injected so that
/// tests move it by hand.
public protocol GatewayClock: Sendable {
  func now() -> Date
}

/// The system's wall clock.
public struct SystemGatewayClock: GatewayClock {
  public init() {}
  public func now() -> Date { Date() }
}
