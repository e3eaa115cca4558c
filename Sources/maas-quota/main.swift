// maas-quota: the quota service. `maas-quota` (or `maas-quota serve`) migrates the `quota`
// schema and serves `maas.quota.v1.Quota` and health until SIGTERM; `maas-quota migrate` only
// migrates. Configuration: the MAAS_QUOTA_* variables (see Sources/Quota/README.md).
// Exit status: 0 done (or drained after SIGTERM), 1 failed, 2 invalid configuration or usage.
import Foundation
import MaaSRuntime
import Quota

exit(await ServiceCommandLine.run(QuotaService.definition, arguments: Array(CommandLine.arguments.dropFirst())))
