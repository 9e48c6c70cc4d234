#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import ChorusCore

/// The persistent pool behind `Parallel`: same chunks as fresh threads, and it never blocks when
/// used from several host threads at once or from inside one of its own regions.
@Suite struct ParallelTests {
    /// Cells that several threads write, each its own indices, through the buffer's pointer. (A
    /// `var` array would not do: `cells.v[i] = x` is a modify access of the whole array, so threads
    /// writing different cells at once break Swift's exclusivity rule; ThreadSanitizer reports it.)
    final class Cells: @unchecked Sendable {
        let v: UnsafeMutableBufferPointer<Int>
        init(_ n: Int) {
            v = .allocate(capacity: n)
            v.initialize(repeating: -1)
        }
        deinit { v.deallocate() }
    }

    @Test func chunkGoesToItsWorkerEveryTime() {
        for threads in [2, 3, 5] {
            for _ in 0..<200 {
                let owner = Cells(101)
                Parallel.forEachChunk(count: 101, threads: threads) { w, r in for i in r { owner.v[i] = w } }
                let chunk = (101 + threads - 1) / threads
                #expect(owner.v.indices.allSatisfy { owner.v[$0] == $0 / chunk })
            }
        }
    }

    @Test func nestedRegionsComplete() {
        let hits = Cells(64)
        Parallel.forEachChunk(count: 8, threads: 2) { _, outer in
            for o in outer {
                Parallel.forEachChunk(count: 8, threads: 2) { _, inner in for i in inner { hits.v[o * 8 + i] = 1 } }
            }
        }
        #expect(hits.v.allSatisfy { $0 == 1 })
    }

    @Test func severalHostThreadsAtOnce() {
        final class Host: @unchecked Sendable { let sums = Cells(4) }
        final class Arg { let host: Host, t: Int; init(_ h: Host, _ t: Int) { host = h; self.t = t } }
        let host = Host()
        var tids: [pthread_t] = []
        for t in 0..<4 {
            let arg = Unmanaged.passRetained(Arg(host, t)).toOpaque()
            var tid = pthread_t()
            #expect(pthread_create(&tid, nil, { p in
                let a = Unmanaged<Arg>.fromOpaque(p!).takeRetainedValue()
                let (host, t) = (a.host, a.t)
                var total = 0
                for _ in 0..<300 {
                    let part = Cells(2)
                    Parallel.forEachChunk(count: 1000, threads: 2) { w, r in part.v[w] = r.reduce(0, +) }
                    total += part.v[0] + part.v[1]
                }
                host.sums.v[t] = total
                return nil
            }, arg) == 0)
            tids.append(tid)
        }
        for t in tids { pthread_join(t, nil) }
        #expect(host.sums.v.allSatisfy { $0 == 300 * 499_500 })
    }
}
