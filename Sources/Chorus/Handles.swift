import ChorusAgents
import ChorusCore
import Synchronization

/// Handles handed to C (engines, encoders): retained objects, tracked in a registry so that a stale,
/// foreign or wrong-kind pointer is reported as CHORUS_ERR_INVALID_ARGUMENT instead of being
/// dereferenced.
enum Handles {
    private static let live = Mutex<Set<UInt>>([])

    static func make(_ object: AnyObject) -> OpaquePointer {
        let p = Unmanaged.passRetained(object).toOpaque()
        live.withLock { _ = $0.insert(UInt(bitPattern: p)) }
        return OpaquePointer(p)
    }

    /// The live object behind `handle`, checked to be a `T`.
    static func object<T: AnyObject>(_ handle: OpaquePointer?, _ name: String) throws(ChorusError) -> T {
        guard let handle else { throw .invalidArgument("\(name) is NULL") }
        let raw = UnsafeMutableRawPointer(handle)
        guard live.withLock({ $0.contains(UInt(bitPattern: raw)) }) else {
            throw .invalidArgument("\(name) is not a live chorus_\(name) handle (already freed?)")
        }
        guard let object = Unmanaged<AnyObject>.fromOpaque(raw).takeUnretainedValue() as? T else {
            throw .invalidArgument("\(name) is a handle of another kind, not a chorus_\(name)")
        }
        return object
    }

    static func engine(_ handle: OpaquePointer?) throws(ChorusError) -> Engine {
        try object(handle, "engine")
    }

    /// Releases a handle made by `make`; NULL or an unknown pointer is a no-op.
    static func release(_ handle: OpaquePointer?) {
        guard let handle else { return }
        let raw = UnsafeMutableRawPointer(handle)
        let removed = live.withLock { $0.remove(UInt(bitPattern: raw)) != nil }
        if removed { Unmanaged<AnyObject>.fromOpaque(raw).release() }
    }
}

/// Names handed to C (agent names, encoder descriptions) as C strings that live as long as the
/// library: a handful of distinct strings, interned on first use and never freed, so a returned
/// pointer stays valid whatever the engine does next.
enum InternedCStrings {
    private static let table = Mutex<[String: UInt]>([:])

    static func cString(_ name: String) -> UnsafePointer<CChar> {
        let bits = table.withLock { t in
            if let p = t[name] { return p }
            let p = UInt(bitPattern: strdupSwift(name))
            t[name] = p
            return p
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
