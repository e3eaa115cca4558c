import Foundation
import Postgres
import Quota
import Testing

@Suite("The quota store on a real Postgres, with an injected clock", .serialized, .timeLimit(.minutes(5)))
struct QuotaStoreTests {
  @Test("a tenant the service has never seen is NOT_FOUND until SetLimits registers it")
  func unknownTenant() async throws {
    try await withStore("quota_unknown_tenant") { f in
      #expect(await quotaError { try await f.usage("acme") } == .tenantNotFound("acme"))
      #expect(await quotaError { try await f.store.consume(try consume("acme")) } == .tenantNotFound("acme"))
      #expect(try await f.count("idempotency", tenant: "acme") == 0)
      let snapshot = try await f.store.setLimits(try setLimits("acme", [.apiCallsPerDay: .limited(5)]))
      #expect(snapshot[.apiCallsPerDay].limit == .limited(5))
      #expect(snapshot[.apiCallsPerDay].isDefault == false)
      #expect(snapshot[.models].limit == .limited(100))
      #expect(snapshot[.models].isDefault)
      #expect(try await f.store.consume(try consume("acme")).used == 1)
    }
  }

  @Test("Consume admits up to the limit, then refuses with the limit, the usage and the reset time")
  func consumeUpToTheLimit() async throws {
    try await withStore("quota_consume_limit") { f in
      _ = try await f.store.setLimits(try setLimits("acme", [.apiCallsPerDay: .limited(3)]))
      #expect(try await f.store.consume(try consume("acme", 2)).used == 2)
      let refusal = await quotaError { try await f.store.consume(try consume("acme", 2)) }
      #expect(refusal == .exhausted(resource: .apiCallsPerDay, limit: 3, used: 2, requested: 2, resetsAt: utc(2026, 11, 23)))
      #expect(refusal?.description == "api_calls_per_day: limit 3, used 2, asked 2, resets 2026-11-23T00:00:00Z")
      let last = try await f.store.consume(try consume("acme", 1))
      #expect(last.used == 3)
      #expect(last.windowResetTime == utc(2026, 11, 23))
      #expect(try await f.usage("acme")[.apiCallsPerDay].used == 3)
      #expect(try await f.ledgerSum("acme", .apiCallsPerDay) == 3)
    }
  }

  @Test("the daily window resets at 00:00 UTC and each day's ledger adds up to its counter")
  func dailyReset() async throws {
    try await withStore("quota_daily_reset", at: utc(2026, 11, 22, 23, 59, 59)) { f in
      _ = try await f.store.setLimits(try setLimits("acme", [.apiCallsPerDay: .limited(2)]))
      _ = try await f.store.consume(try consume("acme", 2))
      #expect(await quotaError { try await f.store.consume(try consume("acme")) }?.category == .resourceExhausted)
      f.clock.set(utc(2026, 11, 23))
      let first = try await f.store.consume(try consume("acme"))
      #expect(first.used == 1)
      #expect(first.windowResetTime == utc(2026, 11, 24))
      #expect(try await f.usage("acme")[.apiCallsPerDay].used == 1)
      #expect(try await f.ledgerSum("acme", .apiCallsPerDay, windowStart: utc(2026, 11, 22)) == 2)
      #expect(try await f.ledgerSum("acme", .apiCallsPerDay, windowStart: utc(2026, 11, 23)) == 1)
    }
  }

  @Test("a retried Consume returns its first answer, refusal included, and is counted once")
  func idempotentConsume() async throws {
    try await withStore("quota_idempotent_consume", at: utc(2026, 11, 22, 23)) { f in
      _ = try await f.store.setLimits(try setLimits("acme", [.apiCallsPerDay: .limited(2)]))
      let first = try await f.store.consume(try consume("acme", key: "call-1"))
      #expect(try await f.store.consume(try consume("acme", key: "call-1")) == first)
      _ = try await f.store.consume(try consume("acme", key: "call-2"))
      let refused = await quotaError { try await f.store.consume(try consume("acme", key: "call-3")) }
      #expect(refused != nil)
      // The next day there is room again, yet the retried call answers what it answered first.
      f.clock.set(utc(2026, 11, 23, 1))
      #expect(await quotaError { try await f.store.consume(try consume("acme", key: "call-3")) } == refused)
      #expect(try await f.usage("acme")[.apiCallsPerDay].used == 0)
      #expect(try await f.ledgerSum("acme", .apiCallsPerDay) == 2)
    }
  }

