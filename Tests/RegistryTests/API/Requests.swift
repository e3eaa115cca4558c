import Foundation
import MaaSContracts

typealias Registry = Maas_Registry_V1_ModelRegistry

/// Registry requests the API tests build again and again, each with a fresh idempotency key.
enum Requests {
  static func ref(_ name: String) -> Maas_Registry_V1_ModelRef { .with { $0.name = name } }
  static func ref(id: String) -> Maas_Registry_V1_ModelRef { .with { $0.id = id } }

  static func createModel(_ tenant: String, _ name: String, labels: [String: String] = [:]) -> Maas_Registry_V1_CreateModelRequest {
    .with {
      $0.tenantID = tenant
      $0.name = name
      $0.labels = labels
      $0.idempotencyKey = UUID().uuidString
    }
  }

  static func createVersion(_ tenant: String, _ model: Maas_Registry_V1_ModelRef, _ version: String, size: Int64)
    -> Maas_Registry_V1_CreateModelVersionRequest
  {
    .with {
      $0.tenantID = tenant
      $0.model = model
      $0.version = version
      $0.artifact = .with {
        $0.uri = "s3://weights/\(version)"
        $0.format = "safetensors"
        $0.sizeBytes = size
        $0.sha256 = sha
      }
      $0.idempotencyKey = UUID().uuidString
    }
  }
}
