// swift-tools-version: 6.1
import PackageDescription

// Builds the two protoc plugins that scripts/generate runs over proto/. Nothing here ships:
// the package exists so the plugins come from the same swift-protobuf and grpc-swift-protobuf
// versions as the root package's runtime libraries, without the root package carrying the
// plugins' build.
let package = Package(
  name: "codegen",
  dependencies: [
    .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
    .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
  ],
  targets: [
    // SwiftPM wants at least one target of the package's own; the plugins are built with
    // `swift build --product protoc-gen-swift --product protoc-gen-grpc-swift-2`.
    .target(name: "codegen-placeholder", path: "Sources/codegen-placeholder")
  ]
)
