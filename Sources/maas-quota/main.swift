// maas-quota: the quota service's executable. Today it applies the service's schema migrations
// (`maas-quota migrate`); serving arrives with the service. Exit status: 0 done, 1 failed,
// 2 invalid configuration or usage.
import Foundation
import MaaSRuntime
import Quota

exit(
  await ServiceCommandLine.run(
    program: "maas-quota",
    prefix: "MAAS_QUOTA",
    arguments: Array(CommandLine.arguments.dropFirst()),
    schema: QuotaSchema.plan(serviceRole:)
  )
)
