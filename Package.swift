// swift-tools-version:6.0
// Chorus: an embeddable recommendation engine. See README.md for the layout.
import PackageDescription

let root = Context.packageDirectory
// jemalloc, built from Debian's source package with a `chjem_` prefix (scripts/build-jemalloc.sh).
// Hot loops over class-held buffers: the dynamic exclusivity checks (swift_beginAccess) cost ~10%
// of fit and recommend time; the engine's own locking already serialises writers.
let fastSwift: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
// `CHORUS_FUZZ=1 swift build --sanitize=fuzzer --sanitize=address ...` (make fuzz-build) builds chorus-fuzz
// as libFuzzer harnesses (Tests/fuzz/README.md). That build links the C ABI into an executable with the
// sanitizer runtimes, whose symbols must stay exported: the library's version script is left out there.
let fuzzBuild = Context.environment["CHORUS_FUZZ"] == "1"
let jemallocLink: [LinkerSetting] = [.unsafeFlags(["-L\(root)/.deps/jemalloc/lib", "-lchjemalloc", "-lpthread", "-ldl"])]

let package = Package(
    name: "Chorus",
    products: [
        .library(name: "chorus", type: .dynamic, targets: ["Chorus"]),
        .executable(name: "chorus-cli", targets: ["chorus-cli"]),
        .executable(name: "chorus-bench", targets: ["chorus-bench"]),
        .executable(name: "chorus-fuzz", targets: ["chorus-fuzz"]),
    ],
    // The command-line parser of chorus-cli alone: the library and its modules stay free of it.
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // C headers: the public API (include/chorus.h) and the two system libraries.
        .target(name: "CChorus", path: "Sources/CChorus"),
        .systemLibrary(name: "CJemalloc", path: "Sources/CJemalloc"),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        // Hot kernels with run-time AVX2+FMA dispatch (per-function target attributes).
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: [.unsafeFlags(["-O3"])]),

        // Pure-Swift core, Foundation-free.
        .target(name: "ChorusCore", dependencies: ["CJemalloc", "CBLAS", "CKernels"], exclude: ["README.md"],
                swiftSettings: fastSwift, linkerSettings: jemallocLink),
        .target(name: "ChorusCollaborative", dependencies: ["ChorusCore"], exclude: ["README.md"], swiftSettings: fastSwift),
        .target(name: "ChorusText", dependencies: ["ChorusCore", "CKernels"], exclude: ["README.md"]),
        .target(name: "ChorusAgents", dependencies: ["ChorusCore", "ChorusCollaborative", "ChorusText", "ChorusKnowledge", "CKernels"], exclude: ["README.md"],
                swiftSettings: fastSwift),
        .target(name: "ChorusKnowledge", dependencies: ["ChorusCore", "CKernels"], exclude: ["README.md"], swiftSettings: fastSwift),
        .target(name: "ChorusEval", dependencies: ["ChorusCore", "ChorusAgents"], exclude: ["README.md"]),

        // The C ABI: a thin skin over the core. Exports only chorus_* (exports.map).
        .target(
            name: "Chorus",
            dependencies: ["CChorus", "ChorusCore", "ChorusAgents", "ChorusText", "ChorusKnowledge"],
            exclude: ["README.md"],
            linkerSettings: fuzzBuild ? [] : [.unsafeFlags(["-Xlinker", "--version-script=\(root)/exports.map"])]
        ),
        .executableTarget(name: "chorus-cli", dependencies: ["ChorusCore", "ChorusAgents", "ChorusEval", "ChorusKnowledge",
                                                            .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          exclude: ["README.md"]),
        // Benchmark drivers (bench/): the Swift side of peer comparisons.
        .executableTarget(name: "chorus-bench", dependencies: ["ChorusCore", "ChorusCollaborative", "ChorusAgents", "ChorusEval"]),

        // Fuzzing harnesses (Tests/fuzz/README.md): libFuzzer entry points when built with
        // `-D CHORUS_FUZZ -sanitize=fuzzer,address` (make fuzz), a corpus replay driver otherwise.
        .target(name: "CChorusFuzz", path: "Sources/CChorusFuzz"),
        .executableTarget(name: "chorus-fuzz", dependencies: ["Chorus", "CChorus", "CChorusFuzz", "ChorusCore", "ChorusText",
                                                             "ChorusKnowledge", "ChorusEval"],
                          exclude: ["README.md"], swiftSettings: fuzzBuild ? [.define("CHORUS_FUZZ")] : []),

        .testTarget(name: "ChorusCoreTests", dependencies: ["ChorusCore"]),
        .testTarget(name: "ChorusCollaborativeTests", dependencies: ["ChorusCollaborative"]),
        .testTarget(name: "ChorusAgentsTests", dependencies: ["ChorusAgents", "ChorusText"], exclude: ["Fixtures"]),
        .testTarget(name: "ChorusTextTests", dependencies: ["ChorusText"], exclude: ["Fixtures"]),
        .testTarget(name: "ChorusEvalTests", dependencies: ["ChorusEval"]),
        .testTarget(name: "ChorusKnowledgeTests", dependencies: ["ChorusKnowledge"]),
    ]
)
