import GRPCCore
import MaaSContracts
import MaaSRuntime
import MaaSTesting
import Testing

private typealias Status = Grpc_Health_V1_HealthCheckResponse.ServingStatus

@Suite("Health over the shim transport")
struct HealthServiceTests {
  @Test("The server as a whole and each mounted service answer SERVING")
  func checkServing() async throws {
    try await withRunningServer(services: [EchoService()]) { _, client in
      let health = Grpc_Health_V1_Health.Client(wrapping: client)
      let overall = try await health.check(.with { $0.service = "" })
      #expect(overall.status == .serving)
      let echo = try await health.check(.with { $0.service = "maas.echo.v1.Echo" })
      #expect(echo.status == .serving)
    }
  }

  @Test("Interceptors see the services' calls but never health's")
  func interceptorsSkipHealth() async throws {
    let (arrivals, arrived) = AsyncStream.makeStream(of: String.self)
    try await withRunningServer(services: [EchoService()], interceptors: [ArrivalInterceptor(arrivals: arrived)]) { _, client in
      _ = try await Grpc_Health_V1_Health.Client(wrapping: client).check(.with { $0.service = "" })
      _ = try await Maas_Echo_V1_Echo.Client(wrapping: client).get(.with { $0.text = "hi" })
    }
    arrived.finish()
    var seen: [String] = []
    for await method in arrivals { seen.append(method) }
    #expect(seen == ["maas.echo.v1.Echo/Get"])
  }

  @Test("Checking an unknown service fails with NOT_FOUND")
  func checkUnknown() async throws {
    try await withRunningServer { _, client in
      let health = Grpc_Health_V1_Health.Client(wrapping: client)
      let error = try await #require(throws: RPCError.self) {
        try await health.check(.with { $0.service = "no.such.Service" })
      }
      #expect(error.code == .notFound)
    }
  }

  @Test("Watch sends the current status, then each change")
  func watchSeesChange() async throws {
    let service = HealthService()
    service.setStatus(.serving, forService: "maas.test.v1.Thing")
    try await withRunningServer(health: service) { _, client in
      let health = Grpc_Health_V1_Health.Client(wrapping: client)
      let seen = try await withTimeout("the watched statuses") {
        try await health.watch(.with { $0.service = "maas.test.v1.Thing" }) { response in
          var messages = response.messages.makeAsyncIterator()
          let first = try await messages.next()?.status
          // The first message proves the watch is registered, so this change cannot be missed.
          service.setStatus(.notServing, forService: "maas.test.v1.Thing")
          let second = try await messages.next()?.status
          return [first, second]
        }
      }
      #expect(seen == [.serving, .notServing])
    }
  }

  @Test("Watching an unknown service says SERVICE_UNKNOWN until the service appears")
  func watchUnknown() async throws {
    let service = HealthService()
    try await withRunningServer(health: service) { _, client in
      let health = Grpc_Health_V1_Health.Client(wrapping: client)
      let seen = try await withTimeout("the watched statuses") {
        try await health.watch(.with { $0.service = "maas.later.v1.Thing" }) { response in
          var messages = response.messages.makeAsyncIterator()
          let first = try await messages.next()?.status
          service.setStatus(.serving, forService: "maas.later.v1.Thing")
          let second = try await messages.next()?.status
          return [first, second]
        }
      }
      #expect(seen == [.serviceUnknown, .serving])
    }
  }

  @Test("Marking all NOT_SERVING covers every service and cannot be undone")
  func markAllNotServing() async throws {
    try await withRunningServer(services: [EchoService()]) { server, client in
      let health = Grpc_Health_V1_Health.Client(wrapping: client)
      server.health.markAllNotServing()
      server.health.setStatus(.serving, forService: "")
      let overall = try await health.check(.with { $0.service = "" })
      let echo = try await health.check(.with { $0.service = "maas.echo.v1.Echo" })
      #expect(overall.status == .notServing)
      #expect(echo.status == .notServing)
    }
  }

  @Test("Ending watches finishes open streams after their last status")
  func endWatches() async throws {
    let service = HealthService()
    try await withRunningServer(health: service) { _, client in
      let health = Grpc_Health_V1_Health.Client(wrapping: client)
      let seen = try await withTimeout("the watch to end") {
        try await health.watch(.with { $0.service = "" }) { response in
          var statuses: [Status] = []
          for try await message in response.messages {
            statuses.append(message.status)
            if statuses.count == 1 {
              service.markAllNotServing()
              service.endWatches()
            }
          }
          return statuses
        }
      }
      #expect(seen == [.serving, .notServing])
    }
  }
}