  @Test("the same key with a different request is INVALID_ARGUMENT idempotency_key and changes nothing")
  func keyReusedForAnotherRequest() async throws {
    try await withStore("quota_key_reuse") { f in
      _ = try await f.store.setLimits(try setLimits("acme"))
      _ = try await f.store.consume(try consume("acme", 1, key: "k"))
      let error = await quotaError { try await f.store.consume(try consume("acme", 5, key: "k")) }
      #expect(error?.category == .invalidArgument(field: "idempotency_key"))
      // Keys are scoped to the method: Reserve may use the same key.
      _ = try await f.store.reserve(try reserve("acme", 1, key: "k"))
      #expect(try await f.ledgerSum("acme", .apiCallsPerDay) == 1)
    }
  }

  @Test("calls of one tenant in the same batch are admitted in order and never overshoot")
  func concurrentConsumeInOneProcess() async throws {
    try await withStore("quota_consume_batch") { f in
      _ = try await f.store.setLimits(try setLimits("acme", [.apiCallsPerDay: .limited(300)]))
      let admitted = try await withThrowingTaskGroup(of: Int64.self) { group in
        for index in 0..<500 {
          group.addTask {
            do {
              return try await f.store.consume(try consume("acme", Int64(index % 3 + 1))).used > 0 ? Int64(index % 3 + 1) : 0
            } catch is QuotaError {
              return 0
            }
          }
        }
        return try await group.reduce(0, +)
      }
      let used = try await f.usage("acme")[.apiCallsPerDay].used
      #expect(used == admitted)
      #expect(used <= 300)
      #expect(used >= 298)
      #expect(try await f.ledgerSum("acme", .apiCallsPerDay) == used)
    }
  }

