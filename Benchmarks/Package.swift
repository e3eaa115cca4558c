// swift-tools-version: 6.1
import PackageDescription

// Benchmarks live in their own package so that the services' build never carries their peers
// (grpc-swift-nio-transport here). `make bench-<name>` builds it in release mode.
let package = Package(
  name: "maas-benchmarks",
  platforms: [.macOS(.v15)],
  dependencies: [
    // The root package, through a link that make creates, so that its identity is "maas" whatever
    // the checkout is called.
    .package(path: "../.build-bench/links/maas"),
    .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
    .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
  ],
  targets: [
    // What the Postgres-backed benchmarks share: running processes (pgbench, psql, the services)
    // with signals they can be stopped by, a private cluster, pgbench's figures, the closed caller
    // loop, latency percentiles and the report's table and JSON helpers. Foundation only, so that
    // it never pulls a service library into a benchmark that does not link one.
    .target(
      name: "BenchSupport",
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    .executableTarget(
      name: "transport-bench",
      dependencies: [
        .product(name: "GRPCShimTransport", package: "maas"),
        .product(name: "MaaSContracts", package: "maas"),
        .product(name: "MaaSTesting", package: "maas"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
      ],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    // The Postgres client against pgbench on a private cluster; `make bench-postgres`.
    .executableTarget(
      name: "postgres-bench",
      dependencies: [
        "BenchSupport",
        .product(name: "Postgres", package: "maas"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    // Consume through maas-quota (the release build of the root package's product, made in this
    // package's scratch path) against pgbench's single-row UPDATE on one private cluster, beside
    // an empty gRPC call to the same server and Consume through QuotaStore in this process;
    // `make bench-quota`.
    .executableTarget(
      name: "quota-bench",
      dependencies: [
        "BenchSupport",
        .product(name: "GRPCShimTransport", package: "maas"),
        .product(name: "MaaSContracts", package: "maas"),
        .product(name: "MaaSRuntime", package: "maas"),
        .product(name: "Postgres", package: "maas"),
        .product(name: "Quota", package: "maas"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "Logging", package: "swift-log"),
      ],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    // ListModels end to end (client -> maas-gateway -> maas-registry -> Postgres, with maas-quota
    // behind both; the root package's release builds, made in this package's scratch path) against
    // pgbench running the registry's own list transaction on one private cluster;
    // `make bench-gateway`.
    .executableTarget(
      name: "gateway-bench",
      dependencies: [
        "BenchSupport",
        .product(name: "Registry", package: "maas"),
        .product(name: "GRPCShimTransport", package: "maas"),
        .product(name: "MaaSContracts", package: "maas"),
        .product(name: "MaaSRuntime", package: "maas"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
      ],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
    // Schedule then Release through maas-scheduler (with maas-quota behind it; the root package's
    // release builds, made in this package's scratch path) at 100, 1,000 and 10,000 registered
    // nodes and 1, 16 and 64 callers, with the CPU each process spends per placement;
    // `make bench-scheduler`.
    .executableTarget(
      name: "scheduler-bench",
      dependencies: [
        "BenchSupport",
        .product(name: "GRPCShimTransport", package: "maas"),
        .product(name: "MaaSContracts", package: "maas"),
        .product(name: "MaaSRuntime", package: "maas"),
        .product(name: "MaaSTesting", package: "maas"),
        .product(name: "GRPCCore", package: "grpc-swift-2"),
      ],
      swiftSettings: [.swiftLanguageMode(.v6)]
    ),
  ]
)
