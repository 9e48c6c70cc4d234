#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ArgumentParser

// chorus: the command-line front of the Chorus engine, on swift-argument-parser. Exit codes:
// 0 success, 1 failure, 2 usage error (the parser's own EX_USAGE, 64, is mapped to 2 as before);
// messages go to stderr.

struct ChorusCLI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus",
        abstract: "The command-line front of Chorus, an embeddable recommendation engine.",
        discussion: "Exit codes: 0 success, 1 failure, 2 usage error.",
        subcommands: [EvalCommand.self, ReplayCommand.self, DemoCommand.self, KGCommand.self])
}

do {
    var command = try ChorusCLI.parseAsRoot()
    try command.run()
    exit(0)
} catch let failure as CLIFailure {
    Console.error("chorus \(failure.command): error: \(failure.message)")
    exit(1)
} catch {
    let code = ChorusCLI.exitCode(for: error)
    if code.rawValue == ExitCode.validationFailure.rawValue {
        Console.error(ChorusCLI.fullMessage(for: error))
        exit(2)
    }
    ChorusCLI.exit(withError: error)
}
