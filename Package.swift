// swift-tools-version: 6.1
import PackageDescription

// One settings array for every Swift target: Swift 6 language mode everywhere, with the
// upcoming features the codebase relies on named in one place.
let swiftSettings: [SwiftSetting] = [
  .swiftLanguageMode(.v6),
  .enableUpcomingFeature("ExistentialAny"),
  .enableUpcomingFeature("InternalImportsByDefault"),
]

// The external products the targets use, named once.
let grpcCore: Target.Dependency = .product(name: "GRPCCore", package: "grpc-swift-2")
let grpcProtobuf: Target.Dependency = .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf")
let swiftProtobuf: Target.Dependency = .product(name: "SwiftProtobuf", package: "swift-protobuf")
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let serviceLifecycle: Target.Dependency = .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let jwtKit: Target.Dependency = .product(name: "JWTKit", package: "jwt-kit")
let crypto: Target.Dependency = .product(name: "Crypto", package: "swift-crypto")
let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")
let prometheus: Target.Dependency = .product(name: "Prometheus", package: "swift-prometheus")

let package = Package(
  name: "maas",
  platforms: [.macOS(.v15)],
  products: [
    .library(name: "GRPCShimTransport", targets: ["GRPCShimTransport"]),
    .library(name: "MaaSContracts", targets: ["MaaSContracts"]),
    .library(name: "MaaSRuntime", targets: ["MaaSRuntime"]),
    .library(name: "MaaSTesting", targets: ["MaaSTesting"]),
    .library(name: "Postgres", targets: ["Postgres"]),
    .library(name: "PostgresMigrations", targets: ["PostgresMigrations"]),
    .library(name: "Quota", targets: ["Quota"]),
    .library(name: "Registry", targets: ["Registry"]),
    .executable(name: "maas-echo-server", targets: ["maas-echo-server"]),
    .executable(name: "maas-gateway", targets: ["maas-gateway"]),
    .executable(name: "maas-registry", targets: ["maas-registry"]),
    .executable(name: "maas-scheduler", targets: ["maas-scheduler"]),
    .executable(name: "maas-quota", targets: ["maas-quota"]),
    .executable(name: "maasctl", targets: ["maasctl"]),
  ],
  dependencies: [
    .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
    .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
    .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
    .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
  ],
  targets: [
    // C++17 over grpc C++'s generic callback API, behind a plain-C header. Only
    // GRPCShimTransport imports it.
    .target(
      name: "CGRPCShim",
      linkerSettings: [
        // pkg-config's link line for grpc++ is too long for swiftc ("Argument list too long"),
        // so the libraries the shim needs are named directly.
        .linkedLibrary("grpc++"),
        .linkedLibrary("grpc"),
        .linkedLibrary("gpr"),
        .linkedLibrary("absl_synchronization"),
        .linkedLibrary("stdc++"),
      ]
    ),
    // GRPCCore's ClientTransport and ServerTransport over the shim.
    .target(
      name: "GRPCShimTransport",
      dependencies: [
        "CGRPCShim",
        grpcCore,
      ],
      swiftSettings: swiftSettings
    ),
    // Generated from proto/ by `make generate`; committed.
    .target(
      name: "MaaSContracts",
      dependencies: [
        grpcCore,
        grpcProtobuf,
        swiftProtobuf,
      ],
      swiftSettings: swiftSettings
    ),
    // Debian's libpq-dev. Only the Postgres module imports it.
    .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
    // The Postgres client every service stores through: pool, typed values, transactions.
    .target(
      name: "Postgres",
      dependencies: [
        "CLibPQ",
        logging,
      ],
      swiftSettings: swiftSettings
    ),
    // Versioned per-schema migrations, applied once under an advisory lock.
    .target(
      name: "PostgresMigrations",
      dependencies: [
        "Postgres",
        logging,
      ],
      swiftSettings: swiftSettings
    ),
    // What every service executable shares: configuration, logging, lifecycle, health.
    .target(
      name: "MaaSRuntime",
      dependencies: [
        "GRPCShimTransport",
        "MaaSContracts",
        "Postgres",
        "PostgresMigrations",
        grpcCore,
        logging,
        serviceLifecycle,
        prometheus,
        swiftProtobuf,
        crypto,
      ],
      swiftSettings: swiftSettings
    ),
    // The services: one library each (handlers, domain logic, storage) and a thin executable.
    .target(
      name: "Gateway",
      dependencies: [
        "MaaSContracts", "MaaSRuntime", "Postgres", "PostgresMigrations", "GRPCShimTransport", grpcCore,
        swiftProtobuf, logging, serviceLifecycle, jwtKit, crypto,
      ],
      exclude: ["README.md"],
      swiftSettings: swiftSettings
    ),
    .executableTarget(
      name: "maas-gateway",
      dependencies: ["Gateway", "MaaSRuntime"],
      swiftSettings: swiftSettings
    ),
    // The quota service as other services call it: reserve, commit and release stock resources.
    .target(
      name: "QuotaClient",
      dependencies: ["MaaSContracts", "MaaSRuntime", "GRPCShimTransport", grpcCore, swiftProtobuf],
      swiftSettings: swiftSettings
    ),
    .target(
      name: "Registry",
      dependencies: [
        "MaaSContracts", "MaaSRuntime", "Postgres", "PostgresMigrations", "GRPCShimTransport", grpcCore,
        swiftProtobuf, logging, serviceLifecycle, crypto, prometheus, "QuotaClient",
      ],
      exclude: ["README.md"],
      swiftSettings: swiftSettings
    ),
    .executableTarget(
      name: "maas-registry",
      dependencies: ["Registry", "MaaSRuntime"],
      swiftSettings: swiftSettings
    ),
    .target(
      name: "Scheduler",
      dependencies: [
        "MaaSContracts", "MaaSRuntime", "Postgres", "PostgresMigrations", "GRPCShimTransport", grpcCore,
        swiftProtobuf, logging, serviceLifecycle, prometheus, "QuotaClient",
      ],
      exclude: ["README.md"],
      swiftSettings: swiftSettings
    ),
    .executableTarget(
      name: "maas-scheduler",
      dependencies: ["Scheduler", "MaaSRuntime"],
      swiftSettings: swiftSettings
    ),
    .target(
      name: "Quota",
      dependencies: [
        "MaaSContracts", "MaaSRuntime", "Postgres", "PostgresMigrations", grpcCore, swiftProtobuf, logging,
        serviceLifecycle,
      ],
      exclude: ["README.md"],
      swiftSettings: swiftSettings
    ),
    .executableTarget(
      name: "maas-quota",
      dependencies: ["Quota", "MaaSRuntime"],
      swiftSettings: swiftSettings
    ),
    // The command-line client of the public gateway.
    .executableTarget(
      name: "maasctl",
      dependencies: ["MaaSContracts", "GRPCShimTransport", grpcCore, swiftProtobuf, argumentParser],
      swiftSettings: swiftSettings
    ),
    // Fixtures shared by the test targets and benchmarks: the echo service and its helpers.
    .target(
      name: "MaaSTesting",
      dependencies: [
        "GRPCShimTransport",
        "MaaSContracts",
        "Postgres",
        "PostgresMigrations",
        grpcCore,
        logging,
      ],
      swiftSettings: swiftSettings
    ),
    // A diagnostic server: the echo and health services on the shared runtime. Interoperability
    // tests and `make run` start it until the real services exist.
    .executableTarget(
      name: "maas-echo-server",
      dependencies: [
        "MaaSRuntime",
        "MaaSTesting",
        "GRPCShimTransport",
        grpcCore,
        logging,
        serviceLifecycle,
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "MaaSRuntimeTests",
      dependencies: [
        "MaaSRuntime",
        "MaaSTesting",
        "Postgres",
        "Quota",
        "GRPCShimTransport",
        prometheus,
        "MaaSContracts",
        grpcCore,
        logging,
        serviceLifecycle,
        swiftProtobuf,
      ],
      swiftSettings: swiftSettings
    ),
    // Calls between the shim transport and Python grpcio, both ways.
    .testTarget(
      name: "InteropTests",
      dependencies: [
        "MaaSRuntime",
        "MaaSTesting",
        "GRPCShimTransport",
        "MaaSContracts",
        grpcCore,
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "PostgresMigrationsTests",
      dependencies: [
        "PostgresMigrations",
        "Postgres",
        "MaaSTesting",
        logging,
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "MaaSTestingTests",
      dependencies: ["MaaSTesting"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "PostgresTests",
      dependencies: ["Postgres", "MaaSTesting"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "QuotaTests",
      dependencies: [
        "Quota",
        "MaaSContracts",
        "MaaSRuntime",
        "MaaSTesting",
        "Postgres",
        "PostgresMigrations",
        "GRPCShimTransport",
        grpcCore,
        logging,
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "QuotaClientTests",
      dependencies: ["QuotaClient", "GRPCShimTransport"],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "RegistryTests",
      dependencies: [
        "Registry", "QuotaClient", "Quota", "MaaSContracts", "MaaSRuntime", "MaaSTesting", "Postgres", "PostgresMigrations",
        "GRPCShimTransport", grpcCore, swiftProtobuf, logging,
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "SchedulerTests",
      dependencies: [
        "Scheduler", "QuotaClient", "Quota", "MaaSContracts", "MaaSRuntime", "MaaSTesting", "Postgres", "PostgresMigrations",
        "GRPCShimTransport", grpcCore, swiftProtobuf, logging,
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "GatewayTests",
      dependencies: [
        "Gateway", "Registry", "QuotaClient", "Quota", "MaaSContracts", "MaaSRuntime", "MaaSTesting", "Postgres",
        "PostgresMigrations", "GRPCShimTransport", grpcCore, swiftProtobuf, logging, jwtKit, crypto,
      ],
      swiftSettings: swiftSettings
    ),
    .testTarget(
      name: "GRPCShimTransportTests",
      dependencies: [
        "GRPCShimTransport",
        "MaaSContracts",
        "MaaSTesting",
        grpcCore,
        grpcProtobuf,
      ],
      swiftSettings: swiftSettings
    ),
  ],
  cxxLanguageStandard: .cxx17
)
