public import GRPCCore
public import GRPCShimTransport

/// Runs `services` on a GRPCServer over the shim on 127.0.0.1 (a free port), connects a
/// GRPCClient to it over the shim, and runs `body` with both. Everything is shut down when
/// `body` returns or throws.
public func withLoopbackServer<Result: Sendable>(
  services: [any RegistrableRPCService],
  server serverConfiguration: ShimTransportConfiguration = .defaults,
  client clientConfiguration: ShimTransportConfiguration = .defaults,
  _ body: (GRPCClient<ShimClientTransport>, LoopbackServer) async throws -> Result
) async throws -> Result {
  let transport = ShimServerTransport(host: "127.0.0.1", port: 0, configuration: serverConfiguration)
  return try await withGRPCServer(transport: transport, services: services) { server in
    let port = try await transport.listeningPort()
    let transportOfClient = ShimClientTransport(target: "127.0.0.1:\(port)", configuration: clientConfiguration)
    return try await withGRPCClient(transport: transportOfClient) { client in
      try await body(client, LoopbackServer(server: server, port: port, clientTransport: transportOfClient))
    }
  }
}

/// The server side of `withLoopbackServer`.
public struct LoopbackServer: Sendable {
  public let server: GRPCServer<ShimServerTransport>
  public let port: Int
  /// The transport of the client handed to `body`, for calls straight through it
  /// (`ShimClientTransport.unaryCall`).
  public let clientTransport: ShimClientTransport
}
