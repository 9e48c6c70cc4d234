#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore
import Synchronization

/// Serialises fits: a second fit waits for the first. A fit called from inside a fit's own
/// progress callback (the same thread, the lock already held) would deadlock or trap on the
/// non-recursive lock; it is refused with an error instead.
final class FitGate: Sendable {
    private let lock = Lock(())
    /// The thread running a fit (0: none).
    private let owner = Atomic<UInt>(0)

    func run<T>(_ body: () throws(ChorusError) -> T) throws(ChorusError) -> T {
        let me = UInt(bitPattern: Int(bitPattern: pthread_self()))
        guard owner.load(ordering: .acquiring) != me else {
            throw .invalidArgument("fit cannot be called from inside a fit's own progress callback")
        }
        return try lock.withLock { (_) throws(ChorusError) -> T in
            owner.store(me, ordering: .releasing)
            defer { owner.store(0, ordering: .releasing) }
            return try body()
        }
    }
}
