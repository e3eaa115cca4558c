public import GRPCCore

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

/// A call's time limit in the form this transport carries it: the grpc-timeout header in the
/// request metadata, which `ShimClientTransport` hands to grpc C++ when it creates the call.
/// grpc C++ then ends the call with DEADLINE_EXCEEDED at the deadline, and the server sees it.
///
/// ```swift
/// try await quota.consume(request, metadata: CallTimeout(.seconds(5)).metadata)
/// ```
///
/// Calls on hot paths use this rather than `CallOptions.timeout`, which GRPCCore enforces on its
/// own, on top of grpc's deadline: a task group with a timer task beside the call's, about 40 µs
/// of CPU per call by `make bench-gateway`. Only this transport acts on the header at the
/// client; over another one the server would still see the deadline, the client would not
/// enforce it.
public struct CallTimeout: Sendable {
  /// The request metadata that carries the limit.
  public let metadata: Metadata

  public init(_ timeout: Duration) {
    var metadata = Metadata()
    metadata.addString(GRPCTimeout.header(nanoseconds: max(timeout, .zero).nanoseconds), forKey: GRPCTimeout.key)
    self.metadata = metadata
  }

  /// The limit a call's metadata carries (as a server's handler sees it), nil without one.
  public static func duration(in metadata: Metadata) -> Duration? {
    metadata[stringValues: GRPCTimeout.key].first(where: { _ in true }).flatMap(Self.duration(parsing:))
  }

  /// A grpc-timeout value (at most eight digits and a unit: H, M, S, m, u, n), nil if malformed.
  public static func duration(parsing header: String) -> Duration? {
    GRPCTimeout.nanoseconds(parsing: header).map { .nanoseconds($0) }
  }
}
