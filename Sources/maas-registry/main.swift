// maas-registry: the model registry. `maas-registry` (or `maas-registry serve`) migrates the
// `registry` schema and serves `maas.registry.v1.ModelRegistry` and health until SIGTERM, calling
// the quota service at MAAS_REGISTRY_QUOTA_TARGET; `maas-registry migrate` only migrates.
// Configuration: the MAAS_REGISTRY_* variables (see Sources/Registry/README.md).
// Exit status: 0 done (or drained after SIGTERM), 1 failed, 2 invalid configuration or usage.
import Foundation
import MaaSRuntime
import Registry

exit(await ServiceCommandLine.run(RegistryService.definition, arguments: Array(CommandLine.arguments.dropFirst())))
