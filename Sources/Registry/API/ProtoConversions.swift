import Foundation
import MaaSContracts
import SwiftProtobuf

// Domain values to and from `maas.registry.v1` messages. Only the API layer sees proto types.

extension ModelRef {
  /// nil when the request sets neither field (or leaves the message out).
  init?(proto: Maas_Registry_V1_ModelRef?) {
    switch proto?.ref {
    case .id(let id): self = .id(id)
    case .name(let name): self = .name(name)
    case nil: return nil
    }
  }
}

extension VersionRef {
  init?(proto: Maas_Registry_V1_VersionRef?) {
    switch proto?.ref {
    case .id(let id): self = .id(id)
    case .version(let version): self = .version(version)
    case .alias(let alias): self = .alias(alias)
    case nil: return nil
    }
  }
}

extension ModelState {
  /// `.some(nil)` for UNSPECIFIED, nil for a number this build does not know.
  static func from(proto: Maas_Registry_V1_ModelState) -> ModelState?? {
    switch proto {
    case .unspecified: .some(nil)
    case .active: .some(.active)
    case .archived: .some(.archived)
    case .UNRECOGNIZED: nil
    }
  }

  var proto: Maas_Registry_V1_ModelState {
    switch self {
    case .active: .active
    case .archived: .archived
    }
  }
}

extension Artifact {
  init(proto: Maas_Registry_V1_Artifact) {
    self.init(uri: proto.uri, format: proto.format, sizeBytes: proto.sizeBytes, sha256: proto.sha256)
  }

  var proto: Maas_Registry_V1_Artifact {
    .with {
      $0.uri = uri
      $0.format = format
      $0.sizeBytes = sizeBytes
      $0.sha256 = sha256
    }
  }
}

extension Maas_Registry_V1_Model {
  init(_ model: Model) {
    self.init()
    id = model.id
    tenantID = model.tenantID
    name = model.name
    description_p = model.description
    labels = model.labels
    state = model.state.proto
    createTime = Google_Protobuf_Timestamp(wholeMicroseconds: model.createdAt)
    updateTime = Google_Protobuf_Timestamp(wholeMicroseconds: model.updatedAt)
    aliases = model.aliases
  }
}

extension Maas_Registry_V1_ModelVersion {
  init(_ version: ModelVersion) {
    self.init()
    id = version.id
    modelID = version.modelID
    self.version = version.version
    artifact = version.artifact.proto
    labels = version.labels
    createTime = Google_Protobuf_Timestamp(wholeMicroseconds: version.createdAt)
  }
}

extension Maas_Registry_V1_Alias {
  init(_ alias: Alias) {
    self.init()
    name = alias.name
    version = alias.version
    modelID = alias.modelID
    versionID = alias.versionID
    updateTime = Google_Protobuf_Timestamp(wholeMicroseconds: alias.updatedAt)
  }
}

extension Google_Protobuf_Timestamp {
  /// The instant rounded to whole microseconds (the database's precision), so that the same
  /// stored time always goes out as the same seconds and nanos, however its Date was computed.
  init(wholeMicroseconds date: Date) {
    let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
    var seconds = micros / 1_000_000
    var remainder = micros % 1_000_000
    if remainder < 0 {
      seconds -= 1
      remainder += 1_000_000
    }
    self.init(seconds: seconds, nanos: Int32(remainder * 1_000))
  }
}
