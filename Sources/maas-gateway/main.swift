// maas-gateway: the gateway service's executable. Today it applies the service's schema migrations
// (`maas-gateway migrate`); serving arrives with the service. Exit status: 0 done, 1 failed,
// 2 invalid configuration or usage.
import Foundation
import MaaSRuntime
import Gateway

exit(
  await ServiceCommandLine.run(
    program: "maas-gateway",
    prefix: "MAAS_GATEWAY",
    arguments: Array(CommandLine.arguments.dropFirst()),
    schema: GatewaySchema.plan(serviceRole:)
  )
)
