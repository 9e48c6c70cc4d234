#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CChorus
import ChorusCore

/// A C string per thread: a malloc'd copy, replaced by each `set` on that thread (the previous one
/// is freed then) and freed when the thread exits. Behind chorus_last_error() and the sentence
/// chorus_engine_explain lends out.
struct ThreadLocalCString: Sendable {
    private let key: pthread_key_t

    init() {
        var k = pthread_key_t()
        pthread_key_create(&k) { p in free(p) }
        key = k
    }

    /// Makes a NUL-terminated copy of `bytes` this thread's string, frees the previous one, and
    /// returns the copy (valid until the next `set` on this thread). Out of memory: nil, and the
    /// previous string stays.
    @discardableResult
    func set(_ bytes: [UInt8]) -> UnsafePointer<CChar>? {
        guard let raw = malloc(bytes.count + 1) else { return nil }
        let copy = raw.assumingMemoryBound(to: UInt8.self)
        bytes.withUnsafeBufferPointer { b in
            if let base = b.baseAddress { copy.update(from: base, count: b.count) }
        }
        copy[bytes.count] = 0
        let old = pthread_getspecific(key)
        pthread_setspecific(key, copy)
        free(old)
        return UnsafeRawPointer(copy).assumingMemoryBound(to: CChar.self)
    }

    /// This thread's string, if `set` was called on it.
    var current: UnsafePointer<CChar>? {
        pthread_getspecific(key).map { UnsafePointer($0.assumingMemoryBound(to: CChar.self)) }
    }
}

/// The thread-local last-error message behind chorus_last_error(), replaced on each failure.
enum ErrorState {
    static let message = ThreadLocalCString()
    static let empty: StaticString = ""

    static func set(_ message: String) {
        self.message.set(Array(message.utf8))
    }

    static var current: UnsafePointer<CChar> {
        message.current ?? UnsafeRawPointer(empty.utf8Start).assumingMemoryBound(to: CChar.self)
    }
}

/// Pinned status values (include/chorus.h).
enum Status {
    static let ok: chorus_status = 0
    static let invalidArgument: chorus_status = -1
    static let notFound: chorus_status = -2
    static let bufferTooSmall: chorus_status = -3
    static let notFitted: chorus_status = -4
    static let io: chorus_status = -5
    static let format: chorus_status = -6
    static let unsupportedVersion: chorus_status = -7
    static let cancelled: chorus_status = -8
    static let outOfMemory: chorus_status = -9
    static let internalError: chorus_status = -10

    static func of(_ e: ChorusError) -> chorus_status {
        switch e {
        case .invalidArgument: return invalidArgument
        case .notFound: return notFound
        case .bufferTooSmall: return bufferTooSmall
        case .notFitted: return notFitted
        case .io: return io
        case .format: return format
        case .unsupportedVersion: return unsupportedVersion
        case .cancelled: return cancelled
        case .outOfMemory: return outOfMemory
        case .internalError: return internalError
        }
    }
}

/// Runs one ABI call: maps a thrown `ChorusError` to its status and stores its message. A successful
/// call leaves the last error in place (chorus_last_error() reports the last *failed* call).
@inline(__always)
func abiCall(_ function: StaticString, _ body: () throws(ChorusError) -> Void) -> chorus_status {
    do {
        try body()
        return Status.ok
    } catch {
        ErrorState.set("\(function): \(error.message)")
        return Status.of(error)
    }
}

/// Argument checks used before any core call: each throws `.invalidArgument` naming the argument.
enum Check {
    static func notNull<T>(_ p: T?, _ name: String) throws(ChorusError) -> T {
        guard let p else { throw .invalidArgument("\(name) is NULL") }
        return p
    }

    /// A C `size_t` count arrives as `Int`; values above Int.max wrap negative and are rejected here.
    static func count(_ n: Int, _ name: String) throws(ChorusError) -> Int {
        guard n >= 0 else { throw .invalidArgument("\(name) = \(UInt(bitPattern: n)) is too large") }
        return n
    }

    /// A capacity above Int.max is as good as unlimited.
    static func capacity(_ n: Int) -> Int { n < 0 ? Int.max : n }

    /// n * k without overflow.
    static func product(_ a: Int, _ b: Int, _ what: String) throws(ChorusError) -> Int {
        let (r, o) = a.multipliedReportingOverflow(by: b)
        guard !o else { throw .invalidArgument("\(what) overflows") }
        return r
    }

    /// A borrowed C string as Swift text: at most `maxBytes` (a `Limits` entry; the scan stops
    /// there, so an unterminated or huge argument costs no more) and valid UTF-8, never repaired:
    /// a repaired name could merge with another (two invalid scenario names would both become
    /// "\u{FFFD}").
    static func text(_ p: UnsafePointer<CChar>, _ name: @autoclosure () -> String, maxBytes: Int) throws(ChorusError) -> String {
        let n = strnlen(p, maxBytes + 1)
        guard n <= maxBytes else { throw .invalidArgument("\(name()) is longer than \(maxBytes) bytes") }
        let bytes = UnsafeRawBufferPointer(start: p, count: n)
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw .invalidArgument("\(name()) is not valid UTF-8 (from byte \(firstInvalidUTF8(bytes)))")
        }
        return s
    }

    /// A required C string argument (not NULL), as `text`.
    static func string(_ p: UnsafePointer<CChar>?, _ name: String, maxBytes: Int) throws(ChorusError) -> String {
        try text(try notNull(p, name), name, maxBytes: maxBytes)
    }

    /// A file path: not NULL, not empty, valid UTF-8, at most `Limits.maxPathBytes`.
    static func path(_ p: UnsafePointer<CChar>?, _ name: String = "path") throws(ChorusError) -> String {
        let s = try string(p, name, maxBytes: Limits.maxPathBytes)
        guard !s.isEmpty else { throw .invalidArgument("\(name) is empty") }
        return s
    }

    /// `n` C strings (`texts[i]` never NULL), each as `text`.
    static func strings(_ texts: UnsafePointer<UnsafePointer<CChar>?>, _ n: Int, _ name: String, maxBytes: Int) throws(ChorusError) -> [String] {
        var strings = [String]()
        strings.reserveCapacity(n)
        for i in 0..<n {
            guard let p = texts[i] else { throw .invalidArgument("\(name)[\(i)] is NULL") }
            strings.append(try text(p, "\(name)[\(i)]", maxBytes: maxBytes))
        }
        return strings
    }

    /// Where a byte sequence that is not valid UTF-8 goes wrong (for the error message).
    private static func firstInvalidUTF8(_ bytes: UnsafeRawBufferPointer) -> Int {
        var offset = 0
        var it = bytes.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&it) {
            case .scalarValue(let s): offset += UTF8.width(s)
            case .emptyInput, .error: return offset
            }
        }
    }
}
