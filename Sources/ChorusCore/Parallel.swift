#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Data-parallel loops on plain POSIX threads (no Dispatch, so the library carries no extra
/// runtime): a persistent pool (`WorkerPool`), or fresh threads when the pool is busy (another
/// host thread's region, or a nested one). Work is split into contiguous chunks; chunk `t` always
/// goes to worker `t`, so a computation that is deterministic per chunk stays deterministic for a
/// fixed thread count.
public enum Parallel {
    /// The number of CPUs this process may use.
    public static var cpuCount: Int {
        let n = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        return n > 0 ? n : 1
    }

    /// Calls `body(worker, range)` for `threads` contiguous slices of `0..<count`, in parallel.
    /// `body` runs on the calling thread for worker 0.
    public static func forEachChunk(count: Int, threads: Int, _ body: @escaping @Sendable (Int, Range<Int>) -> Void) {
        let workers = max(1, min(threads, count))
        if workers == 1 { body(0, 0..<count); return }
        let chunk = (count + workers - 1) / workers
        if WorkerPool.shared.run(count: count, chunk: chunk, workers: workers, body) { return }
        final class Job: @unchecked Sendable {
            let body: @Sendable (Int, Range<Int>) -> Void
            let worker: Int
            let range: Range<Int>
            init(_ b: @escaping @Sendable (Int, Range<Int>) -> Void, _ w: Int, _ r: Range<Int>) { body = b; worker = w; range = r }
        }
        var handles: [pthread_t] = []
        for w in 1..<workers {
            let lo = w * chunk, hi = min(count, lo + chunk)
            if lo >= hi { continue }
            let job = Unmanaged.passRetained(Job(body, w, lo..<hi)).toOpaque()
            var tid = pthread_t()
            let rc = pthread_create(&tid, nil, { arg in
                let job = Unmanaged<Job>.fromOpaque(arg!).takeRetainedValue()
                job.body(job.worker, job.range)
                return nil
            }, job)
            if rc == 0 {
                handles.append(tid)
            } else {
                // Could not start a thread: do its share here rather than fail.
                let j = Unmanaged<Job>.fromOpaque(job).takeRetainedValue()
                j.body(j.worker, j.range)
            }
        }
        body(0, 0..<min(count, chunk))
        for h in handles { pthread_join(h, nil) }
    }

    /// Calls `body(worker, index)` for every index in `0..<count`, items handed out dynamically
    /// in blocks of `grain` (for uneven work such as users with very different history lengths).
    public static func forEach(count: Int, threads: Int, grain: Int = 64, _ body: @escaping @Sendable (Int, Int) -> Void) {
        let workers = max(1, min(threads, (count + grain - 1) / max(grain, 1)))
        if workers <= 1 { for i in 0..<count { body(0, i) }; return }
        let next = AtomicCounter()
        forEachChunk(count: workers, threads: workers) { worker, _ in
            while true {
                let start = next.fetchAdd(grain)
                if start >= count { break }
                for i in start..<min(count, start + grain) { body(worker, i) }
            }
        }
    }
}

import Synchronization

/// A shared counter for dynamic work distribution.
final class AtomicCounter: Sendable {
    private let value = Atomic<Int>(0)
    func fetchAdd(_ n: Int) -> Int { value.wrappingAdd(n, ordering: .relaxed).oldValue }
}

/// Carries values into worker closures where the caller guarantees the workers only read them, or
/// write disjoint parts (rows of a matrix).
public struct SendableBox<T>: @unchecked Sendable {
    public let value: T
    public init(_ v: T) { value = v }
}
