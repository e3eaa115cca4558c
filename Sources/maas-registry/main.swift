// maas-registry: the registry service's executable. Today it applies the service's schema migrations
// (`maas-registry migrate`); serving arrives with the service. Exit status: 0 done, 1 failed,
// 2 invalid configuration or usage.
import Foundation
import MaaSRuntime
import Registry

exit(
  await ServiceCommandLine.run(
    program: "maas-registry",
    prefix: "MAAS_REGISTRY",
    arguments: Array(CommandLine.arguments.dropFirst()),
    schema: RegistrySchema.plan(serviceRole:)
  )
)
