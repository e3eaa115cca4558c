import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import MaaSRuntime
import MaaSTesting
import Quota
import SwiftProtobuf
import Testing

/// The gRPC edge: requests over the real transport, answers and statuses as a client sees them.
@Suite("maas.quota.v1.Quota over gRPC", .serialized, .timeLimit(.minutes(5)))
struct QuotaRPCServiceTests {
  /// Runs `body` with a client of a QuotaRPCService on a fresh database, tenant "acme" registered.
  func withService(
    _ name: String, metrics: QuotaMetrics? = nil,
    _ body: (Maas_Quota_V1_Quota.Client<ShimClientTransport>, StoreFixture) async throws -> Void
  ) async throws {
    try await withStore(name) { fixture in
      let service = QuotaRPCService(store: fixture.store, clock: fixture.clock, logger: quietLogger, metrics: metrics)
      try await withLoopbackServer(services: [service]) { client, _ in
        let quota = Maas_Quota_V1_Quota.Client(wrapping: client)
        _ = try await quota.setLimits(.with {
          $0.tenantID = "acme"
          $0.idempotencyKey = "register"
        })
        try await body(quota, fixture)
      }
    }
  }

  @Test("bad input is INVALID_ARGUMENT naming the field, and nothing is recorded")
  func badInput() async throws {
    try await withService("quota_api_bad_input") { quota, fixture in
      let consume = { (edit: (inout Maas_Quota_V1_ConsumeRequest) -> Void) in
        var request = Maas_Quota_V1_ConsumeRequest.with {
          $0.tenantID = "acme"
          $0.resource = .apiCallsPerDay
          $0.amount = 1
          $0.idempotencyKey = "k"
        }
        edit(&request)
        return request
      }
      let cases: [(Maas_Quota_V1_ConsumeRequest, String)] = [
        (consume { $0.tenantID = "" }, "tenant_id: is required"),
        (consume { $0.resource = .unspecified }, "resource: must be a known resource"),
        (consume { $0.resource = .UNRECOGNIZED(42) }, "resource: must be a known resource"),
        (consume { $0.resource = .models }, "resource: must be a flow resource"),
        (consume { $0.amount = 0 }, "amount: must be greater than 0"),
        (consume { $0.amount = -5 }, "amount: must be greater than 0"),
        (consume { $0.amount = .max }, "amount: must be at most"),
        (consume { $0.idempotencyKey = "" }, "idempotency_key: is required"),
        (consume { $0.idempotencyKey = String(repeating: "k", count: 129) }, "idempotency_key: is longer than 128 bytes"),
      ]
      for (request, message) in cases {
        let failure = await status { try await quota.consume(request) }
        #expect(failure?.code == .invalidArgument, "\(request)")
        #expect(failure?.message.hasPrefix(message) == true, "\(failure?.message ?? "success") for \(message)")
      }
      let reserve = await status {
        try await quota.reserve(.with {
          $0.tenantID = "acme"
          $0.resource = .models
          $0.amount = 1
          $0.idempotencyKey = "r"
          $0.ttl = Google_Protobuf_Duration(seconds: 25 * 3600)
        })
      }
      #expect(reserve?.code == .invalidArgument)
      #expect(reserve?.message == "ttl: is out of range")
      let record = await status {
        try await quota.recordUsage(.with {
          $0.tenantID = "acme"
          $0.resource = .gpuSeconds
          $0.quantity = 10
          $0.usageTime = Google_Protobuf_Timestamp(date: fixture.clock.now().addingTimeInterval(3600))
          $0.idempotencyKey = "u"
        })
      }
      #expect(record?.message == "usage_time: is too far in the future")
      let report = await status {
        try await quota.getUsageReport(.with {
          $0.tenantID = "acme"
          $0.periodStart = Google_Protobuf_Timestamp(date: fixture.clock.now())
          $0.periodEnd = Google_Protobuf_Timestamp(date: fixture.clock.now())
        })
      }
      #expect(report?.message == "period_end: must be after period_start")
      // Seconds near Int64's ends trap in SwiftProtobuf's own conversion to Date; here they are
      // refused like any other time out of range.
      let extreme = await status {
        try await quota.getUsageReport(.with {
          $0.tenantID = "acme"
          $0.periodStart = .with { $0.seconds = .min }
          $0.periodEnd = .with { $0.seconds = .max }
        })
      }
      #expect(extreme?.code == .invalidArgument)
      #expect(
        extreme?.message
          == "period_start: must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z; period_end: must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z")
      let ancient = await status {
        try await quota.recordUsage(.with {
          $0.tenantID = "acme"
          $0.resource = .gpuSeconds
          $0.quantity = 10
          $0.usageTime = .with { $0.seconds = .min }
          $0.idempotencyKey = "u"
        })
      }
      #expect(ancient?.message == "usage_time: must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z")
      let limits = await status {
        try await quota.setLimits(.with {
          $0.tenantID = "acme"
          $0.limits = [.with { $0.resource = .models; $0.value = 1 }, .with { $0.resource = .models; $0.value = 2 }]
          $0.idempotencyKey = "l"
        })
      }
      #expect(limits?.message == "limits: names models more than once")
      let negative = await status {
        try await quota.setLimits(.with {
          $0.tenantID = "acme"
          $0.limits = [.with { $0.resource = .models; $0.value = -1 }]
          $0.idempotencyKey = "l"
        })
      }
      #expect(negative?.message == "limits[0].value: is out of range")
      let ledger = try await fixture.count("ledger", tenant: "acme")
      let reservations = try await fixture.count("reservations", tenant: "acme")
      let remembered = try await fixture.count("idempotency", tenant: "acme")
      #expect(ledger == 0)
      #expect(reservations == 0)
      #expect(remembered == 1)  // the registration only
    }
  }

  @Test(
    "refusals carry their status: RESOURCE_EXHAUSTED with limit and usage, NOT_FOUND, FAILED_PRECONDITION; those at a limit are counted by resource"
  )
  func refusals() async throws {
    let metrics = ServerMetrics()
    try await withService("quota_api_refusals", metrics: QuotaMetrics(metrics)) { quota, _ in
      _ = try await quota.setLimits(.with {
        $0.tenantID = "acme"
        $0.limits = [.with { $0.resource = .concurrentGpus; $0.value = 4 }]
        $0.idempotencyKey = "limit"
      })
      let held = try await quota.reserve(.with {
        $0.tenantID = "acme"
        $0.resource = .concurrentGpus
        $0.amount = 3
        $0.idempotencyKey = "r1"
      })
      #expect(held.state == .held)
      #expect(held.expireTime.date.timeIntervalSince(held.createTime.date).rounded() == 300)
      let exhausted = await status {
        try await quota.reserve(.with {
          $0.tenantID = "acme"
          $0.resource = .concurrentGpus
          $0.amount = 2
          $0.idempotencyKey = "r2"
        })
      }
      #expect(exhausted?.code == .resourceExhausted)
      #expect(exhausted?.message == "concurrent_gpus: limit 4, used 3, asked 2")
      let unknown = await status { try await quota.getQuota(.with { $0.tenantID = "nobody" }) }
      #expect(unknown?.code == .notFound)
      #expect(unknown?.message.hasPrefix("tenant_id:") == true)
      let missing = await status {
        try await quota.commit(.with {
          $0.tenantID = "acme"
          $0.reservationID = UUID().uuidString
          $0.idempotencyKey = "c"
        })
      }
      #expect(missing?.code == .notFound)
      _ = try await quota.release(.with {
        $0.tenantID = "acme"
        $0.reservationID = held.id
        $0.idempotencyKey = "rel"
      })
      let released = await status {
        try await quota.commit(.with {
          $0.tenantID = "acme"
          $0.reservationID = held.id
          $0.idempotencyKey = "c2"
        })
      }
      #expect(released?.code == .failedPrecondition)
    }
    // Only the refusal at the limit counts, under the resource its message names.
    let samples = metricSamples(metrics.render())
    #expect(samples["maas_quota_refusals_total{resource=\"concurrent_gpus\"}"] == 1)
    #expect(samples["maas_quota_refusals_total{resource=\"models\"}"] == 0)
  }

  @Test("GetQuota lists every resource in enum order with its window, reset time and unit")
  func getQuota() async throws {
    try await withService("quota_api_get_quota") { quota, fixture in
      let answer = try await quota.getQuota(.with { $0.tenantID = "acme" })
      #expect(answer.resources.map(\.resource) == [.models, .storageBytes, .gpuSeconds, .apiCallsPerDay, .concurrentGpus])
      #expect(answer.resources.map(\.unit) == ["models", "bytes", "GPU-seconds", "calls", "GPUs"])
      #expect(answer.resources.map(\.limit.value) == [100, 50_000_000_000, 360_000, 10_000, 16])
      let calls = answer.resources[3]
      #expect(calls.window == .utcDay)
      #expect(calls.windowResetTime.date == utc(2026, 11, 23))
      #expect(answer.resources[0].hasWindowResetTime == false)
      _ = fixture
    }
  }
}
