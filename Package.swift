// swift-tools-version: 6.0
// CTRKit: TFRecord-compatible click-log reading, TensorFlow-compatible feature columns,
// CTR models and their training, export and serving. See README.md and
// ../shared/design/ARCHITECTURE.md for the layering: Records <- Features <- CTR <- Serve <- ctrkit.
import PackageDescription

let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")
let yams: Target.Dependency = .product(name: "Yams", package: "Yams")

// Hot loops run over raw buffers owned by final classes; dynamic exclusivity checks on their
// stored properties cost ~5% of parse time. Debug builds (the tests) keep the checks.
let hotLoops: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
  name: "CTRKit",
  platforms: [.macOS(.v13)],
  products: [
    .library(name: "Records", targets: ["Records"]),
    .library(name: "Features", targets: ["Features"]),
    .library(name: "CTR", targets: ["CTR"]),
    .library(name: "Serve", targets: ["Serve"]),
    .executable(name: "ctrkit", targets: ["ctrkit"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
  ],
  targets: [
    // System libraries, found through pkg-config; `providers` names the Debian packages.
    .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c", providers: [.apt(["libprotobuf-c-dev"])]),
    .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
    .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
    // Intel ISA-L's igzip: inflates gzip/zlib about 2.5x faster than zlib, which is what lets a
    // GZIP TFRecord stream keep up with parsing (zlib stays for writing and as a fallback).
    .systemLibrary(name: "CISAL", pkgConfig: "libisal", providers: [.apt(["libisal-dev"])]),
    .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),

    // protobuf-c code generated from schemas/*.proto by schemas/generate.sh (committed).
    .target(name: "CTensorFlowProto", dependencies: ["CProtobufC"], path: "schemas/protobuf-c",
            exclude: [], publicHeadersPath: "include"),
    // CRC32C with the SSE4.2 instruction (Swift cannot emit it) and a portable fallback.
    .target(name: "CRecordsSupport"),

    .target(name: "Records",
            dependencies: ["CTensorFlowProto", "CProtobufC", "CZstd", "CZlib", "CISAL", "CRecordsSupport"],
            swiftSettings: hotLoops),
    .target(name: "Features", dependencies: ["Records", "CRecordsSupport", yams], swiftSettings: hotLoops),
    .target(name: "CTR", dependencies: ["Features", "Records", "COpenBLAS", "CRecordsSupport"], swiftSettings: hotLoops),
    .target(name: "Serve", dependencies: ["CTR", "Features", "Records"]),
    .executableTarget(name: "ctrkit", dependencies: ["Records", "Features", "CTR", "Serve", argumentParser]),

    // Helpers shared by the test targets (seeded generator, scratch directories).
    .target(name: "TestSupport", path: "Tests/TestSupport"),
    .testTarget(name: "RecordsTests", dependencies: ["Records", "CRecordsSupport", "TestSupport"],
                resources: [.copy("Fixtures")]),
    .testTarget(name: "FeaturesTests", dependencies: ["Features", "Records", "TestSupport"], resources: [.copy("Fixtures")]),
    .testTarget(name: "CTRTests", dependencies: ["CTR", "Features", "Records", "TestSupport"], resources: [.copy("Fixtures")]),
    .testTarget(name: "CLITests", dependencies: ["ctrkit", "Records", "Features", "CTR", "TestSupport"]),
  ]
)
