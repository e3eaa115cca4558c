import Foundation
import GRPCShimTransport
public import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A plain HTTP/1.1 listener that answers `GET /metrics` with a server's metrics, for Prometheus
/// to scrape (`<PREFIX>_METRICS_PORT`).
///
/// Deliberately small: one request per connection (`Connection: close`), requests handled one at
/// a time on a thread of its own (the socket calls block, and must not on Swift's cooperative
/// pool), a request head of at most 8 KiB, and two seconds in all for a client to send it and
/// take the answer (a stop does not wait for them). A scraper asks every few seconds; nothing
/// else calls it. Answers: 200 with the text format for `GET /metrics` (and `HEAD`), 404 for
/// another path, 405 for another method, 400 for anything that is not an HTTP request line.
public final class MetricsEndpoint: Sendable {
  private let host: String
  private let port: Int
  private let render: @Sendable () -> [UInt8]
  private let logger: Logger
  /// The port `run()` bound, for callers of `listeningPort()` that come before it.
  private let bound = Promise<Int>()
  /// Set when `run()` is cancelled; the accept loop polls it.
  private let stopping = Atomic<Bool>(false)

  /// - Parameters:
  ///   - host: The address to bind, as `ServerSettings.host` holds it.
  ///   - port: The TCP port; 0 picks a free one (see `listeningPort()`).
  ///   - render: The body of each answer to `GET /metrics`.
  public init(host: String, port: Int, logger: Logger, render: @escaping @Sendable () -> [UInt8]) {
    self.host = host
    self.port = port
    self.render = render
    self.logger = logger
  }

  /// The bound port once `run()` has bound it; throws what binding threw.
  public func listeningPort() async throws -> Int {
    try await self.bound.value
  }

  /// Binds and serves until the task is cancelled. Runs once.
  /// - Throws: `MetricsEndpointError` when the address cannot be bound.
  public func run() async throws {
    let socket: Int32
    do {
      socket = try Self.listen(host: self.host, port: self.port)
    } catch {
      self.bound.fail(error)
      throw error
    }
    let port = Self.localPort(of: socket)
    self.bound.succeed(port)
    self.logger.info("metrics listening", metadata: ["host": "\(self.host)", "port": "\(port)", "path": "/metrics"])
    await withTaskCancellationHandler {
      await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
        let thread = Thread {
          self.acceptLoop(socket)
          close(socket)
          done.resume()
        }
        thread.name = "metrics-endpoint"
        thread.start()
      }
    } onCancel: {
      self.stopping.store(true, ordering: .relaxed)
    }
  }

  private func acceptLoop(_ socket: Int32) {
    var poller = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
    while !self.stopping.load(ordering: .relaxed) {
      // A tenth of a second: how long a cancelled endpoint may take to notice.
      guard poll(&poller, 1, 100) > 0 else { continue }
      let connection = accept(socket, nil, nil)
      guard connection >= 0 else { continue }
      self.answer(connection)
      close(connection)
    }
  }

  private func answer(_ connection: Int32) {
    // The whole exchange, not each read, is bounded: a client that sends a byte now and then
    // would otherwise hold the only thread (and every scrape behind it) for as long as it likes.
    let deadline = ContinuousClock.now + Self.exchangeTimeLimit
    guard let head = self.readHead(connection, until: deadline) else { return }
    let response = MetricsRequest(head: head).response(render: self.render)
    response.withUnsafeBytes { bytes in
      var offset = 0
      while offset < bytes.count, self.wait(connection, for: POLLOUT, until: deadline) {
        let written = send(connection, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
        if written > 0 {
          offset += written
        } else if written == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          return
        }
      }
    }
  }

  /// How long a client has to send its request and take the answer.
  static let exchangeTimeLimit = Duration.seconds(2)

  /// The request's head (up to its blank line), or what came before the client stopped sending,
  /// the time ran out or the endpoint stopped; nil when nothing came.
  private func readHead(_ connection: Int32, until deadline: ContinuousClock.Instant) -> [UInt8]? {
    var head: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 2048)
    let end: [UInt8] = Array("\r\n\r\n".utf8)
    while head.count < MetricsRequest.maximumHeadBytes, self.wait(connection, for: POLLIN, until: deadline) {
      let received = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
      if received < 0, errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
      if received <= 0 { break }
      head.append(contentsOf: buffer[0..<received])
      if head.firstRange(of: end) != nil { break }
    }
    return head.isEmpty ? nil : head
  }

  /// Whether `connection` became ready for `events` before `deadline`, looking every tenth of a
  /// second whether the endpoint is stopping (a stop does not wait for a slow client).
  private func wait(_ connection: Int32, for events: Int32, until deadline: ContinuousClock.Instant) -> Bool {
    var poller = pollfd(fd: connection, events: Int16(events), revents: 0)
    while !self.stopping.load(ordering: .relaxed) {
      let left = deadline - ContinuousClock.now
      guard left > .zero else { return false }
      let ready = poll(&poller, 1, Int32(min(100, (left / .milliseconds(1)).rounded(.up))))
      if ready > 0 { return true }
      if ready < 0, errno != EINTR { return false }
    }
    return false
  }

  private static func listen(host: String, port: Int) throws -> Int32 {
    var hints = addrinfo()
    hints.ai_flags = AI_PASSIVE
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var found: UnsafeMutablePointer<addrinfo>?
    let status = getaddrinfo(host, String(port), &hints, &found)
    guard status == 0, let address = found else {
      throw MetricsEndpointError("cannot resolve \(host): \(String(cString: gai_strerror(status)))")
    }
    defer { freeaddrinfo(found) }
    let socket = Glibc.socket(address.pointee.ai_family, address.pointee.ai_socktype, address.pointee.ai_protocol)
    guard socket >= 0 else { throw MetricsEndpointError("socket: \(String(cString: strerror(errno)))") }
    var on: Int32 = 1
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
    guard bind(socket, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0, Glibc.listen(socket, 16) == 0 else {
      let reason = String(cString: strerror(errno))
      close(socket)
      throw MetricsEndpointError("cannot listen on \(ListeningAddress(host: host, port: port)): \(reason)")
    }
    return socket
  }

  private static func localPort(of socket: Int32) -> Int {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    withUnsafeMutablePointer(to: &storage) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(socket, $0, &length) }
    }
    let family = Int32(storage.ss_family)
    let networkOrder: UInt16 = withUnsafePointer(to: &storage) { pointer in
      switch family {
      case AF_INET: pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port }
      case AF_INET6: pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_port }
      default: 0
      }
    }
    return Int(UInt16(bigEndian: networkOrder))
  }
}

