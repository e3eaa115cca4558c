import ArgumentParser
import Foundation
import MaaSContracts
import SwiftProtobuf

/// A model named on the command line: by name, or by id with `--id`.
struct ModelArgument: ParsableArguments {
  @Argument(help: "The model's name (or its id with --id).") var model: String
  @Flag(name: .customLong("id"), help: "The argument is the model's id, not its name.") var byID = false

  var ref: Maas_Registry_V1_ModelRef {
    byID ? .with { $0.id = model } : .with { $0.name = model }
  }
}

struct Quota: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Show your quota, or set a tenant's limits (admin).", subcommands: [Get.self, Set.self])

  struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Your limits and usage.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
      try await reporting {
        let answer = try await connection.withGateway { gateway, metadata, options in
          try await gateway.getQuota(.init(), metadata: metadata, options: options)
        }
        try Output.print(connection.output, json: answer) { quotaTable(answer.resources) }
      }
    }
  }

  struct Set: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Set some of a tenant's limits (admin credential).")
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "The tenant's id.") var tenant: String
    @Argument(help: "resource=value pairs, e.g. models=10 api_calls_per_day=unlimited.") var limits: [String] = []
    @Option(help: "Repeatable: resources to reset to the default.") var reset: [String] = []

    func run() async throws {
      try await reporting {
        let parsed = try parseLimits(limits)
        let resets = try reset.map { name in
          guard let resource = Maas_Quota_V1_Resource.named(name) else { throw CLIError.usage("unknown resource \"\(name)\"") }
          return resource
        }
        let answer = try await connection.withAdmin { admin, metadata, options in
          try await admin.setTenantQuota(
            .with {
              $0.tenantID = tenant
              $0.limits = parsed
              $0.resetToDefault = resets
              $0.idempotencyKey = UUID().uuidString
            }, metadata: metadata, options: options)
        }
        try Output.print(connection.output, json: answer) { quotaTable(answer.resources) }
      }
    }
  }
}

func quotaTable(_ resources: [Maas_Quota_V1_ResourceQuota]) -> Table {
  Table(
    headers: ["RESOURCE", "LIMIT", "USED", "RESERVED", "UNIT", "RESETS"],
    rows: resources.map { quota in
      [
        quota.resource.name, quota.limit.unlimited ? "unlimited" : String(quota.limit.value) + (quota.isDefault ? " (default)" : ""),
        String(quota.used), String(quota.reserved), quota.unit, quota.windowResetTime.text,
      ]
    })
}

struct Models: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "List, show, create and delete your models.", subcommands: [List.self, Get.self, Create.self, Delete.self])

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List models, every page.")
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Only names starting with this.") var prefix: String = ""
    @Option(help: "Repeatable key=value: only models with every one of these labels.") var label: [String] = []
    @Option(help: "Models per request.") var pageSize: Int32 = 100

    func run() async throws {
      try await reporting {
        let selector = try parsePairs(label, what: "label")
        let answer = try await connection.withGateway { gateway, metadata, options in
          var all = Maas_Gateway_V1_ListModelsResponse()
          var token = ""
          repeat {
            let page = try await gateway.listModels(
              .with {
                $0.pageSize = pageSize
                $0.pageToken = token
                $0.namePrefix = prefix
                $0.labelSelector = selector
              }, metadata: metadata, options: options)
            all.models += page.models
            token = page.nextPageToken
          } while !token.isEmpty
          return all
        }
        try Output.print(connection.output, json: answer) { modelTable(answer.models) }
      }
    }
  }

  struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one model.")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var model: ModelArgument

    func run() async throws {
      try await reporting {
        let answer = try await connection.withGateway { gateway, metadata, options in
          try await gateway.getModel(.with { $0.model = model.ref }, metadata: metadata, options: options)
        }
        try Output.print(connection.output, json: answer) { modelTable([answer]) }
      }
    }
  }

  struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create a model (takes one unit of your models quota).")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The model's name.") var name: String
    @Option(help: "Free text.") var description: String = ""
    @Option(help: "Repeatable key=value label.") var label: [String] = []

    func run() async throws {
      try await reporting {
        let labels = try parsePairs(label, what: "label")
        let answer = try await connection.withGateway { gateway, metadata, options in
          try await gateway.createModel(
            .with {
              $0.name = name
              $0.description_p = description
              $0.labels = labels
              $0.idempotencyKey = UUID().uuidString
            }, metadata: metadata, options: options)
        }
        try Output.print(connection.output, json: answer) { modelTable([answer]) }
      }
    }
  }

  struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete a model (gives its quota back).")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var model: ModelArgument
    @Flag(help: "Delete its versions and aliases too.") var force = false

    func run() async throws {
      try await reporting {
        let answer = try await connection.withGateway { gateway, metadata, options in
          try await gateway.deleteModel(
            .with {
              $0.model = model.ref
              $0.force = force
              $0.idempotencyKey = UUID().uuidString
            }, metadata: metadata, options: options)
        }
        try Output.print(connection.output, json: answer) { Table(headers: ["DELETED"], rows: [[model.model]]) }
      }
    }
  }
}

