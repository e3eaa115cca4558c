import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A port on 127.0.0.1 that nothing listens on right now: the kernel's pick for port 0. For
/// what must be told its port up front (a Postgres cluster, a process's metrics port, which it
/// does not print); another process could take it first, which on a test machine is rare.
public func freeLoopbackPort() throws -> Int {
  let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
  guard fd >= 0 else { throw LoopbackPortError(call: "socket") }
  defer { close(fd) }
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
  guard bound else { throw LoopbackPortError(call: "bind") }
  return Int(UInt16(bigEndian: address.sin_port))
}

/// Choosing a free port failed: the system call and its reason.
public struct LoopbackPortError: Error, CustomStringConvertible {
  public let description: String

  init(call: String) {
    self.description = "choosing a free port: \(call): \(String(cString: strerror(errno)))"
  }
}
