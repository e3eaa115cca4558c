import Glibc
import Testing

@testable import Postgres

/// The TCP options of a connection's socket, as the kernel holds them.
private func socketOption(_ socket: Int32, level: Int32, _ name: Int32) -> Int32 {
  var value: Int32 = -1
  var length = socklen_t(MemoryLayout<Int32>.size)
  guard getsockopt(socket, level, name, &value, &length) == 0 else { return -1 }
  return value
}

@Suite("A connection's TCP settings")
struct ConnectionParametersTests {
  @Test("keepalives and a user timeout are on, so a server gone without a word is found within about half a minute")
  func keepalivesAreOn() async throws {
    try await withPool { pool in
      try await pool.withConnection { connection in
        #expect(socketOption(connection.socket, level: SOL_SOCKET, SO_KEEPALIVE) == 1)
        #expect(socketOption(connection.socket, level: Int32(IPPROTO_TCP), TCP_KEEPIDLE) == 30)
        #expect(socketOption(connection.socket, level: Int32(IPPROTO_TCP), TCP_KEEPINTVL) == 10)
        #expect(socketOption(connection.socket, level: Int32(IPPROTO_TCP), TCP_KEEPCNT) == 3)
        #expect(socketOption(connection.socket, level: Int32(IPPROTO_TCP), TCP_USER_TIMEOUT) == 30_000)
      }
    }
  }

  @Test("the URL may set them otherwise")
  func urlOverrides() async throws {
    let url = try await TestDatabase.shared().ownerURL + "?keepalives_idle=45&tcp_user_timeout=60000"
    try await withPool(url: url) { pool in
      try await pool.withConnection { connection in
        #expect(socketOption(connection.socket, level: Int32(IPPROTO_TCP), TCP_KEEPIDLE) == 45)
        #expect(socketOption(connection.socket, level: Int32(IPPROTO_TCP), TCP_USER_TIMEOUT) == 60_000)
      }
    }
  }
}
