import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts
import MaaSTesting
import Postgres
import Quota
import Testing

/// The guarantee the quota service exists for, checked the way production would break it:
/// several client processes (Python grpcio, a stock gRPC stack) calling two `maas-quota`
/// replicas that share one database, all at once.
@Suite("Two maas-quota replicas sharing one database", .serialized, .timeLimit(.minutes(10)))
struct ReplicaConcurrencyTests {
  static let apiCallLimit: Int64 = 2_500
  static let modelLimit: Int64 = 300

  @Test("thousands of concurrent Consume and Reserve calls never overshoot, and counters, answers and ledger agree")
  func noOvershootAcrossReplicas() async throws {
    try #require(PythonEnvironment.isSetUp, "run scripts/python-env (or make test) first: the load comes from Python grpcio")
    try await awayFromUTCMidnight()  // the replicas count API calls per day on the host's clock
    let database = try await PostgresFixture.shared().createDatabase(named: "quota_replicas")
    let binary = try builtProduct(named: "maas-quota")
    let environment = [
      "MAAS_QUOTA_DATABASE_URL": database.appURL,
      "MAAS_QUOTA_MIGRATION_DATABASE_URL": database.ownerURL,
      "MAAS_QUOTA_HOST": "127.0.0.1",
      "MAAS_QUOTA_PORT": "0",
      "MAAS_QUOTA_LOG_LEVEL": "warning",
    ]
    // Both start (and migrate) at the same moment, as replicas of a rollout do.
    let replicas = try (0..<2).map { _ in
      try ServerProcess(binary: binary, environmentPrefix: "MAAS_QUOTA_", environment: environment)
    }
    defer { replicas.forEach { $0.kill() } }
    var targets: [String] = []
    for replica in replicas { targets.append("127.0.0.1:\(try await replica.listeningPort())") }

    try await withQuotaClient(targets[0]) { quota in
      _ = try await quota.setLimits(.with {
        $0.tenantID = "hot"
        $0.limits = [
          .with { $0.resource = .apiCallsPerDay; $0.value = Self.apiCallLimit },
          .with { $0.resource = .models; $0.value = Self.modelLimit },
        ]
        $0.idempotencyKey = "setup"
      })
    }

    // Demand far above both limits; "shared" sends the same keys to both replicas at once, as a
    // client retrying against another replica would.
    let loads: [(target: String, mode: String, count: Int, prefix: String)] = [
      (targets[0], "consume", 1_500, "a"), (targets[1], "consume", 1_500, "b"),
      (targets[0], "consume", 600, "shared"), (targets[1], "consume", 600, "shared"),
      (targets[0], "reserve", 250, "r0"), (targets[1], "reserve", 250, "r1"),
    ]
    let answers = try await withThrowingTaskGroup(of: (Int, [String: String]).self) { group in
      for (index, load) in loads.enumerated() {
        group.addTask {
          let outcome = try await runToCompletion(
            PythonEnvironment.python,
            [PythonEnvironment.script("quota_load.py"), load.target, "hot", load.mode, "\(load.count)", "48", load.prefix],
            environment: PythonEnvironment.environment, timeLimit: .seconds(300))
          // A summary on failure, formed only then (the comment is an autoclosure; the answers
          // are thousands of lines), with the replicas' latest logs: a failure here is usually
          // theirs.
          let succeeded = outcome.succeeded
          func unanswered() -> [Substring] {
            outcome.standardOutput.split(separator: ",").filter {
              !$0.contains("\"ok ") && !$0.contains("\"committed\"") && !$0.contains("\"RESOURCE_EXHAUSTED\"")
            }
          }
          try #require(
            succeeded,
            """
            load \(load) failed: \(unanswered().count) calls not answered, e.g. \(unanswered().prefix(3)); \(outcome.standardError.suffix(2_000))
            replicas' latest logs: \(replicas.map { $0.standardErrorTail() })
            """)
          let decoded = try JSONDecoder().decode([String: String].self, from: Data(outcome.standardOutput.utf8))
          return (index, decoded)
        }
      }
      var all = [[String: String]](repeating: [:], count: loads.count)
      for try await (index, decoded) in group { all[index] = decoded }
      return all
    }

