/// Every failure the core can report. Each case maps to one pinned `chorus_status` in the C ABI;
/// the associated message says what was wrong, in words a host developer can act on.
public enum ChorusError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidArgument(String)
    case notFound(String)
    case bufferTooSmall(String)
    case notFitted(String)
    case io(String)
    case format(String)
    case unsupportedVersion(String)
    case cancelled(String)
    case outOfMemory(String)
    case internalError(String)

    public var message: String {
        switch self {
        case .invalidArgument(let m), .notFound(let m), .bufferTooSmall(let m), .notFitted(let m),
             .io(let m), .format(let m), .unsupportedVersion(let m), .cancelled(let m),
             .outOfMemory(let m), .internalError(let m):
            return m
        }
    }

    public var description: String { message }
}
