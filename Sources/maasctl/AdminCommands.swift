import ArgumentParser
import Foundation
import MaaSContracts

struct Tenants: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Create and list tenants (admin credential).", subcommands: [Create.self, List.self])

  struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a tenant (and register it with the quota service).")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The tenant's name: lower-case letters, digits and '-'.") var name: String
    @Option(help: "A human-readable name.") var displayName: String = ""
    @Option(help: "Repeatable limit, e.g. --limit models=10 or --limit api_calls_per_day=unlimited.")
    var limit: [String] = []

    func run() async throws {
      try await reporting {
        let limits = try parseLimits(limit)
        let tenant = try await connection.withAdmin { admin, metadata, options in
          try await admin.createTenant(
            .with {
              $0.name = name
              $0.displayName = displayName
              $0.limits = limits
              $0.idempotencyKey = UUID().uuidString
            }, metadata: metadata, options: options)
        }
        try Output.print(connection.output, json: tenant) {
          Table(headers: ["ID", "NAME", "DISPLAY NAME", "CREATED"], rows: [[tenant.id, tenant.name, tenant.displayName, tenant.createTime.text]])
        }
      }
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List tenants.")
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Only names starting with this.") var prefix: String = ""

    func run() async throws {
      try await reporting {
        let answer = try await connection.withAdmin { admin, metadata, options in
          var all = Maas_Gateway_V1_ListTenantsResponse()
          var token = ""
          repeat {
            let page = try await admin.listTenants(
              .with {
                $0.pageSize = 1000
                $0.pageToken = token
                $0.namePrefix = prefix
              }, metadata: metadata, options: options)
            all.tenants += page.tenants
            token = page.nextPageToken
          } while !token.isEmpty
          return all
        }
        try Output.print(connection.output, json: answer) {
          Table(headers: ["ID", "NAME", "DISPLAY NAME", "CREATED"], rows: answer.tenants.map { [$0.id, $0.name, $0.displayName, $0.createTime.text] })
        }
      }
    }
  }
}

struct Keys: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Create, list and revoke a tenant's API keys (admin credential).",
    subcommands: [Create.self, List.self, Revoke.self])

  struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create an API key; its secret is shown once.")
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "The tenant's id.") var tenant: String
    @Option(help: "A name for the key.") var name: String = ""
    @Option(help: "Expire after this many days, 1 to 36500 (default: never).") var expiresInDays: Int?

    func validate() throws {
      if let expiresInDays, !(1...36_500).contains(expiresInDays) {
        throw ValidationError("--expires-in-days: must be 1 to 36500 (got \(expiresInDays))")
      }
    }

    func run() async throws {
      try await reporting {
        let answer = try await connection.withAdmin { admin, metadata, options in
          try await admin.createApiKey(
            .with {
              $0.tenantID = tenant
              $0.name = name
              if let expiresInDays {
                $0.expireTime = .init(date: Date().addingTimeInterval(Double(expiresInDays) * 86_400))
              }
              $0.idempotencyKey = UUID().uuidString
            }, metadata: metadata, options: options)
        }
        try Output.print(connection.output, json: answer) {
          Table(
            headers: ["ID", "PREFIX", "NAME", "EXPIRES", "SECRET (shown once)"],
            rows: [[answer.key.id, answer.key.prefix, answer.key.name, answer.key.expireTime.text, answer.secret]])
        }
      }
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List a tenant's API keys (never their secrets).")
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "The tenant's id.") var tenant: String
    @Flag(help: "Include revoked keys.") var includeRevoked = false

    func run() async throws {
      try await reporting {
        let answer = try await connection.withAdmin { admin, metadata, options in
          try await admin.listApiKeys(
            .with {
              $0.tenantID = tenant
              $0.pageSize = 1000
              $0.includeRevoked = includeRevoked
            }, metadata: metadata, options: options)
        }
        try Output.print(connection.output, json: answer) {
          Table(
            headers: ["ID", "PREFIX", "NAME", "CREATED", "EXPIRES", "REVOKED", "LAST USED"],
            rows: answer.keys.map {
              [$0.id, $0.prefix, $0.name, $0.createTime.text, $0.expireTime.text, $0.revokeTime.text, $0.lastUsedTime.text]
            })
        }
      }
    }
  }

  struct Revoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Revoke an API key: it stops working at once.")
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "The tenant's id.") var tenant: String
    @Argument(help: "The key's id.") var keyID: String

    func run() async throws {
      try await reporting {
        let key = try await connection.withAdmin { admin, metadata, options in
          try await admin.revokeApiKey(
            .with {
              $0.tenantID = tenant
              $0.keyID = keyID
              $0.idempotencyKey = UUID().uuidString
            }, metadata: metadata, options: options)
        }
        try Output.print(connection.output, json: key) {
          Table(headers: ["ID", "PREFIX", "REVOKED"], rows: [[key.id, key.prefix, key.revokeTime.text]])
        }
      }
    }
  }
}

/// `resource=value` pairs as quota limits; `value` may be `unlimited`.
func parseLimits(_ pairs: [String]) throws -> [Maas_Quota_V1_Limit] {
  try parsePairs(pairs, what: "limit").sorted { $0.key < $1.key }.map { name, value in
    guard let resource = Maas_Quota_V1_Resource.named(name) else {
      throw CLIError.usage(
        "unknown resource \"\(name)\" (models, storage_bytes, gpu_seconds, api_calls_per_day, concurrent_gpus)")
    }
    if value == "unlimited" { return .with { $0.resource = resource; $0.unlimited = true } }
    guard let number = Int64(value), number >= 0 else {
      throw CLIError.usage("limit \(name)=\(value): expected a non-negative integer or \"unlimited\"")
    }
    return .with { $0.resource = resource; $0.value = number }
  }
}

extension Maas_Quota_V1_Resource {
  static func named(_ name: String) -> Self? {
    switch name.lowercased() {
    case "models": .models
    case "storage_bytes": .storageBytes
    case "gpu_seconds": .gpuSeconds
    case "api_calls_per_day": .apiCallsPerDay
    case "concurrent_gpus": .concurrentGpus
    default: nil
    }
  }

  var name: String {
    switch self {
    case .models: "models"
    case .storageBytes: "storage_bytes"
    case .gpuSeconds: "gpu_seconds"
    case .apiCallsPerDay: "api_calls_per_day"
    case .concurrentGpus: "concurrent_gpus"
    default: "unknown"
    }
  }
}
