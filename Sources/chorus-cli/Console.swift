#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A command that failed after its arguments were accepted (exit 1): `command` is its path
/// ("eval", "kg train") for the message "chorus <command>: error: <message>".
struct CLIFailure: Error {
    let command: String
    let message: String
}

/// Output helpers: stdout through `print` (flushed where progress matters), errors to stderr.
enum Console {
    static func error(_ text: String) {
        put(text.hasSuffix("\n") ? text : text + "\n", toStderr: true)
    }

    /// Writes without a newline and flushes, for progress on one line (on stderr with `toStderr`).
    static func put(_ text: String, toStderr: Bool = false) {
        if toStderr {
            fflush(nil)
            var bytes = Array(text.utf8)[...]
            while !bytes.isEmpty {
                let n = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                bytes = bytes.dropFirst(n)
            }
            return
        }
        print(text, terminator: "")
        fflush(nil)
    }
}

/// What ends a command's work early once its arguments were accepted; the command's run() turns
/// it into a CLIFailure naming the command.
enum CLIError: Error {
    case failure(String)
}
