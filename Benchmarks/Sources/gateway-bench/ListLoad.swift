import BenchSupport
import Foundation
import GRPCCore
import GRPCShimTransport
import MaaSContracts

typealias GatewayClient = Maas_Gateway_V1_Gateway.Client<ShimClientTransport>
typealias AdminClient = Maas_Gateway_V1_Admin.Client<ShimClientTransport>

/// The tenant the run lists: made through the Admin service, with an API key, a models limit of
/// `modelCount` and an unlimited API-call budget (every gateway call spends one), and its models
/// made through the gateway, the path a tenant's own calls take.
struct BenchTenant {
  var id: String
  var name: String
  /// The whole API key (`maas_<prefix>_<secret>`), sent as `authorization: Bearer <key>`.
  var apiKey: String

  var metadata: Metadata { ["authorization": "Bearer \(self.apiKey)"] }

  static func create(admin: AdminClient, adminToken: String, name: String, models: Int) async throws -> BenchTenant {
    let metadata: Metadata = ["authorization": "Bearer \(adminToken)"]
    let tenant = try await admin.createTenant(
      .with {
        $0.name = name
        $0.displayName = "gateway-bench"
        $0.limits = [
          .with { $0.resource = .models; $0.value = Int64(models) },
          .with { $0.resource = .apiCallsPerDay; $0.unlimited = true },
        ]
        $0.idempotencyKey = "gateway-bench-tenant"
      }, metadata: metadata)
    let key = try await admin.createApiKey(
      .with {
        $0.tenantID = tenant.id
        $0.name = "gateway-bench"
        $0.idempotencyKey = "gateway-bench-key"
      }, metadata: metadata)
    guard !key.secret.isEmpty else { throw BenchError("CreateApiKey answered no secret") }
    return BenchTenant(id: tenant.id, name: tenant.name, apiKey: key.secret)
  }
}

/// A model's name in the run: zero-padded, so byte order is creation order and the correctness
/// check can name what is missing.
func modelName(_ index: Int) -> String { String(format: "bench-model-%04d", index) }

/// CreateModel through the gateway for `count` models, `concurrency` at a time, each with a
/// description and two labels so that a listed row carries what a real one would. Idempotency keys
/// make a retried create safe; a failed one is retried a few times, then fails the run.
func createModels(gateway: GatewayClient, tenant: BenchTenant, count: Int, concurrency: Int) async throws {
  let metadata = tenant.metadata
  try await withThrowingTaskGroup(of: Void.self) { group in
    var next = 0
    func add() {
      guard next < count else { return }
      let index = next
      next += 1
      group.addTask {
        let request = Maas_Gateway_V1_CreateModelRequest.with {
          $0.name = modelName(index)
          $0.description_p = "Benchmark model \(index): a listing row with a description and two labels, as a real one has."
          $0.labels = ["family": index.isMultiple(of: 2) ? "llama" : "mistral", "size": "\(7 + index % 4 * 6)b"]
          $0.idempotencyKey = "gateway-bench-model-\(index)"
        }
        var attempt = 1
        while true {
          do {
            _ = try await gateway.createModel(request, metadata: metadata)
            return
          } catch let error as RPCError where error.code == .unavailable && attempt < 5 {
            attempt += 1
            try await Task.sleep(for: .milliseconds(100 * attempt))
          }
        }
      }
    }
    for _ in 0..<concurrency { add() }
    while try await group.next() != nil { add() }
  }
}

/// What walking every page of ListModels found.
struct WalkCheck: Encodable {
  var pages: Int
  var models: Int
  var distinct: Int
  var expected: Int
  /// Expected names no page had (the first few).
  var missing: [String]
  var sortedByName: Bool
  var seconds: Double
  /// The first page's 50 names equal those of pgbench's statement run through psql, which also
  /// answers 51 rows (page size + 1).
  var pgbenchStatementMatches: Bool
  var ok: Bool { self.models == self.expected && self.distinct == self.expected && self.missing.isEmpty && self.sortedByName }

  enum CodingKeys: String, CodingKey {
    case pages, models, distinct, expected, missing, seconds, ok
    case sortedByName = "sorted_by_name"
    case pgbenchStatementMatches = "pgbench_statement_matches"
  }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(self.pages, forKey: .pages)
    try container.encode(self.models, forKey: .models)
    try container.encode(self.distinct, forKey: .distinct)
    try container.encode(self.expected, forKey: .expected)
    try container.encode(self.missing, forKey: .missing)
    try container.encode(self.sortedByName, forKey: .sortedByName)
    try container.encode(self.seconds, forKey: .seconds)
    try container.encode(self.pgbenchStatementMatches, forKey: .pgbenchStatementMatches)
    try container.encode(self.ok, forKey: .ok)
  }
}

/// ListModels through the gateway, page after page with `next_page_token`, until the last page.
/// - Returns: the check, and the first page's names.
func walkAllPages(gateway: GatewayClient, tenant: BenchTenant, pageSize: Int, expected: Int) async throws -> (WalkCheck, [String]) {
  let clock = ContinuousClock()
  let start = clock.now
  var names: [String] = []
  var firstPage: [String] = []
  var token = ""
  var pages = 0
  repeat {
    let answer = try await gateway.listModels(
      .with {
        $0.pageSize = Int32(pageSize)
        $0.pageToken = token
      }, metadata: tenant.metadata)
    pages += 1
    if pages == 1 { firstPage = answer.models.map(\.name) }
    names += answer.models.map(\.name)
    token = answer.nextPageToken
    if pages > expected + 1 { throw BenchError("ListModels did not reach a last page within \(pages) pages") }
  } while !token.isEmpty
  let expectedNames = (0..<expected).map(modelName)
  let missing = Array(Set(expectedNames).subtracting(names).sorted().prefix(10))
  let check = WalkCheck(
    pages: pages, models: names.count, distinct: Set(names).count, expected: expected, missing: missing,
    sortedByName: names == names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) },
    seconds: start.duration(to: clock.now).seconds, pgbenchStatementMatches: false)
  return (check, firstPage)
}

/// A ListModels call the cells make, over and over: where to, and what it sends.
struct ListRequest {
  var target: String
  /// The method's path, e.g. `/maas.gateway.v1.Gateway/ListModels`.
  var method: String
  /// The request message, encoded once for every call.
  var message: [UInt8]
  var metadata: [(String, String)]
}

/// The first page (page size `pageSize`), through the gateway with the tenant's API key.
func gatewayListRequest(tenant: BenchTenant, target: String, pageSize: Int) throws -> ListRequest {
  ListRequest(
    target: target, method: "/" + Maas_Gateway_V1_Gateway.Method.ListModels.descriptor.fullyQualifiedMethod,
    message: try Maas_Gateway_V1_ListModelsRequest.with { $0.pageSize = Int32(pageSize) }.serializedBytes(),
    metadata: [("authorization", "Bearer \(tenant.apiKey)")])
}

/// The same first page asked of the registry directly with the tenant's id (what the gateway
/// forwards), skipping the gateway's authentication, its Consume at quota and its hop: the
/// registry's share of the end-to-end call, to read the gateway's against.
func registryListRequest(tenant: BenchTenant, target: String, pageSize: Int) throws -> ListRequest {
  let message = Maas_Registry_V1_ListModelsRequest.with {
    $0.tenantID = tenant.id
    $0.pageSize = Int32(pageSize)
  }
  return ListRequest(
    target: target, method: "/" + Maas_Registry_V1_ModelRegistry.Method.ListModels.descriptor.fullyQualifiedMethod,
    message: try message.serializedBytes(), metadata: [])
}
