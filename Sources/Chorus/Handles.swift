import ChorusAgents
import ChorusCore
import Synchronization

/// Handles handed to C (engines, encoders, graphs): opaque tokens, never addresses. The registry
/// maps each token to its retained object; a token is never issued twice, so a freed handle stays
/// dead even when its object's memory is reused by a new engine, and a stale, foreign or
/// wrong-kind value is reported as CHORUS_ERR_INVALID_ARGUMENT instead of being dereferenced.
///
/// One object has one token while it has handles: handing it out again (every
/// `chorus_engine_knowledge_graph` call of an engine returns its one graph) returns that token,
/// counted once more, and `release` drops one count. When the count reaches zero the token is
/// retired for good; the object, if handed out later, gets a new one.
enum Handles {
    private struct Entry {
        /// The object's address, retained once by the registry (`Unmanaged.passRetained`).
        let object: UInt
        var count: Int
    }
    private struct Registry {
        var entries: [UInt: Entry] = [:]
        /// Object address -> its live token.
        var tokens: [UInt: UInt] = [:]
        /// The next token's serial number; tokens are `base + serial * 16`, so they look like
        /// aligned addresses to a host that prints them, and never repeat (2^59 of them).
        var nextSerial: UInt = 1
    }
    private static let registry = Lock(Registry())
    private enum Release { case none, wrongKind, counted, last(UInt) }
    private static let base: UInt = 0x7C40_0000_0000

    static func make(_ object: AnyObject) -> OpaquePointer {
        let address = UInt(bitPattern: Unmanaged.passUnretained(object).toOpaque())
        let token = registry.withLock { r -> UInt in
            if let t = r.tokens[address], var entry = r.entries[t] {
                entry.count += 1
                r.entries[t] = entry
                return t
            }
            let t = base &+ r.nextSerial &* 16
            r.nextSerial += 1
            r.entries[t] = Entry(object: address, count: 1)
            r.tokens[address] = t
            _ = Unmanaged.passRetained(object)  // the registry's own reference, one per token
            return t
        }
        return OpaquePointer(bitPattern: token)!
    }

    /// The live object behind `handle`, checked to be a `T`. The strong reference is taken while
    /// the registry holds the object, so a concurrent free cannot release it under the caller.
    static func object<T: AnyObject>(_ handle: OpaquePointer?, _ name: String) throws(ChorusError) -> T {
        guard let handle else { throw .invalidArgument("\(name) is NULL") }
        let token = UInt(bitPattern: handle)
        let address = registry.withLock { r -> UInt? in
            guard let entry = r.entries[token], let raw = UnsafeMutableRawPointer(bitPattern: entry.object) else { return nil }
            _ = Unmanaged<AnyObject>.fromOpaque(raw).retain()
            return entry.object
        }
        guard let address, let raw = UnsafeMutableRawPointer(bitPattern: address) else {
            throw .invalidArgument("\(name) is not a live chorus_\(name) handle (already freed?)")
        }
        guard let typed = Unmanaged<AnyObject>.fromOpaque(raw).takeRetainedValue() as? T else {
            throw .invalidArgument("\(name) is a handle of another kind, not a chorus_\(name)")
        }
        return typed
    }

    static func engine(_ handle: OpaquePointer?) throws(ChorusError) -> Engine {
        try object(handle, "engine")
    }

    /// Releases one count of a `T` handle. NULL, an unknown or retired token, and a handle of
    /// another kind (`chorus_kg_free` given an engine) are no-ops; the wrong kind is logged. The
    /// object's last release runs outside the lock.
    static func release<T: AnyObject>(_ handle: OpaquePointer?, as _: T.Type, _ name: String) {
        guard let handle else { return }
        let token = UInt(bitPattern: handle)
        let outcome = registry.withLock { r -> Release in
            guard var entry = r.entries[token], let raw = UnsafeMutableRawPointer(bitPattern: entry.object) else { return .none }
            // The registry holds a reference, so the object is alive while the lock is held.
            guard Unmanaged<AnyObject>.fromOpaque(raw).takeUnretainedValue() is T else { return .wrongKind }
            if entry.count > 1 {
                entry.count -= 1
                r.entries[token] = entry
                return .counted
            }
            r.entries[token] = nil
            r.tokens[entry.object] = nil
            return .last(entry.object)
        }
        switch outcome {
        case .none, .counted: break
        case .wrongKind: Log.emit(.warning, "chorus_\(name)_free was given a handle of another kind; nothing was freed")
        case .last(let address):
            if let raw = UnsafeMutableRawPointer(bitPattern: address) { Unmanaged<AnyObject>.fromOpaque(raw).release() }
        }
    }
}

/// Names handed to C (agent names, encoder descriptions) as C strings that live as long as the
/// library: a handful of distinct strings, interned on first use and never freed, so a returned
/// pointer stays valid whatever the engine does next. Lists of agent names likewise, as arrays.
enum InternedCStrings {
    private static let table = Lock<[String: UInt]>([:])

    static func cString(_ name: String) -> UnsafePointer<CChar> {
        let bits = table.withLock { t in
            if let p = t[name] { return p }
            let p = UInt(bitPattern: strdupSwift(name))
            t[name] = p
            return p
        }
        return UnsafePointer(bitPattern: bits)!
    }

    private static let arrays = Lock<[[String]: UInt]>([:])

    /// `names` as an array of interned C strings, itself interned: one list of names (the agents of
    /// a model) always gives the same array, which lives as long as the library.
    static func array(_ names: [String]) -> UnsafePointer<UnsafePointer<CChar>?> {
        let strings = names.map(cString)
        let bits = arrays.withLock { t in
            if let p = t[names] { return p }
            let p = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(strings.count, 1))
            p.initialize(repeating: nil, count: max(strings.count, 1))
            for (i, s) in strings.enumerated() { p[i] = s }
            let bits = UInt(bitPattern: p)
            t[names] = bits
            return bits
        }
        return UnsafePointer(bitPattern: bits)!
    }
}

func strdupSwift(_ s: String) -> UnsafeMutablePointer<CChar> {
    let u = Array(s.utf8CString)
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: u.count)
    p.initialize(from: u, count: u.count)
    return p
}
