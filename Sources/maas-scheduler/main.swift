// maas-scheduler: the scheduler service's executable. Today it applies the service's schema migrations
// (`maas-scheduler migrate`); serving arrives with the service. Exit status: 0 done, 1 failed,
// 2 invalid configuration or usage.
import Foundation
import MaaSRuntime
import Scheduler

exit(
  await ServiceCommandLine.run(
    program: "maas-scheduler",
    prefix: "MAAS_SCHEDULER",
    arguments: Array(CommandLine.arguments.dropFirst()),
    schema: SchedulerSchema.plan(serviceRole:)
  )
)
