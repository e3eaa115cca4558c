/// The "grpc-timeout" header (gRPC over HTTP/2: at most eight digits and a unit). GRPCCore's
/// client writes it into the request metadata and its server reads it from there, while grpc C++
/// carries deadlines itself; the transport converts between the two at the edge.
enum GRPCTimeout {
  static let key = "grpc-timeout"

  /// Parses a header value into nanoseconds, or nil if it is malformed.
  static func nanoseconds(parsing value: String) -> Int64? {
    guard let unit = value.last, value.count >= 2, value.count <= 9 else { return nil }
    guard let amount = Int64(value.dropLast()), amount >= 0 else { return nil }
    let scale: Int64
    switch unit {
    case "n": scale = 1
    case "u": scale = 1_000
    case "m": scale = 1_000_000
    case "S": scale = 1_000_000_000
    case "M": scale = 60_000_000_000
    case "H": scale = 3_600_000_000_000
    default: return nil
    }
    let (result, overflow) = amount.multipliedReportingOverflow(by: scale)
    return overflow ? Int64.max : result
  }

  /// Formats nanoseconds in the finest unit that fits eight digits.
  static func header(nanoseconds: Int64) -> String {
    let units: [(Int64, Character)] = [
      (1, "n"), (1_000, "u"), (1_000_000, "m"), (1_000_000_000, "S"), (60_000_000_000, "M"),
      (3_600_000_000_000, "H"),
    ]
    for (scale, unit) in units {
      // Round up so that a deadline is never reported earlier than it is.
      let amount = (nanoseconds + scale - 1) / scale
      if amount <= 99_999_999 { return "\(amount)\(unit)" }
    }
    return "99999999H"
  }
}
