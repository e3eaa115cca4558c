import Foundation
import MaaSTesting
import Testing
@testable import Registry

@Suite("The registry with a quota service that stops answering")
struct SlowQuotaTests {
  @Test("mutations waiting on quota hold at most all but two of the pool's connections, so reads still answer; once quota answers, every mutation completes")
  func readsOutliveAHungQuota() async throws {
    try await withStore("registry_slow_quota") { f in
      _ = try await f.store.createModel(try createModel("acme", "existing"))
      let limit = f.store.mutations.limit
      #expect(limit == f.app.configuration.maxConnections - 2)
      f.quota.holdReserves()
      // Whatever happens below: the pool cannot close while calls hold its connections.
      defer { f.quota.answerReserves() }
      // More CreateModels than the pool has connections, all stuck at quota.
      let creates = (0..<f.app.configuration.maxConnections).map { index in
        Task { try await f.store.createModel(try createModel("acme", "stuck-\(index)")) }
      }
      try await waitUntil("the share to fill with calls held at quota") {
        f.quota.heldReserveCount == limit && f.store.mutations.waiting == creates.count - limit
      }
      // Reads take the connections left; without the share they would wait out the acquire timeout.
      let names = try await f.store.listModels(try listModels("acme")).items.map(\.name)
      #expect(names == ["existing"])
      f.quota.answerReserves()
      for create in creates { _ = try await create.value }
      #expect(try await f.store.listModels(try listModels("acme")).items.count == creates.count + 1)
    }
  }
}
