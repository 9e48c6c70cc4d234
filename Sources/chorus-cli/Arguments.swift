#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What ends a command early: a usage error (exit 2, with a hint to `--help`) or a failure (exit 1).
enum CLIError: Error {
    case usage(String)
    case failure(String)
}

/// A hand-rolled parser for `--name value`, `--name=value` and `--flag` options: no positional
/// arguments, every option declared up front so a typo is an error, not a silently ignored word.
struct Arguments {
    enum Kind { case value, flag }
    private(set) var values: [String: String] = [:]
    private(set) var flags: Set<String> = []

    /// Parses `args` against `spec` (option name without dashes -> kind).
    /// - Throws: `CLIError.usage` for an unknown option, a missing value or a positional word.
    init(_ args: ArraySlice<String>, spec: [String: Kind]) throws(CLIError) {
        var i = args.startIndex
        while i < args.endIndex {
            let arg = args[i]
            guard arg.hasPrefix("--"), arg.count > 2 else {
                throw .usage("unexpected argument '\(arg)' (options start with --)")
            }
            var name = String(arg.dropFirst(2))
            var inline: String? = nil
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard let kind = spec[name] else {
                let known = spec.keys.sorted().map { "--\($0)" }.joined(separator: ", ")
                throw .usage("unknown option '--\(name)' (known: \(known))")
            }
            switch kind {
            case .flag:
                if inline != nil { throw .usage("option '--\(name)' takes no value") }
                flags.insert(name)
            case .value:
                if let inline {
                    values[name] = inline
                } else {
                    i += 1
                    guard i < args.endIndex else { throw .usage("option '--\(name)' needs a value") }
                    values[name] = args[i]
                }
            }
            i += 1
        }
    }

    func has(_ flag: String) -> Bool { flags.contains(flag) }

    func string(_ name: String) -> String? { values[name] }

    func int(_ name: String, default d: Int, range: ClosedRange<Int>) throws(CLIError) -> Int {
        guard let text = values[name] else { return d }
        guard let v = Int(text), range.contains(v) else {
            throw .usage("--\(name) must be an integer in \(range.lowerBound)...\(range.upperBound), got '\(text)'")
        }
        return v
    }

    func uint64(_ name: String, default d: UInt64) throws(CLIError) -> UInt64 {
        guard let text = values[name] else { return d }
        guard let v = UInt64(text) else { throw .usage("--\(name) must be a non-negative integer, got '\(text)'") }
        return v
    }

    /// A finite number in `range` (open bounds via `lowerOpen`/`upperOpen`).
    func double(_ name: String, default d: Double, range: ClosedRange<Double>,
                lowerOpen: Bool = false, upperOpen: Bool = false) throws(CLIError) -> Double {
        guard let text = values[name] else { return d }
        guard let v = Double(text), v.isFinite, range.contains(v),
              !(lowerOpen && v == range.lowerBound), !(upperOpen && v == range.upperBound) else {
            let lo = lowerOpen ? "(" : "[", hi = upperOpen ? ")" : "]"
            throw .usage("--\(name) must be a number in \(lo)\(range.lowerBound), \(range.upperBound)\(hi), got '\(text)'")
        }
        return v
    }
}

/// Output helpers: stdout through `print` (flushed where progress matters), errors to stderr.
enum Console {
    static func error(_ text: String) {
        fflush(nil)
        let line = text.hasSuffix("\n") ? text : text + "\n"
        var bytes = Array(line.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            bytes = bytes.dropFirst(n)
        }
    }

    /// Writes without a newline and flushes, for progress on one line.
    static func put(_ text: String) {
        print(text, terminator: "")
        fflush(nil)
    }
}
