#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// chorus: the command-line front of the Chorus engine. Exit codes: 0 success, 1 failure,
// 2 usage error; messages go to stderr.

let program: String = {
    let path = CommandLine.arguments.first ?? "chorus"
    return path.split(separator: "/").last.map(String.init) ?? "chorus"
}()

let topHelp = """
    Usage: \(program) <command> [options]

    Commands:
      eval    evaluate every agent and the blend on MovieLens with a per-user temporal hold-out
      demo    fit on MovieLens (or the shipped demo catalogue), show recommendations and an evaluation
      kg      train or evaluate knowledge-graph embeddings (TransE, DistMult, ComplEx, RotatE)

    Run '\(program) <command> --help' for a command's options.
    """

let arguments = CommandLine.arguments.dropFirst()
let commands: [String: (help: String, run: (ArraySlice<String>) throws(CLIError) -> Void)] = [
    "eval": (EvalCommand.help, EvalCommand.run),
    "demo": (DemoCommand.help, DemoCommand.run),
    "kg": (KGCommand.help, KGCommand.run),
]

guard let name = arguments.first else {
    Console.error(topHelp)
    exit(2)
}
if name == "--help" || name == "-h" || name == "help" {
    if let sub = arguments.dropFirst().first, let c = commands[sub] { print(c.help) } else { print(topHelp) }
    exit(0)
}
guard let command = commands[name] else {
    Console.error("\(program): unknown command '\(name)'\n\n\(topHelp)")
    exit(2)
}
let rest = arguments.dropFirst()
if rest.contains("--help") || rest.contains("-h") {
    print(command.help)
    exit(0)
}
do {
    try command.run(rest)
    exit(0)
} catch .usage(let message) {
    Console.error("\(program) \(name): \(message)\nRun '\(program) \(name) --help' for usage.")
    exit(2)
} catch .failure(let message) {
    Console.error("\(program) \(name): error: \(message)")
    exit(1)
}
