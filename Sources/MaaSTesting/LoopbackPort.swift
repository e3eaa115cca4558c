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
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw LoopbackPortError(call: "socket") }
    var on: Int32 = 1
    guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
      let error = LoopbackPortError(call: "setsockopt(SO_REUSEADDR)")
      close(fd)
      throw error
    }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
      }
    }
    guard bound else {
      let error = LoopbackPortError(call: "bind")
      close(fd)
      throw error
    }
    self.descriptor = fd
    self.port = Int(UInt16(bigEndian: address.sin_port))
  }

  deinit {
    close(self.descriptor)
  }
}

/// Choosing a free port failed: the system call and its reason.
public struct LoopbackPortError: Error, CustomStringConvertible {
  public let description: String

  init(call: String) {
    self.description = "choosing a free port: \(call): \(String(cString: strerror(errno)))"
  }
}
