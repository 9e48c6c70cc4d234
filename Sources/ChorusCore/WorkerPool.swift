#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CKernels
import Synchronization

/// The persistent threads behind `Parallel.forEachChunk`: starting a pthread per parallel region
/// cost more than the region itself for short encoder calls (dozens of regions per call).
///
/// Workers are created lazily (as many as the largest request asked for, minus the caller) and
/// park on a condition variable after a short spin. One region runs at a time: `run` only
/// try-locks the pool, so a second host thread, or a region nested inside a running one, gets
/// `false` back and the caller falls back to fresh threads; nothing ever waits for the pool.
/// Chunk `w` always runs on pool thread `w` (chunk 0 on the caller), as with fresh threads.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// Spin iterations (each a CPU pause, about 40 ns on the EPYC we measured) before a worker or
    /// the caller sleeps: ~20 µs covers the gap between two regions of an encoder layer and costs
    /// little on a busy machine.
    private static let spins = 500

    private let useLock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let done = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Bumped (under `mutex`) once per region; workers watch it.
    private let generation = Atomic<Int>(0)
    /// Workers of the current region still running.
    private let remaining = Atomic<Int>(0)
    /// Pool threads started so far (touched only with `useLock` held).
    private var started = 0
    // The current region (written with `useLock` and `mutex` held, read by workers under `mutex`).
    private var body: (@Sendable (Int, Range<Int>) -> Void)?
    private var count = 0, chunk = 0, workers = 0

    private init() {
        pthread_mutex_init(useLock, nil)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        pthread_cond_init(done, nil)
    }

    /// Runs `body(w, range)` for the `workers` chunks of `0..<count` (`chunk` long) on the pool, chunk
    /// 0 on the calling thread; returns false, having run nothing, when the pool is busy or cannot
    /// start enough threads.
    func run(count: Int, chunk: Int, workers: Int, _ body: @escaping @Sendable (Int, Range<Int>) -> Void) -> Bool {
        guard pthread_mutex_trylock(useLock) == 0 else { return false }
        defer { pthread_mutex_unlock(useLock) }
        while started < workers - 1 {
            guard startThread(index: started + 1) else { return false }
            started += 1
        }
        // Only chunks that are not empty take part (the last ones may be, for small counts).
        let active = (count + chunk - 1) / chunk
        pthread_mutex_lock(mutex)
        self.body = body
        self.count = count
        self.chunk = chunk
        self.workers = active
        remaining.store(active - 1, ordering: .relaxed)
        generation.add(1, ordering: .releasing)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)

        body(0, 0..<min(count, chunk))

        var spin = 0
        while remaining.load(ordering: .acquiring) != 0 && spin < WorkerPool.spins { ck_cpu_relax(); spin += 1 }
        if remaining.load(ordering: .acquiring) != 0 {
            pthread_mutex_lock(mutex)
            while remaining.load(ordering: .acquiring) != 0 { pthread_cond_wait(done, mutex) }
            pthread_mutex_unlock(mutex)
        }
        pthread_mutex_lock(mutex)
        self.body = nil  // release the closure's captures now, not at the next region
        pthread_mutex_unlock(mutex)
        return true
    }

    private func startThread(index: Int) -> Bool {
        // The thread may first run after the region it was started for is published: it must
        // know the generation before that one.
        final class Start {
            let pool: WorkerPool, index: Int, seen: Int
            init(_ p: WorkerPool, _ i: Int, _ g: Int) { pool = p; index = i; seen = g }
        }
        let arg = Unmanaged.passRetained(Start(self, index, generation.load(ordering: .relaxed))).toOpaque()
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        pthread_attr_setdetachstate(&attr, Int32(PTHREAD_CREATE_DETACHED))
        defer { pthread_attr_destroy(&attr) }
        var tid = pthread_t()
        let rc = pthread_create(&tid, &attr, { arg in
            let s = Unmanaged<Start>.fromOpaque(arg!).takeRetainedValue()
            s.pool.workerLoop(index: s.index, seen: s.seen)
            return nil
        }, arg)
        if rc != 0 { Unmanaged<Start>.fromOpaque(arg).release() }
        return rc == 0
    }

    private func workerLoop(index: Int, seen start: Int) -> Never {
        var seen = start
        while true {
            var spin = 0
            while generation.load(ordering: .acquiring) == seen && spin < WorkerPool.spins { ck_cpu_relax(); spin += 1 }
            pthread_mutex_lock(mutex)
            while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(wake, mutex) }
            seen = generation.load(ordering: .acquiring)
            let job = index < workers ? body : nil
            let lo = index * chunk, hi = min(count, lo + chunk)
            pthread_mutex_unlock(mutex)
            guard let job else { continue }
            job(index, lo..<hi)
            if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_signal(done)
                pthread_mutex_unlock(mutex)
            }
        }
    }
}