func modelTable(_ models: [Maas_Registry_V1_Model]) -> Table {
  Table(
    headers: ["NAME", "ID", "STATE", "LABELS", "ALIASES", "UPDATED"],
    rows: models.map { model in
      [
        model.name, model.id, model.state == .archived ? "ARCHIVED" : "ACTIVE", labelText(model.labels),
        labelText(model.aliases), model.updateTime.text,
      ]
    })
}

struct Versions: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Create and list a model's versions.", subcommands: [Create.self, List.self])

  struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Add a version (its size counts against your storage quota).")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var model: ModelArgument
    @Argument(help: "The version string, e.g. 1.2.0.") var version: String
    @Option(help: "Where the artifact lives, e.g. s3://bucket/key.") var uri: String
    @Option(help: "SHA-256 of the artifact, 64 lower-case hex digits.") var sha256: String
    @Option(help: "Size in bytes.") var size: Int64 = 0
    @Option(help: "safetensors, gguf, onnx, ...") var format: String = ""
    @Option(help: "Repeatable key=value label.") var label: [String] = []

    func run() async throws {
      try await reporting {
        let labels = try parsePairs(label, what: "label")
        let answer = try await connection.withGateway { gateway, metadata, options in
          try await gateway.createModelVersion(
            .with {
              $0.model = model.ref
              $0.version = version
              $0.artifact = .with {
                $0.uri = uri
                $0.sha256 = sha256
                $0.sizeBytes = size
                $0.format = format
              }
              $0.labels = labels
              $0.idempotencyKey = UUID().uuidString
            }, metadata: metadata, options: options)
        }
        try Output.print(connection.output, json: answer) { versionTable([answer]) }
      }
    }
  }

  struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List a model's versions, every page.")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var model: ModelArgument

    func run() async throws {
      try await reporting {
        let answer = try await connection.withGateway { gateway, metadata, options in
          var all = Maas_Gateway_V1_ListModelVersionsResponse()
          var token = ""
          repeat {
            let page = try await gateway.listModelVersions(
              .with {
                $0.model = model.ref
                $0.pageSize = 100
                $0.pageToken = token
              }, metadata: metadata, options: options)
            all.versions += page.versions
            token = page.nextPageToken
          } while !token.isEmpty
          return all
        }
        try Output.print(connection.output, json: answer) { versionTable(answer.versions) }
      }
    }
  }
}

func versionTable(_ versions: [Maas_Registry_V1_ModelVersion]) -> Table {
  Table(
    headers: ["VERSION", "ID", "FORMAT", "SIZE", "URI", "CREATED"],
    rows: versions.map {
      [$0.version, $0.id, $0.artifact.format, String($0.artifact.sizeBytes), $0.artifact.uri, $0.createTime.text]
    })
}

struct Alias: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Point a model's alias at a version.", subcommands: [Set.self])

  struct Set: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Set (or move) an alias, e.g. production -> 1.2.0.")
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var model: ModelArgument
    @Argument(help: "The alias, e.g. production.") var alias: String
    @Argument(help: "The version string it points at.") var version: String

    func run() async throws {
      try await reporting {
        let answer = try await connection.withGateway { gateway, metadata, options in
          try await gateway.setModelAlias(
            .with {
              $0.model = model.ref
              $0.alias = alias
              $0.version = version
              $0.idempotencyKey = UUID().uuidString
            }, metadata: metadata, options: options)
        }
        try Output.print(connection.output, json: answer) {
          Table(headers: ["ALIAS", "VERSION", "VERSION ID", "UPDATED"], rows: [[answer.name, answer.version, answer.versionID, answer.updateTime.text]])
        }
      }
    }
  }
}

struct Usage: AsyncParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Your usage and charges over a period (default: this UTC month so far).")
  @OptionGroup var connection: ConnectionOptions
  @Option(help: "Start, RFC 3339 (e.g. 2026-11-01T00:00:00Z).") var from: String?
  @Option(help: "End, RFC 3339; default now.") var to: String?

  func run() async throws {
    try await reporting {
      let parser = ISO8601DateFormatter()
      var calendar = Calendar(identifier: .gregorian)
      calendar.timeZone = TimeZone(secondsFromGMT: 0)!
      let now = Date()
      let monthStart = calendar.date(from: calendar.dateComponents([.year, .month], from: now))!
      guard let start = from.map({ parser.date(from: $0) }) ?? monthStart else { throw CLIError.usage("--from: not RFC 3339") }
      guard let end = to.map({ parser.date(from: $0) }) ?? now.addingTimeInterval(1) else { throw CLIError.usage("--to: not RFC 3339") }
      let answer = try await connection.withGateway { gateway, metadata, options in
        try await gateway.getUsage(
          .with {
            $0.periodStart = .init(date: start)
            $0.periodEnd = .init(date: end)
          }, metadata: metadata, options: options)
      }
      try Output.print(connection.output, json: answer) {
        var table = Table(
          headers: ["RESOURCE", "USED", "QUANTITY", "UNIT", "UNIT PRICE", "AMOUNT"],
          rows: answer.lines.map { [$0.resource.name, String($0.used), String($0.quantity), $0.unit, $0.unitPrice, $0.amount] })
        table.rows.append(["total", "", "", "", "", "\(answer.total) \(answer.currency)"])
        return table
      }
    }
  }
}