  @Test("a reservation holds quota until it lapses, so a crashed caller leaks nothing")
  func reservationExpiry() async throws {
    try await withStore("quota_reservation_expiry") { f in
      _ = try await f.store.setLimits(try setLimits("acme", [.models: .limited(100)]))
      let held = try await f.store.reserve(try reserve("acme", 60, ttl: .seconds(60)))
      #expect(held.state == .held)
      #expect(held.expiresAt == f.clock.now().addingTimeInterval(60))
      #expect(await quotaError { try await f.store.reserve(try reserve("acme", 50)) } ==
        .exhausted(resource: .models, limit: 100, used: 60, requested: 50, resetsAt: nil))
      #expect(try await f.usage("acme")[.models].reserved == 60)
      f.clock.advance(by: 60)
      // Lapsed: no longer counted, even before anything expires it in storage.
      #expect(try await f.usage("acme")[.models].reserved == 0)
      let second = try await f.store.reserve(try reserve("acme", 50))
      #expect(second.state == .held)
      #expect(await quotaError { try await f.store.commit(try commit("acme", held.id)) } == .reservationNotHeld(.expired))
      let after = try await f.usage("acme")[.models]
      #expect(after.reserved == 50)
      #expect(after.used == 0)
    }
  }

  @Test("commit turns a hold into usage, release gives it back, and the ledger follows both")
  func commitAndRelease() async throws {
    try await withStore("quota_commit_release") { f in
      _ = try await f.store.setLimits(try setLimits("acme"))
      let held = try await f.store.reserve(try reserve("acme", 7, of: .storageBytes))
      let committed = try await f.store.commit(try commit("acme", held.id, key: "c1"))
      #expect(committed.state == .committed)
      #expect(committed.expiresAt == nil)
      // Committing again returns it unchanged, and a retry returns the first answer.
      #expect(try await f.store.commit(try commit("acme", held.id)).state == .committed)
      #expect(try await f.store.commit(try commit("acme", held.id, key: "c1")) == committed)
      var usage = try await f.usage("acme")[.storageBytes]
      #expect((usage.used, usage.reserved) == (7, 0))
      #expect(try await f.ledgerSum("acme", .storageBytes) == 7)

      let released = try await f.store.release(try release("acme", held.id))
      #expect(released.state == .released)
      #expect(try await f.store.release(try release("acme", held.id)).state == .released)
      #expect(await quotaError { try await f.store.commit(try commit("acme", held.id)) } == .reservationNotHeld(.released))
      usage = try await f.usage("acme")[.storageBytes]
      #expect((usage.used, usage.reserved) == (0, 0))
      #expect(try await f.ledgerSum("acme", .storageBytes) == 0)
    }
  }

  @Test("Reserve with commit counts as used at once, never lapses, replays its answer, and Release gives it back")
  func reserveCommitted() async throws {
    try await withStore("quota_reserve_committed") { f in
      _ = try await f.store.setLimits(try setLimits("acme", [.concurrentGPUs: .limited(8)]))
      let taken = try await f.store.reserve(try reserve("acme", 6, of: .concurrentGPUs, key: "k1", committing: true))
      #expect(taken.state == .committed)
      #expect(taken.expiresAt == nil)
      var usage = try await f.usage("acme")[.concurrentGPUs]
      #expect((usage.used, usage.reserved) == (6, 0))
      #expect(try await f.ledgerSum("acme", .concurrentGPUs) == 6)

      // The same key replays; with commit left out it is another request.
      #expect(try await f.store.reserve(try reserve("acme", 6, of: .concurrentGPUs, key: "k1", committing: true)) == taken)
      let reused = await quotaError { try await f.store.reserve(try reserve("acme", 6, of: .concurrentGPUs, key: "k1")) }
      #expect(reused?.category == .invalidArgument(field: "idempotency_key"))
      // It counts against the limit like any usage, and does not lapse.
      #expect(await quotaError { try await f.store.reserve(try reserve("acme", 3, of: .concurrentGPUs, committing: true)) } ==
        .exhausted(resource: .concurrentGPUs, limit: 8, used: 6, requested: 3, resetsAt: nil))
      f.clock.advance(by: 48 * 3600)
      #expect(try await f.usage("acme")[.concurrentGPUs].used == 6)

      #expect(try await f.store.release(try release("acme", taken.id)).state == .released)
      usage = try await f.usage("acme")[.concurrentGPUs]
      #expect((usage.used, usage.reserved) == (0, 0))
      #expect(try await f.ledgerSum("acme", .concurrentGPUs) == 0)
    }
  }

  @Test("Reserve, Commit and Release each take two round trips to the database, refusals and replays included")
  func twoRoundTripsEach() async throws {
    try await withStore("quota_round_trips") { f in
      _ = try await f.store.setLimits(try setLimits("acme", [.models: .limited(10)]))
      // The first of each is also the first use of its statements: preparing them rides along.
      let (held, reserving) = try await f.roundTrips { try await f.store.reserve(try reserve("acme", 4, ttl: .seconds(60), key: "r")) }
      #expect(reserving == 2)
      let (replayed, replaying) = try await f.roundTrips { try await f.store.reserve(try reserve("acme", 4, ttl: .seconds(60), key: "r")) }
      #expect(replayed == held)
      #expect(replaying == 2)
      let (refusal, refusing) = await f.roundTrips { await quotaError { try await f.store.reserve(try reserve("acme", 7)) } }
      #expect(refusal?.category == .resourceExhausted)
      #expect(refusing == 2)

      let (committed, committing) = try await f.roundTrips { try await f.store.commit(try commit("acme", held.id, key: "c")) }
      #expect(committed.state == .committed)
      #expect(committing == 2)
      let (_, recommitting) = try await f.roundTrips { try await f.store.commit(try commit("acme", held.id, key: "c")) }
      #expect(recommitting == 2)
      let (released, releasing) = try await f.roundTrips { try await f.store.release(try release("acme", held.id)) }
      #expect(released.state == .released)
      #expect(releasing == 2)
      let (_, rereleasing) = try await f.roundTrips { try await f.store.release(try release("acme", held.id)) }
      #expect(rereleasing == 2)
      let (tooLate, committingReleased) = await f.roundTrips { await quotaError { try await f.store.commit(try commit("acme", held.id)) } }
      #expect(tooLate == .reservationNotHeld(.released))
      #expect(committingReleased == 2)

      // A lapsed hold: Commit expires it and is refused, still in two.
      let lapsing = try await f.store.reserve(try reserve("acme", 2, ttl: .seconds(60)))
      f.clock.advance(by: 60)
      let (lapsed, committingLapsed) = await f.roundTrips { await quotaError { try await f.store.commit(try commit("acme", lapsing.id)) } }
      #expect(lapsed == .reservationNotHeld(.expired))
      #expect(committingLapsed == 2)
      // An id that is not a UUID names nothing, and costs no round trip at all.
      let (unknown, looking) = await f.roundTrips { await quotaError { try await f.store.release(try release("acme", "not-a-uuid")) } }
      #expect(unknown == .reservationNotFound("not-a-uuid"))
      #expect(looking == 0)
      let usage = try await f.usage("acme")[.models]
      #expect((usage.used, usage.reserved) == (0, 0))
    }
  }

  @Test("Commit and Release racing on the same reservations, with Reserves alongside, leave the counter equal to what the reservations hold")
  func racingCommitsAndReleases() async throws {
    try await withStore("quota_commit_release_race") { f in
      _ = try await f.store.setLimits(try setLimits("acme", [.models: .limited(1_000)]))
      var ids: [String] = []
      for _ in 0..<40 { ids.append(try await f.store.reserve(try reserve("acme", 3)).id) }
      // Every call of the tenant's resource queues on one counter row, so most of them wait for
      // it while another changes the reservation they are about to read.
      try await withThrowingTaskGroup(of: Void.self) { group in
        for id in ids {
          group.addTask {
            do { _ = try await f.store.commit(try commit("acme", id)) } catch QuotaError.reservationNotHeld {}
          }
          group.addTask { _ = try await f.store.release(try release("acme", id)) }
          group.addTask { _ = try await f.store.reserve(try reserve("acme", 2)) }
        }
        try await group.waitForAll()
      }
      let counter = try await f.stockCounter("acme", .models)
      #expect(counter.used == counter.committedSum)
      #expect(counter.reserved == counter.heldSum)
      // Each raced reservation ended released, whichever call came first; the new ones are held.
      #expect((counter.used, counter.reserved) == (0, 80))
      #expect(try await f.ledgerSum("acme", .models) == 0)
    }
  }

  @Test("another tenant's reservation answers NOT_FOUND, like one that does not exist")
  func otherTenantsReservation() async throws {
    try await withStore("quota_other_tenant") { f in
      _ = try await f.store.setLimits(try setLimits("acme"))
      _ = try await f.store.setLimits(try setLimits("globex"))
      let held = try await f.store.reserve(try reserve("acme", 1))
      #expect(await quotaError { try await f.store.commit(try commit("globex", held.id)) } == .reservationNotFound(held.id))
      #expect(await quotaError { try await f.store.release(try release("globex", held.id)) } == .reservationNotFound(held.id))
      #expect(await quotaError { try await f.store.release(try release("acme", "not-a-uuid")) } == .reservationNotFound("not-a-uuid"))
      #expect(try await f.usage("acme")[.models].reserved == 1)
    }
  }

  @Test("RecordUsage counts in the window of its usage time, is never refused over the limit, and counts a retry once")
  func recordUsage() async throws {
    try await withStore("quota_record_usage", at: utc(2026, 12, 1, 0, 10)) { f in
      _ = try await f.store.setLimits(try setLimits("acme", [.gpuSeconds: .limited(100)]))
      let now = f.clock.now()
      // Reported late: it belongs to November.
      let november = try await f.store.recordUsage(try record("acme", 150, at: utc(2026, 11, 30, 23, 59), now: now, key: "r1"))
      #expect(november.windowUsed == 150)
      #expect(try await f.store.recordUsage(try record("acme", 150, at: utc(2026, 11, 30, 23, 59), now: now, key: "r1")) == november)
      let december = try await f.store.recordUsage(try record("acme", 30, at: now, now: now, key: "r2"))
      #expect(december.windowUsed == 30)
      #expect(try await f.usage("acme")[.gpuSeconds].used == 30)
      #expect(try await f.ledgerSum("acme", .gpuSeconds, windowStart: utc(2026, 11, 1)) == 150)
      #expect(try await f.count("ledger", tenant: "acme") == 2)
    }
  }

  @Test("a usage report bills flow resources by quantity and stock resources by the time they were held")
  func usageReport() async throws {
    let prices = try PriceTable.parse([.gpuSeconds: "0.000694", .models: "0.01", .apiCallsPerDay: "0.0001"]).get()
    try await withStore("quota_usage_report", at: utc(2026, 11, 22, 10), policy: QuotaPolicy(prices: prices)) { f in
      _ = try await f.store.setLimits(try setLimits("acme"))
      let held = try await f.store.reserve(try reserve("acme", 2))
      _ = try await f.store.commit(try commit("acme", held.id))
      _ = try await f.store.recordUsage(try record("acme", 3_600, at: f.clock.now(), now: f.clock.now()))
      for _ in 0..<5 { _ = try await f.store.consume(try consume("acme")) }
      f.clock.advance(by: 3 * 3600)
      _ = try await f.store.release(try release("acme", held.id))
      f.clock.advance(by: 3600)

      let report = try await f.store.usageReport(
        try UsageReportQuery.validate(tenantID: "acme", periodStart: utc(2026, 11, 22), periodEnd: utc(2026, 11, 23)).get())
      let lines = Dictionary(uniqueKeysWithValues: report.lines.map { ($0.billing.resource, $0) })
      #expect(report.lines.map(\.billing.resource) == QuotaResource.allCases)
      #expect(lines[.models]?.billing.quantity == 6)  // 2 models for 3 hours
      #expect(lines[.models]?.used == 0)  // released before the end
      #expect(report.statement.text(lines[.models]!.billing.amount) == "0.06")
      #expect(lines[.gpuSeconds]?.billing.quantity == 3_600)
      #expect(report.statement.text(lines[.gpuSeconds]!.billing.amount) == "2.50")  // 2.4984
      #expect(lines[.apiCallsPerDay]?.billing.quantity == 5)
      #expect(report.statement.text(lines[.apiCallsPerDay]!.billing.amount) == "0.00")  // 0.0005
      #expect(report.statement.text(report.statement.total) == "2.56")
    }
  }

  @Test("a limit lowered below usage takes nothing back; unlimited admits anything; a reset restores the default")
  func changingLimits() async throws {
    try await withStore("quota_changing_limits") { f in
      _ = try await f.store.setLimits(try setLimits("acme"))
      _ = try await f.store.consume(try consume("acme", 10))
      var snapshot = try await f.store.setLimits(try setLimits("acme", [.apiCallsPerDay: .limited(5)]))
      #expect(snapshot[.apiCallsPerDay].used == 10)
      #expect(await quotaError { try await f.store.consume(try consume("acme")) }?.category == .resourceExhausted)
      _ = try await f.store.setLimits(try setLimits("acme", [.apiCallsPerDay: .unlimited]))
      #expect(try await f.store.consume(try consume("acme", 1_000_000)).limit == .unlimited)
      snapshot = try await f.store.setLimits(try setLimits("acme", reset: [.apiCallsPerDay]))
      #expect(snapshot[.apiCallsPerDay].limit == .limited(10_000))
      #expect(snapshot[.apiCallsPerDay].isDefault)
    }
  }

  @Test("the sweep forgets answers past their retention, for every tenant, and keeps younger ones")
  func idempotencySweep() async throws {
    try await withStore("quota_sweep", at: Date().addingTimeInterval(-72 * 3600)) { f in
      for tenant in ["acme", "globex"] {
        _ = try await f.store.setLimits(try setLimits(tenant, key: "old-\(tenant)"))
      }
      f.clock.set(Date())
      _ = try await f.store.consume(try consume("acme", key: "young"))
      #expect(try await f.store.sweepIdempotencyKeys(olderThan: .seconds(48 * 3600)) == 2)
      #expect(try await f.count("idempotency", tenant: "acme") == 1)
      #expect(try await f.count("idempotency", tenant: "globex") == 0)
      // A retention under the promised 24 hours is raised to it, so nothing young goes.
      #expect(try await f.store.sweepIdempotencyKeys(olderThan: .seconds(1)) == 0)
    }
  }

  @Test("the service role sees one tenant's rows even in a query without a tenant filter")
  func rowLevelSecurity() async throws {
    try await withStore("quota_rls") { f in
      _ = try await f.store.setLimits(try setLimits("acme"))
      _ = try await f.store.setLimits(try setLimits("globex"))
      _ = try await f.store.consume(try consume("acme"))
      _ = try await f.store.consume(try consume("globex"))
      let seen = try await f.app.transaction(tenant: "acme") { tx in
        try await tx.query("SELECT DISTINCT tenant_id FROM quota.ledger").map { try $0.decode(String.self, at: 0) }
      }
      #expect(seen == ["acme"])
      // And the ledger cannot be rewritten by the service.
      let error = await #expect(throws: PostgresError.self) {
        try await f.app.transaction(tenant: "acme") { tx in try await tx.execute("DELETE FROM quota.ledger") }
      }
      #expect(error?.sqlState == "42501")
    }
  }
}
