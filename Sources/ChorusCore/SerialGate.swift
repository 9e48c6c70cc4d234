#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// Serialises one kind of long call on one object (an engine's fits, a graph's trainings): a
/// second call waits for the first. The same call made from inside the running call's own
/// progress callback (the same thread, the lock already held) would deadlock or trap on the
/// non-recursive lock, taking the host down; it is refused with an error instead.
public final class SerialGate: Sendable {
    private let lock = Lock(())
    /// The thread running a call (0: none).
    private let owner = Atomic<UInt>(0)
    /// The call's name in the error ("fit", "train").
    private let call: String

    public init(call: String) { self.call = call }

    /// Runs `body` alone.
    /// - Throws: `.invalidArgument` when called from inside `body` on the same thread; what
    ///   `body` throws.
    public func run<T>(_ body: () throws(ChorusError) -> T) throws(ChorusError) -> T {
        let me = UInt(bitPattern: Int(bitPattern: pthread_self()))
        guard owner.load(ordering: .acquiring) != me else {
            throw .invalidArgument("\(call) cannot be called from inside a \(call)'s own progress callback")
        }
        return try lock.withLock { (_) throws(ChorusError) -> T in
            owner.store(me, ordering: .releasing)
            defer { owner.store(0, ordering: .releasing) }
            return try body()
        }
    }
}
