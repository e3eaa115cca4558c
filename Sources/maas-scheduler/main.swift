// maas-scheduler: the scheduler service. `maas-scheduler` (or `maas-scheduler serve`) migrates the
// `scheduler` schema and serves `maas.scheduler.v1.Scheduler` and health until SIGTERM;
// `maas-scheduler migrate` only migrates. Configuration: the MAAS_SCHEDULER_* variables (see
// Sources/Scheduler/README.md). Exit status: 0 done (or drained after SIGTERM), 1 failed, 2
// invalid configuration or usage.
import Foundation
import MaaSRuntime
import Scheduler

exit(await ServiceCommandLine.run(SchedulerService.definition, arguments: Array(CommandLine.arguments.dropFirst())))
