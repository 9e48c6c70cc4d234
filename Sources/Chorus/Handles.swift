import ChorusAgents
import ChorusCore
import Synchronization

/// Engine handles handed to C: retained boxes, tracked in a registry so that a stale or foreign
/// pointer is reported as CHORUS_ERR_INVALID_ARGUMENT instead of being dereferenced.
enum Handles {
    private static let live = Mutex<Set<UInt>>([])

    static func make(_ engine: Engine) -> OpaquePointer {
        let p = Unmanaged.passRetained(engine).toOpaque()
        live.withLock { _ = $0.insert(UInt(bitPattern: p)) }
        return OpaquePointer(p)
    }

    static func engine(_ handle: OpaquePointer?) throws(ChorusError) -> Engine {
        guard let handle else { throw .invalidArgument("engine is NULL") }
        let raw = UnsafeMutableRawPointer(handle)
        guard live.withLock({ $0.contains(UInt(bitPattern: raw)) }) else {
            throw .invalidArgument("engine is not a live chorus_engine handle (already freed?)")
        }
        return Unmanaged<Engine>.fromOpaque(raw).takeUnretainedValue()
    }

    static func release(_ handle: OpaquePointer?) {
        guard let handle else { return }
        let raw = UnsafeMutableRawPointer(handle)
        let removed = live.withLock { $0.remove(UInt(bitPattern: raw)) != nil }
        if removed { Unmanaged<Engine>.fromOpaque(raw).release() }
    }
}

/// Agent names as C strings that live as long as the library.
enum AgentNames {
    nonisolated(unsafe) static let cStrings: [String: UnsafePointer<CChar>] = {
        var d: [String: UnsafePointer<CChar>] = [:]
        for n in Engine.agentOrder { d[n] = UnsafePointer(strdupSwift(n)) }
        return d
    }()
}

func strdupSwift(_ s: String) -> UnsafeMutablePointer<CChar> {
    let u = Array(s.utf8CString)
    let p = UnsafeMutablePointer<CChar>.allocate(capacity: u.count)
    p.initialize(from: u, count: u.count)
    return p
}
