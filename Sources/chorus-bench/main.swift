#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// chorus-bench: the Swift side of the peer comparisons under bench/ (see bench/README.md).
// Exit codes: 0 success, 1 failure, 2 usage error. Results go to stdout as JSON; messages to stderr.

let help = """
    Usage: chorus-bench <command> [options]

    Commands:
      als       time ImplicitALS.fit on a user,item,weight CSV and write the factors (bench/als/run.py)
      kernels   time the ALS / scoring dense kernels against alternatives (profiling aid)
      holdout   the library's temporal split of a ratings file (run.py checks its own against it)
      latency   single-user recommend latency per agent and for the coordinator (profiling aid)
      topk      exact top-k over an item matrix, single queries and a batch (bench/topk/run.py)
      ivf       approximate top-k with IVFIndex: build, searches at several nprobe, exact beside it (bench/ivf/run.py)

    Run 'chorus-bench <command> --help' for a command's options.
    """

let arguments = CommandLine.arguments.dropFirst()
guard let command = arguments.first else {
    BenchIO.error(help)
    exit(2)
}
let rest = arguments.dropFirst()
switch command {
case "--help", "-h", "help":
    print(help)
case "als":
    if rest.contains("--help") || rest.contains("-h") { print(ALSBench.help); exit(0) }
    do {
        try ALSBench.run(Options(rest, allowed: ALSBench.options))
    } catch .usage(let message) {
        BenchIO.error("chorus-bench als: \(message)\n\n\(ALSBench.help)")
        exit(2)
    } catch .failure(let message) {
        BenchIO.error("chorus-bench als: error: \(message)")
        exit(1)
    }
case "kernels":
    if rest.contains("--help") || rest.contains("-h") { print(KernelBench.help); exit(0) }
    do {
        try KernelBench.run(Options(rest, allowed: KernelBench.options))
    } catch .usage(let message) {
        BenchIO.error("chorus-bench kernels: \(message)\n\n\(KernelBench.help)")
        exit(2)
    } catch .failure(let message) {
        BenchIO.error("chorus-bench kernels: error: \(message)")
        exit(1)
    }
case "holdout":
    if rest.contains("--help") || rest.contains("-h") { print(HoldoutBench.help); exit(0) }
    do {
        try HoldoutBench.run(Options(rest, allowed: HoldoutBench.options))
    } catch .usage(let message) {
        BenchIO.error("chorus-bench holdout: \(message)\n\n\(HoldoutBench.help)")
        exit(2)
    } catch .failure(let message) {
        BenchIO.error("chorus-bench holdout: error: \(message)")
        exit(1)
    }
case "latency":
    if rest.contains("--help") || rest.contains("-h") { print(LatencyBench.help); exit(0) }
    do {
        try LatencyBench.run(Options(rest, allowed: LatencyBench.options))
    } catch .usage(let message) {
        BenchIO.error("chorus-bench latency: \(message)\n\n\(LatencyBench.help)")
        exit(2)
    } catch .failure(let message) {
        BenchIO.error("chorus-bench latency: error: \(message)")
        exit(1)
    }
case "topk":
    if rest.contains("--help") || rest.contains("-h") { print(TopKBench.help); exit(0) }
    do {
        try TopKBench.run(Options(rest, allowed: TopKBench.options))
    } catch .usage(let message) {
        BenchIO.error("chorus-bench topk: \(message)\n\n\(TopKBench.help)")
        exit(2)
    } catch .failure(let message) {
        BenchIO.error("chorus-bench topk: error: \(message)")
        exit(1)
    }
case "ivf":
    if rest.contains("--help") || rest.contains("-h") { print(IVFBench.help); exit(0) }
    do {
        try IVFBench.run(Options(rest, allowed: IVFBench.options))
    } catch .usage(let message) {
        BenchIO.error("chorus-bench ivf: \(message)\n\n\(IVFBench.help)")
        exit(2)
    } catch .failure(let message) {
        BenchIO.error("chorus-bench ivf: error: \(message)")
        exit(1)
    }
default:
    BenchIO.error("chorus-bench: unknown command '\(command)'\n\n\(help)")
    exit(2)
}
