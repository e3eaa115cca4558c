// A diagnostic server: the echo service (Sources/MaaSTesting) and health on the shared
// runtime. Interoperability tests, scripts and `make run` start it until the real services
// exist; it also shows the shape every MaaS executable follows.
//
// Configuration: the `MAAS_ECHO_*` variables of `ServerSettings` (default port 50050).
// Prints `listening on HOST:PORT` on stdout once bound; logs go to stderr.
// Exit status: 0 after a graceful shutdown (SIGTERM, SIGINT), 1 when serving fails (the port is
// taken, say), 2 when the configuration is invalid.

import Foundation
import Logging
import MaaSRuntime
import MaaSTesting

let settings = loadConfigurationOrExit(program: "maas-echo-server") {
  try ServerSettings.load(prefix: "MAAS_ECHO", defaults: ServerSettings(port: 50050))
}
MaaSLogging.bootstrap(settings)
let logger = Logger(label: "maas.echo")

let server = MaaSServer(
  settings: settings,
  services: [EchoService()],
  logger: logger,
  onListening: MaaSServer.printListeningLine
)

do {
  try await server.runService()
} catch {
  logger.critical("server failed", metadata: ["error": "\(error)"])
  exit(1)
}
