import BenchSupport
import GRPCCore
import GRPCShimTransport
import MaaSContracts

typealias HealthClient = Grpc_Health_V1_Health.Client<ShimClientTransport>

/// The gRPC floor: `grpc.health.v1.Health/Check` for the whole server (empty service name)
/// against the same maas-quota, over the same client and channel as the Consume cells. The
/// handler reads one status under a lock, so what a call costs is the round trip through both
/// transports with no work behind it: no Consume can be faster than this.
struct TransportFloorLoad {
  let health: HealthClient

  func measure(concurrency: Int, seconds: Int, warmUpSeconds: Int) async -> ConsumeCell {
    let health = self.health
    let measured = await measureCallers(
      cell: "floor", concurrency: concurrency, seconds: seconds, warmUpSeconds: warmUpSeconds,
      call: plainCall {
        let answer = try await health.check(Grpc_Health_V1_HealthCheckRequest.with { $0.service = "" })
        guard answer.status == .serving else { throw BenchError("Health/Check answered \(answer.status), not SERVING") }
      })
    return measured.consumeCell
  }
}
