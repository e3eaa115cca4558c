import Foundation
@testable import MaaSTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("LoopbackPortReservation")
struct LoopbackPortTests {
  @Test("a reserved port is refused to every other bind, and given to a server that reuses addresses, before, while and after it listens")
  func reservedPortIsKept() throws {
    let reservation = try LoopbackPortReservation()
    #expect(try refusal(ofBindingTo: reservation.port, reusingAddress: false) == EADDRINUSE)

    let server = try bind(port: reservation.port, reusingAddress: true, listening: true)
    #expect(server.failure == nil, "a server setting SO_REUSEADDR binds and listens on it")
    #expect(try refusal(ofBindingTo: reservation.port, reusingAddress: true) == EADDRINUSE, "while it listens")
    server.close()

    #expect(try refusal(ofBindingTo: reservation.port, reusingAddress: false) == EADDRINUSE, "once it stopped")
    let again = try bind(port: reservation.port, reusingAddress: true, listening: true)
    #expect(again.failure == nil, "and it can listen there again")
    again.close()
  }

  @Test("a port whose reservation is gone is free again")
  func releasedPortIsFree() throws {
    let port = try LoopbackPortReservation().port
    #expect(try refusal(ofBindingTo: port, reusingAddress: false) == nil)
  }
}

/// A socket bound (and listening, if asked) on 127.0.0.1:`port`, or the errno that refused it.
struct BoundSocket {
  let descriptor: Int32
  let failure: Int32?

  func close() {
    if self.descriptor >= 0 { _ = Glibc.close(self.descriptor) }
  }
}

/// The errno that refused binding a socket to 127.0.0.1:`port`, nil if it was bound (and closed
/// again at once).
func refusal(ofBindingTo port: Int, reusingAddress: Bool) throws -> Int32? {
  let socket = try bind(port: port, reusingAddress: reusingAddress)
  socket.close()
  return socket.failure
}

func bind(port: Int, reusingAddress: Bool, listening: Bool = false) throws -> BoundSocket {
  let fd: Int32
  do {
    fd = try boundLoopbackSocket(port: port, reusingAddress: reusingAddress).descriptor
  } catch let error as LoopbackPortError {
    return BoundSocket(descriptor: -1, failure: error.code)
  }
  guard listening else { return BoundSocket(descriptor: fd, failure: nil) }
  guard listen(fd, 8) == 0 else {
    let failure = errno
    _ = Glibc.close(fd)
    return BoundSocket(descriptor: -1, failure: failure)
  }
  return BoundSocket(descriptor: fd, failure: nil)
}