    // A key sent to both replicas got one answer, whichever replica gave it.
    #expect(answers[2] == answers[3])
    #expect(answers[2].count == 600)

    // Unique Consume calls: the amount is 1 + (i % 3) by construction of the load.
    var consumeAnswers: [String: String] = [:]
    for index in 0...3 { consumeAnswers.merge(answers[index]) { first, _ in first } }
    #expect(consumeAnswers.count == 3_600)
    var admitted: Int64 = 0
    var runningTotals: [Int64] = []
    for (key, answer) in consumeAnswers where answer.hasPrefix("ok ") {
      admitted += 1 + Int64(key.split(separator: "-").last.flatMap { Int($0) }! % 3)
      runningTotals.append(Int64(answer.dropFirst(3))!)
    }
    #expect(consumeAnswers.values.allSatisfy { $0.hasPrefix("ok ") || $0 == "RESOURCE_EXHAUSTED" })
    // Every admitted call saw its own counter value: the two replicas really took turns.
    #expect(Set(runningTotals).count == runningTotals.count)
    #expect(runningTotals.max() == admitted)

    let committed = Int64(answers[4...5].flatMap(\.values).filter { $0 == "committed" }.count)
    #expect(answers[4...5].flatMap(\.values).allSatisfy { $0 == "committed" || $0 == "RESOURCE_EXHAUSTED" })

    let snapshot = try await withQuotaClient(targets[1]) { quota in
      try await quota.getQuota(.with { $0.tenantID = "hot" })
    }
    let apiCalls = try #require(snapshot.resources.first { $0.resource == .apiCallsPerDay })
    let models = try #require(snapshot.resources.first { $0.resource == .models })
    #expect(apiCalls.used == admitted)
    #expect(apiCalls.used <= Self.apiCallLimit)
    #expect(apiCalls.used >= Self.apiCallLimit - 2)  // demand was far higher; only amounts over 1 can leave a gap
    #expect(models.used == committed)
    #expect(models.used == Self.modelLimit)  // amounts of 1 fill the limit exactly
    #expect(models.reserved == 0)

    // The ledger adds up to the counters, and every unique call left exactly one answer.
    let owner = try PostgresPool(
      configuration: PostgresConfiguration(url: database.ownerURL, minConnections: 0, maxConnections: 1), logger: quietLogger)
    let sums = try await owner.query(
      "SELECT resource, sum(quantity)::bigint FROM quota.ledger WHERE tenant_id = 'hot' GROUP BY resource ORDER BY resource")
    let ledger = Dictionary(uniqueKeysWithValues: try sums.map { (try $0.decode(Int.self, at: 0), try $0.decode(Int64.self, at: 1)) })
    #expect(ledger[QuotaResource.apiCallsPerDay.rawValue] == apiCalls.used)
    #expect(ledger[QuotaResource.models.rawValue] == models.used)
    let remembered = try await owner.query(
      "SELECT count(*)::bigint FROM quota.idempotency WHERE tenant_id = 'hot' AND method = 'consume'")
    #expect(try remembered[0].decode(Int64.self, at: 0) == 3_600)
    await owner.close()

    for replica in replicas { replica.signal(SIGTERM) }
    for replica in replicas { #expect(try await replica.exitStatus() == .exited(0)) }
  }
}

/// A quota client over the shim transport to `target`, for the duration of `body`.
func withQuotaClient<Result: Sendable>(
  _ target: String, _ body: (Maas_Quota_V1_Quota.Client<ShimClientTransport>) async throws -> Result
) async throws -> Result {
  try await withGRPCClient(transport: ShimClientTransport(target: target)) { client in
    try await body(Maas_Quota_V1_Quota.Client(wrapping: client))
  }
}
