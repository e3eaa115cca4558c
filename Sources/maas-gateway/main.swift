// maas-gateway: the gateway service's executable. `maas-gateway` (or `serve`) migrates the gateway
// schema unless MAAS_GATEWAY_MIGRATE_ON_START=false, then serves Gateway and Admin until SIGTERM;
// `maas-gateway migrate` only migrates. Exit status: 0 done, 1 failed, 2 invalid configuration or
// usage.
import Foundation
import Gateway
import MaaSRuntime

exit(await ServiceCommandLine.run(GatewayService.definition, arguments: Array(CommandLine.arguments.dropFirst())))
