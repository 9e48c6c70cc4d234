import Synchronization

/// The library's mutual-exclusion lock: Swift's `Mutex` (a futex lock on Linux), plus one atomic
/// that makes every hand-over of the lock visible to ThreadSanitizer.
///
/// Why not `Mutex` alone: `Mutex.withLock` takes and releases the futex with an atomic
/// compare-exchange inlined into our code (TSan sees it) only when the lock is free; when it is
/// contended, the waiting and the hand-over happen in `_lockSlow` / `_unlockSlow` inside
/// `libswiftSynchronization.so` (`FUTEX_LOCK_PI` / `FUTEX_UNLOCK_PI` system calls), which TSan does
/// not instrument. So under contention TSan sees no happens-before edge from one holder to the
/// next and reports the state the lock guards as raced (`swift test --sanitize=thread` and the C
/// stress test did, on `Engine.state` and the interned-name tables). Here every holder ends its
/// critical section with a release store to `handOver`, and the next one begins with an acquire
/// load of it, both still under the lock: TSan pairs them, so accesses under the lock are ordered
/// for it as they are in fact. Outside TSan the pair costs two plain moves on x86-64 (a release
/// store and an acquire load need no fence) and changes nothing else.
public final class Lock<Value>: @unchecked Sendable {
    private let mutex: Mutex<Value>
    private let handOver = Atomic<UInt32>(0)

    public init(_ initialValue: consuming sending Value) {
        mutex = Mutex(initialValue)
    }

    /// Runs `body` with exclusive access to the value (as `Mutex.withLock`).
    @inline(__always)
    public func withLock<Result, E: Error>(_ body: (inout sending Value) throws(E) -> sending Result) throws(E) -> sending Result {
        try mutex.withLock { (value: inout sending Value) throws(E) -> sending Result in
            _ = handOver.load(ordering: .acquiring)
            defer { handOver.store(0, ordering: .releasing) }
            return try body(&value)
        }
    }
}