/// The metrics endpoint could not bind its address.
public struct MetricsEndpointError: Error, CustomStringConvertible {
  public var description: String
  init(_ description: String) { self.description = description }
}

/// One request to the metrics endpoint, and its answer: what `MetricsEndpoint` decides, apart
/// from its sockets.
struct MetricsRequest {
  /// The most of a request head read; longer ones are answered from what was read.
  static let maximumHeadBytes = 8 * 1024
  static let contentType = "text/plain; version=0.0.4; charset=utf-8"

  let method: Substring?
  let path: Substring?

  /// Parses the request line ("GET /metrics HTTP/1.1") of `head`.
  init(head: [UInt8]) {
    let line = String(decoding: head.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
    let parts = line.split(separator: " ", omittingEmptySubsequences: false)
    if parts.count == 3, parts[2].hasPrefix("HTTP/1."), parts[1].hasPrefix("/") {
      (self.method, self.path) = (parts[0], parts[1])
    } else {
      (self.method, self.path) = (nil, nil)
    }
  }

  /// The whole answer: status line, headers and body.
  func response(render: () -> [UInt8]) -> [UInt8] {
    guard let method, let path else { return Self.response(400, "Bad Request", text: "not an HTTP/1.x request line\n") }
    // The query string does not matter (Prometheus sends none; curl users may).
    guard path.split(separator: "?", maxSplits: 1).first == "/metrics" else {
      return Self.response(404, "Not Found", text: "the metrics are at /metrics\n")
    }
    switch method {
    case "GET": return Self.response(200, "OK", contentType: Self.contentType, body: render())
    case "HEAD": return Self.response(200, "OK", contentType: Self.contentType, body: render(), headOnly: true)
    default: return Self.response(405, "Method Not Allowed", text: "only GET and HEAD\n", extra: "Allow: GET, HEAD\r\n")
    }
  }

  private static func response(_ code: Int, _ reason: String, text: String, extra: String = "") -> [UInt8] {
    Self.response(code, reason, contentType: "text/plain; charset=utf-8", body: Array(text.utf8), extra: extra)
  }

  private static func response(
    _ code: Int, _ reason: String, contentType: String, body: [UInt8], extra: String = "", headOnly: Bool = false
  ) -> [UInt8] {
    let head =
      "HTTP/1.1 \(code) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\(extra)Connection: close\r\n\r\n"
    return Array(head.utf8) + (headOnly ? [] : body)
  }
}
