import MaaSTesting
import Postgres
import Synchronization
import Testing

@Suite("A share of the pool's connections")
struct ConnectionShareTests {
  /// Bodies running now, and the most seen at once.
  final class Occupancy: Sendable {
    private let counts = Mutex((now: 0, most: 0))
    var most: Int { counts.withLock { $0.most } }
    func enter() { counts.withLock { $0.now += 1; $0.most = max($0.most, $0.now) } }
    func leave() { counts.withLock { $0.now -= 1 } }
  }

  @Test("at most its limit of bodies run at once, and the others run in the order they came as turns free")
  func limitAndOrder() async throws {
    let share = ConnectionShare(limit: 2, timeout: .seconds(600))
    let occupancy = Occupancy()
    let order = Locked<[Int]>([])
    let release = Signal()
    var bodies: [Task<Void, any Error>] = []
    for number in 1...6 {
      bodies.append(Task {
        try await share.run {
          occupancy.enter()
          defer { occupancy.leave() }
          order.withLock { $0.append(number) }
          await release.wait()
        }
      })
      // One at a time, so the order they came in is known.
      try await waitUntil("body \(number) to run or wait") { share.running + share.waiting == number }
    }
    #expect(share.running == 2 && share.waiting == 4)
    release.fire()
    for body in bodies { try await body.value }
    #expect(occupancy.most == 2)
    #expect(order.value == [1, 2, 3, 4, 5, 6])
    #expect(share.running == 0 && share.waiting == 0)
  }

  @Test("a body whose turn does not come within the timeout gets poolExhausted saying why, and the share stays usable")
  func timeout() async throws {
    let share = ConnectionShare(limit: 1, timeout: .milliseconds(100))
    let release = Signal()
    let holder = Task { try await share.run { await release.wait() } }
    try await waitUntil("the holder to run") { share.running == 1 }
    let error = await #expect(throws: PostgresError.self) { try await share.run { 1 } }
    #expect(error?.kind == .poolExhausted)
    #expect(error?.message.contains("waits on another service") == true, "\(String(describing: error))")
    release.fire()
    try await holder.value
    #expect(try await share.run { 7 } == 7)
    #expect(share.running == 0)
  }

  @Test("a body cancelled while it waits gets cancelled, and its turn passes to the next")
  func cancelledWhileWaiting() async throws {
    let share = ConnectionShare(limit: 1, timeout: .seconds(600))
    let release = Signal()
    let holder = Task { try await share.run { await release.wait() } }
    try await waitUntil("the holder to run") { share.running == 1 }
    let leaving = Task { try await share.run { "ran" } }
    try await waitUntil("the first to wait") { share.waiting == 1 }
    let staying = Task { try await share.run { "ran" } }
    try await waitUntil("the second to wait") { share.waiting == 2 }
    leaving.cancel()
    let error = await #expect(throws: PostgresError.self) { try await leaving.value }
    #expect(error?.kind == .cancelled)
    release.fire()
    try await holder.value
    #expect(try await staying.value == "ran")
    #expect(share.running == 0 && share.waiting == 0)
  }

  @Test("a share of a pool leaves the reserved connections out, and always has one")
  func ofAPool() async throws {
    try await withPool({ $0.maxConnections = 10 }) { pool in
      #expect(ConnectionShare(of: pool, reserving: 2).limit == 8)
      #expect(ConnectionShare(of: pool, reserving: 10).limit == 1)
      #expect(ConnectionShare(of: pool, reserving: 2).timeout == pool.configuration.acquireTimeout)
    }
  }
}
