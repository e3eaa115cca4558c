public import GRPCCore
public import Logging
public import MaaSContracts
public import MaaSRuntime
public import GRPCShimTransport
import Foundation

/// `maas-gateway`: the public door (`maas.gateway.v1.Gateway`) and the operator's API
/// (`maas.gateway.v1.Admin`) on the shared runtime, default port 50051. See README.md.
public enum GatewayService {
  public static let prefix = "MAAS_GATEWAY"

  public static let definition = ServiceDefinition<GatewaySettings>(
    program: "maas-gateway", prefix: prefix, defaultPort: 50051,
    schema: GatewaySchema.plan(serviceRole:),
    readSettings: { reader in GatewaySettings.read(prefix: prefix, from: &reader) },
    makeServices: { settings, pool, logger, metrics in
      // Their connections run beside the server and close after it, so forwarded calls finish
      // during a drain.
      let registry = UpstreamClient(target: settings.registryTarget)
      let quota = UpstreamClient(target: settings.quotaTarget)
      let store = PostgresGatewayStore(pool: pool)
      if settings.adminToken == nil {
        logger.warning("\(prefix)_ADMIN_TOKEN is not set: every Admin call is refused")
      }
      if !settings.jwt.acceptsTokens {
        logger.notice("no JWT key configured: only API keys are accepted")
      }
      let services = try GatewayService.services(
        settings: settings, credentials: store, tenants: store, registry: registry.client,
        registryChannel: registry.transport, quota: Maas_Quota_V1_Quota.Client(wrapping: quota.client),
        quotaChannel: quota.transport, logger: logger, metrics: metrics)
      return .init(services: services, background: [registry, quota])
    })

  /// The two services, each with its guard installed: `Gateway` (its list answers passed
  /// through from the registry undecoded, see `GatewayRoutes`) behind `TenantAuthInterceptor`,
  /// `Admin` behind `AdminAuthInterceptor`. What `definition` serves; tests and embedders call it
  /// with their own stores and clients.
  ///
  /// - Parameters:
  ///   - registryChannel: where list calls go (see `GatewayRPCService`); the service gives
  ///     `registry`'s transport, called straight through (`ShimClientTransport.unaryCall`).
  ///   - quotaChannel: where API calls are charged (Consume); the service gives the quota
  ///     client's transport, likewise. Tests may give the `GRPCClient`s themselves.
  /// - Throws: when the JWT settings' RS256 key does not load.
  public static func services(
    settings: GatewaySettings,
    credentials: any CredentialDirectory,
    tenants: any TenantStore,
    registry: GRPCClient<some ClientTransport>,
    registryChannel: any UnaryChannel,
    quota: any Maas_Quota_V1_Quota.ClientProtocol,
    quotaChannel: any UnaryChannel,
    clock: any GatewayClock = SystemGatewayClock(),
    logger: Logger,
    metrics: ServerMetrics? = nil
  ) throws -> [any RegistrableRPCService] {
    let jwt = settings.jwt.acceptsTokens ? try JWTVerifier(settings: settings.jwt) : nil
    // One cache for the keys the Gateway service checks and the ones Admin revokes.
    let keyCache = settings.apiKeyCacheTTL > .zero ? ApiKeyCache(ttl: settings.apiKeyCacheTTL, clock: clock) : nil
    // A JWT's tenant is remembered as long as a key's record.
    let knownTenants = settings.apiKeyCacheTTL > .zero ? KnownTenants(ttl: settings.apiKeyCacheTTL, clock: clock) : nil
    let authenticator = Authenticator(
      directory: credentials, jwt: jwt, keyCache: keyCache, knownTenants: knownTenants, clock: clock, logger: logger,
      metrics: metrics.map(AuthenticationMetrics.init))
    let gateway = GatewayRPCService(
      registry: registry, registryChannel: registryChannel, quota: quota, upstream: settings.upstream, clock: clock,
      logger: logger)
    let administration = TenantAdministration(
      store: tenants, quota: quota, upstream: settings.upstream, keyCache: keyCache,
      pageTokens: AdminPageTokens(secret: settings.pageTokenSecret), clock: clock, logger: logger)
    return [
      GuardedService(
        GatewayRoutes(service: gateway), descriptor: Maas_Gateway_V1_Gateway.descriptor,
        interceptors: [
          TenantAuthInterceptor(
            authenticator: authenticator, quota: quotaChannel, upstream: settings.upstream,
            logger: logger)
        ]),
      GuardedService(
        AdminRoutes(service: AdminRPCService(administration: administration, logger: logger)),
        descriptor: Maas_Gateway_V1_Admin.descriptor,
        interceptors: [AdminAuthInterceptor(adminToken: settings.adminToken, authenticator: authenticator, logger: logger)]),
    ]
  }
}

/// A service registered with interceptors of its own, so that its guard travels with it: the
/// shared runtime (`ServiceDefinition`) mounts services without per-service interceptors, and
/// health must stay unguarded while `Gateway` and `Admin` need different guards.
///
/// Caveat: GRPCCore's `RPCRouter.registerInterceptors` replaces the interceptors of the methods
/// it matches, so a server that also passes its own non-empty `interceptors:` would replace
/// these for these methods. The runtime passes none.
public struct GuardedService: RegistrableRPCService {
  let base: any RegistrableRPCService
  let descriptor: ServiceDescriptor
  let interceptors: [any ServerInterceptor]

  public init(_ base: any RegistrableRPCService, descriptor: ServiceDescriptor, interceptors: [any ServerInterceptor]) {
    self.base = base
    self.descriptor = descriptor
    self.interceptors = interceptors
  }

  public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
    self.base.registerMethods(with: &router)
    router.registerInterceptors(pipeline: self.interceptors.map { .apply($0, to: .services([self.descriptor])) })
  }
}
