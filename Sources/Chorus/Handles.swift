import ChorusAgents
import ChorusCore
import Synchronization

/// Handles handed to C (engines, encoders, graphs): retained objects, tracked in a registry so that
/// a stale, foreign or wrong-kind pointer is reported as CHORUS_ERR_INVALID_ARGUMENT instead of
/// being dereferenced.
///
/// The registry counts references per pointer: one object can be handed out more than once (every
/// `chorus_engine_knowledge_graph` call of an engine returns its one graph), and each `make` retains
/// it once more. `release` drops one reference, so a handle stays live until each of its makes is
/// matched by a free; a free beyond that finds no entry and is a no-op.
enum Handles {
    /// Pointer -> number of handles given out for it (always >= 1; an entry at 0 is removed).
    private static let live = Lock<[UInt: Int]>([:])

    static func make(_ object: AnyObject) -> OpaquePointer {
        let p = Unmanaged.passRetained(object).toOpaque()
        live.withLock { $0[UInt(bitPattern: p), default: 0] += 1 }
        return OpaquePointer(p)
    }

    /// The live object behind `handle`, checked to be a `T`. The strong reference is taken while
    /// the registry holds the object, so a concurrent free of another handle to it cannot release
    /// it under the caller.
    static func object<T: AnyObject>(_ handle: OpaquePointer?, _ name: String) throws(ChorusError) -> T {
        guard let handle else { throw .invalidArgument("\(name) is NULL") }
        let raw = UnsafeMutableRawPointer(handle)
        let retained = live.withLock { table -> Bool in
            guard table[UInt(bitPattern: raw)] != nil else { return false }
            _ = Unmanaged<AnyObject>.fromOpaque(raw).retain()
            return true
        }
        guard retained else {
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

    /// Releases one reference made by `make`; NULL, an unknown pointer, or a pointer already freed
    /// as many times as it was made is a no-op. The object's last release runs outside the lock.
    static func release(_ handle: OpaquePointer?) {
        guard let handle else { return }
        let raw = UnsafeMutableRawPointer(handle)
        let key = UInt(bitPattern: raw)
        let held = live.withLock { table -> Bool in
            guard let n = table[key] else { return false }
            table[key] = n > 1 ? n - 1 : nil
            return true
        }
        if held { Unmanaged<AnyObject>.fromOpaque(raw).release() }
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
