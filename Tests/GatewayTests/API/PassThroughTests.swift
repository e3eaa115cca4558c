import Foundation
import GRPCCore
import MaaSContracts
import MaaSRuntime
import SwiftProtobuf
import Testing
@testable import Gateway

@Suite("List answers pass through the gateway as the registry encoded them")
struct PassThroughTests {
  static let model = Maas_Registry_V1_Model.with {
    $0.id = "7d0e4c1e-5f43-4b0c-9a7e-1b2c3d4e5f60"
    $0.tenantID = "tenant-a"
    $0.name = "llama-3-8b"
    $0.description_p = "a model with every field set"
    $0.labels = ["team": "research", "size": "8b"]
    $0.state = .archived
    $0.createTime = Google_Protobuf_Timestamp(seconds: 1_795_000_000, nanos: 123_000)
    $0.updateTime = Google_Protobuf_Timestamp(seconds: 1_795_000_100, nanos: 456_000)
    $0.aliases = ["production": "1.0.0"]
  }

  static let version = Maas_Registry_V1_ModelVersion.with {
    $0.id = "0b7e3f0e-0000-4000-8000-000000000001"
    $0.modelID = model.id
    $0.version = "1.0.0"
    $0.artifact = .with {
      $0.uri = "s3://bucket/llama"
      $0.format = "safetensors"
      $0.sizeBytes = 16_000_000_000
      $0.sha256 = String(repeating: "ab", count: 32)
    }
    $0.labels = ["stage": "prod"]
    $0.createTime = Google_Protobuf_Timestamp(seconds: 1_795_000_200, nanos: 0)
  }

  /// Map fields (labels, aliases) go out in dictionary order unless asked otherwise; comparing
  /// bytes needs one order.
  static let deterministic: BinaryEncodingOptions = {
    var options = BinaryEncodingOptions()
    options.useDeterministicOrdering = true
    return options
  }()

  @Test("the registry's ListModels answer reads as the gateway's, field for field, and encodes to the same bytes")
  func listModels() throws {
    let registry = Maas_Registry_V1_ListModelsResponse.with {
      $0.models = [Self.model, Self.model]
      $0.nextPageToken = "opaque-token"
    }
    let encoded = EncodedMessage<Maas_Registry_V1_ListModelsResponse>(bytes: try registry.serializedBytes(options: Self.deterministic))
    let gateway = try encoded.reinterpreted(as: Maas_Gateway_V1_ListModelsResponse.self).decoded()
    #expect(gateway.models == registry.models)
    #expect(gateway.nextPageToken == registry.nextPageToken)
    #expect(gateway.unknownFields.data.isEmpty)
    #expect(try gateway.serializedBytes(options: Self.deterministic) as [UInt8] == encoded.bytes)
  }

  @Test("the registry's ListModelVersions answer reads as the gateway's, field for field, and encodes to the same bytes")
  func listModelVersions() throws {
    let registry = Maas_Registry_V1_ListModelVersionsResponse.with {
      $0.versions = [Self.version]
      $0.nextPageToken = "opaque-token"
    }
    let encoded = EncodedMessage<Maas_Registry_V1_ListModelVersionsResponse>(bytes: try registry.serializedBytes(options: Self.deterministic))
    let gateway = try encoded.reinterpreted(as: Maas_Gateway_V1_ListModelVersionsResponse.self).decoded()
    #expect(gateway.versions == registry.versions)
    #expect(gateway.nextPageToken == registry.nextPageToken)
    #expect(gateway.unknownFields.data.isEmpty)
    #expect(try gateway.serializedBytes(options: Self.deterministic) as [UInt8] == encoded.bytes)
  }

  @Test("the coders hand bytes on unchanged both ways")
  func coders() throws {
    let bytes: [UInt8] = [0x0a, 0x03, 0x61, 0x62, 0x63, 0x12, 0x01, 0x74]
    let taken = try EncodedMessageDeserializer<Maas_Registry_V1_ListModelsResponse>().deserialize(bytes)
    #expect(taken.bytes == bytes)
    let sent: [UInt8] = try EncodedMessageSerializer<Maas_Gateway_V1_ListModelsResponse>().serialize(
      taken.reinterpreted(as: Maas_Gateway_V1_ListModelsResponse.self))
    #expect(sent == bytes)
    let refused = #expect(throws: RPCError.self) {
      _ = try ProtobufMessageDeserializer<Maas_Gateway_V1_ListModelsRequest>().deserialize([0x0a, 0xff] as [UInt8])
    }
    #expect(refused?.code == .invalidArgument)
  }
}
