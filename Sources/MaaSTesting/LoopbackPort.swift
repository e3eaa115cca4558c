import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A port on 127.0.0.1 that nothing listens on right now: the kernel's pick for port 0. For
/// what must be told its port up front (a process's metrics port, which it does not print);
/// another process could take it first, which on a test machine is rare. A server that is
/// stopped and started again on its port needs a `LoopbackPortReservation` instead.
public func freeLoopbackPort() throws -> Int {
  try LoopbackPortReservation().port
}

/// A port on 127.0.0.1 kept for a server of this process's tests for as long as this object
/// lives, including while the server is stopped.
///
/// Without it, the port of a stopped server is free, and the kernel hands such ports out as the
/// local end of outgoing connections: a CI run (2026-11-24) saw a test cluster fail to start
/// again because one of the thousands of connections the tests make had been given its port.
///
/// The reservation is a socket bound to the port with `SO_REUSEADDR` that never listens. Linux
/// then lets a server that also sets `SO_REUSEADDR` (Postgres and grpc do) bind and listen on
/// the port, while every other bind fails and no outgoing connection is given it.
public final class LoopbackPortReservation: Sendable {
  public let port: Int
  private let descriptor: Int32

  /// - Throws: `LoopbackPortError` when no socket can be made or bound.
  public init() throws {
    (self.descriptor, self.port) = try boundLoopbackSocket(port: 0, reusingAddress: true)
  }

  deinit {
    close(self.descriptor)
  }
}

/// A TCP socket bound to 127.0.0.1:`port` (0: the kernel's pick), with `SO_REUSEADDR` when
/// asked, closed on exec, and the port it was bound to.
///
/// - Throws: `LoopbackPortError`, whose `code` is the errno (`EADDRINUSE` for a port taken).
func boundLoopbackSocket(port: Int, reusingAddress: Bool) throws -> (descriptor: Int32, port: Int) {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
  guard fd >= 0 else { throw LoopbackPortError(call: "socket", code: errno) }
  var on: Int32 = reusingAddress ? 1 : 0
  var address = LoopbackAddress(port: port)
  let bound = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size)) == 0
    && address.withSocketAddress { bind(fd, $0, $1.pointee) == 0 && getsockname(fd, $0, $1) == 0 }
  guard bound else {
    let code = errno
    close(fd)
    throw LoopbackPortError(call: "bind to 127.0.0.1:\(port)", code: code)
  }
  return (fd, address.port)
}

/// 127.0.0.1:`port` as the socket calls take it (bind, connect, getsockname, which fills in the
/// port).
struct LoopbackAddress {
  private var storage = sockaddr_in()

  init(port: Int) {
    self.storage.sin_family = sa_family_t(AF_INET)
    self.storage.sin_port = UInt16(port).bigEndian
    self.storage.sin_addr.s_addr = inet_addr("127.0.0.1")
  }

  var port: Int { Int(UInt16(bigEndian: self.storage.sin_port)) }

  /// Calls `body` with the address as a `sockaddr` and its length.
  mutating func withSocketAddress<Value>(_ body: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Value) -> Value {
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    return withUnsafeMutablePointer(to: &self.storage) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, &length) }
    }
  }
}

/// Choosing or binding a loopback port failed: the system call, and the errno that refused it.
public struct LoopbackPortError: Error, CustomStringConvertible {
  public let code: Int32
  public let description: String

  init(call: String, code: Int32) {
    self.code = code
    self.description = "\(call): \(String(cString: strerror(code)))"
  }
}
