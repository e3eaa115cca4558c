import GRPCCore
import GRPCShimTransport
import Foundation
import Logging
import MaaSRuntime

/// How the gateway calls the services behind it (registry, quota): every call is bounded, by
/// the caller's deadline when it sent one, else by `defaultTimeout`, and never by more than
/// `maxTimeout`, so that a service that does not answer never holds a gateway call open (a
/// caller's deadline of a day would otherwise keep one, and its stream, for a day).
public struct UpstreamPolicy: Sendable, Hashable {
  /// The bound of a forwarded call whose caller sent no deadline.
  public var defaultTimeout: Duration
  /// The longest a forwarded call may take, whatever deadline its caller sent.
  public var maxTimeout: Duration

  /// - Parameter maxTimeout: raised to `defaultTimeout` when below it.
  public init(defaultTimeout: Duration = .seconds(10), maxTimeout: Duration = .seconds(60)) {
    self.defaultTimeout = defaultTimeout
    self.maxTimeout = max(maxTimeout, defaultTimeout)
  }

  /// Runs one call to `service` with the remaining time of `deadline` as its timeout, which
  /// `body` sends as the call's metadata (`CallTimeout`, enforced by grpc C++).
  ///
  /// Errors: the service's own status passes through with its code and message (its cause and
  /// anything else stays here), except UNAVAILABLE, whose message is the gateway's own: when the
  /// service cannot be reached, the transport's message names internal addresses, which stay in
  /// the log. DEADLINE_EXCEEDED when the caller's deadline has passed before the call could
  /// start; UNAVAILABLE also when the service did not answer within the gateway's own bound
  /// (`defaultTimeout` of a call without a deadline, `maxTimeout` of one whose deadline is later).
  func call<Response: Sendable>(
    _ service: String,
    deadline: ContinuousClock.Instant?,
    logger: Logger,
    _ body: (CallTimeout) async throws -> Response
  ) async throws -> Response {
    let bound: Duration
    /// The gateway's bound, not the caller's deadline, ends the call when it runs out.
    let ownBound: Bool
    let started = ContinuousClock.now
    if let deadline {
      let remaining = started.duration(to: deadline)
      guard remaining > .zero else {
        throw RPCError(code: .deadlineExceeded, message: "the call's deadline passed before the \(service) was asked")
      }
      bound = min(remaining, self.maxTimeout)
      ownBound = remaining > self.maxTimeout
    } else {
      bound = self.defaultTimeout
      ownBound = true
    }
    do {
      return try await body(CallTimeout(bound))
    } catch let error as RPCError {
      if error.code == .deadlineExceeded, ownBound, started.duration(to: .now) >= bound {
        logger.warning("upstream call timed out", metadata: ["service": "\(service)", "bound": "\(bound)"])
        throw RPCError(code: .unavailable, message: "the \(service) did not answer within \(bound); retry later")
      }
      if error.code == .unavailable {
        logger.warning("upstream unavailable", metadata: ["service": "\(service)", "error": "\(error.message)"])
        throw RPCError(code: .unavailable, message: "the \(service) is unavailable; retry later (with the same idempotency key)")
      }
      throw RPCError(code: error.code, message: error.message, metadata: error.metadata)
    } catch is CancellationError {
      throw RPCError(code: .cancelled, message: "the call was cancelled")
    } catch {
      logger.warning("upstream call failed", metadata: ["service": "\(service)", "error": "\(error)"])
      throw RPCError(code: .unavailable, message: "the \(service) is unavailable; retry later (with the same idempotency key)")
    }
  }
}

/// Idempotency keys of forwarded calls.
enum ForwardedKey {
  /// The caller's key when it sent one (a retry then replays the first answer), else a fresh
  /// one, so that the internal service, which requires a key, treats the call as new.
  static func forMutation(_ requestKey: String) -> String {
    requestKey.isEmpty ? UUID().uuidString : requestKey
  }

  /// The key of the API-call Consume that admits a call. With the caller's idempotency key, a
  /// retry is recognised and not charged again (its first admission is replayed, and so is a
  /// refusal); without one, every call is charged. The key is derived so that it fits quota's
  /// 128 bytes whatever the caller's length, and so that one key sent to two methods counts as
  /// two calls.
  static func forConsume(method: String, requestKey: String?) -> String {
    guard let requestKey, !requestKey.isEmpty else { return UUID().uuidString }
    return "gw:" + Digest256.hex(Digest256.hash("\(method)\u{0}\(requestKey)".utf8))
  }
}
