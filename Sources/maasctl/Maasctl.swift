import ArgumentParser
import Foundation

/// `maasctl`: the command-line client of the MaaS gateway, for tenants (their API key or JWT)
/// and operators (the admin credential).
@main
struct Maasctl: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "maasctl",
    abstract: "Manage models, versions, aliases, quota and tenants through the MaaS gateway.",
    discussion: """
      Environment (flags override):
        MAAS_GATEWAY      gateway address, default 127.0.0.1:50051
        MAAS_TOKEN        a tenant's API key or JWT
        MAAS_ADMIN_TOKEN  the admin credential (tenants, keys, quota set)

      Output: a table, or the answer as JSON with --output json.

      Exit status:
        0   done
        1   the gateway refused the call; the message says why
        3   the gateway could not be reached or did not answer in time
        64  bad usage
      """,
    subcommands: [
      Tenants.self, Keys.self, Quota.self, Models.self, Versions.self, Alias.self, Usage.self,
    ]
  )
}
