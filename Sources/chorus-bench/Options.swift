#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failure of a bench command: bad usage (exit 2) or a run-time failure (exit 1).
enum BenchError: Error {
    case usage(String)
    case failure(String)
}

/// `--name value` options, parsed once; every option takes a value.
struct Options {
    private var values: [String: String] = [:]
    private var parseError: String?

    init(_ args: ArraySlice<String>, allowed: Set<String>) {
        var it = args.makeIterator()
        while let a = it.next() {
            guard a.hasPrefix("--"), allowed.contains(String(a.dropFirst(2))) else {
                parseError = "unknown option '\(a)'"; return
            }
            guard let v = it.next() else { parseError = "option '\(a)' needs a value"; return }
            values[String(a.dropFirst(2))] = v
        }
    }

    func check() throws(BenchError) { if let parseError { throw .usage(parseError) } }

    func string(_ name: String) -> String? { values[name] }

    func required(_ name: String) throws(BenchError) -> String {
        guard let v = values[name] else { throw .usage("--\(name) is required") }
        return v
    }

    func int(_ name: String, default d: Int, minimum: Int = 0) throws(BenchError) -> Int {
        guard let s = values[name] else { return d }
        guard let v = Int(s), v >= minimum else { throw .usage("--\(name) wants an integer >= \(minimum), got '\(s)'") }
        return v
    }

    func float(_ name: String, default d: Float) throws(BenchError) -> Float {
        guard let s = values[name] else { return d }
        guard let v = Float(s), v.isFinite, v >= 0 else { throw .usage("--\(name) wants a finite number >= 0, got '\(s)'") }
        return v
    }
}

/// Output helpers and the monotonic clock.
enum BenchIO {
    static func error(_ message: String) {
        let line = Array((message + "\n").utf8)
        _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }

    /// Seconds on CLOCK_MONOTONIC.
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// A JSON string literal.
    static func json(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    /// A JSON number (finite values only; non-finite become null).
    static func json(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        if s.isEmpty { return .nan }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
