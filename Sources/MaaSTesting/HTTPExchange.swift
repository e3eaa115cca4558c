import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One HTTP answer as a test reads it.
public struct HTTPAnswer: Sendable {
  /// The status code of the status line.
  public var status: Int
  /// Header names lowercased.
  public var headers: [String: String]
  public var body: String
}

/// Why an HTTP exchange failed: the connection was refused, or the answer was not HTTP.
public struct HTTPExchangeError: Error, CustomStringConvertible {
  public var description: String
}

/// Sends `request` as it is (so tests can send what no HTTP client would) to 127.0.0.1:`port`
/// over a new connection and reads the answer until the server closes it; five seconds at most
/// for each read. Blocking: for tests only.
public func exchangeHTTP(port: Int, _ request: String) throws -> HTTPAnswer {
  let socket = try connectToLoopback(port: port)
  defer { close(socket) }
  var timeout = timeval(tv_sec: 5, tv_usec: 0)
  setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
  let bytes = Array(request.utf8)
  guard send(socket, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else {
    throw HTTPExchangeError(description: "send: \(String(cString: strerror(errno)))")
  }
  var answer: [UInt8] = []
  var buffer = [UInt8](repeating: 0, count: 16 * 1024)
  while true {
    let received = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
    if received <= 0 { break }
    answer.append(contentsOf: buffer[0..<received])
  }
  let text = String(decoding: answer, as: UTF8.self)
  guard let split = text.range(of: "\r\n\r\n") else { throw HTTPExchangeError(description: "not an HTTP answer: \(text)") }
  let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
  let statusLine = lines[0].split(separator: " ")
  guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
    throw HTTPExchangeError(description: "not an HTTP status line: \(lines[0])")
  }
  var headers: [String: String] = [:]
  for line in lines.dropFirst() {
    guard let colon = line.firstIndex(of: ":") else { continue }
    headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
  }
  return HTTPAnswer(status: status, headers: headers, body: String(text[split.upperBound...]))
}

/// A TCP connection to 127.0.0.1:`port`; the caller closes it.
public func connectToLoopback(port: Int) throws -> Int32 {
  let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  guard socket >= 0 else { throw HTTPExchangeError(description: "socket: \(String(cString: strerror(errno)))") }
  var address = LoopbackAddress(port: port)
  let connected = address.withSocketAddress { connect(socket, $0, $1.pointee) }
  guard connected == 0 else {
    let reason = String(cString: strerror(errno))
    close(socket)
    throw HTTPExchangeError(description: "connect to 127.0.0.1:\(port): \(reason)")
  }
  return socket
}

/// Scrapes `GET /metrics` on 127.0.0.1:`port` and returns its samples by series, as written
/// (`name{label="value",...}`), without HELP and TYPE lines.
public func scrapeMetrics(port: Int) throws -> [String: Double] {
  let answer = try exchangeHTTP(port: port, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
  guard answer.status == 200 else { throw HTTPExchangeError(description: "GET /metrics answered \(answer.status)") }
  return metricSamples(answer.body)
}

/// The samples of metrics in Prometheus's text format (`ServerMetrics.render()`'s, or a scrape's
/// body) by series, as written (`name{label="value",...}`), without HELP and TYPE lines.
public func metricSamples(_ text: some StringProtocol) -> [String: Double] {
  var samples: [String: Double] = [:]
  for line in text.split(separator: "\n") where !line.hasPrefix("#") {
    guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
    samples[String(line[..<space])] = value
  }
  return samples
}

/// The samples of metrics rendered as bytes (`ServerMetrics.render()`).
public func metricSamples(_ rendered: [UInt8]) -> [String: Double] {
  metricSamples(String(decoding: rendered, as: UTF8.self))
}
