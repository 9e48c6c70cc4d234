#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import ChorusCore
import CKernels

@Suite struct KernelTests {
    @Test func dotAndAxpyMatchNaiveLoops() {
        var rng = SeededRandom(seed: 3)
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 64, 100] {
            let a = (0..<n).map { _ in rng.nextFloat() - 0.5 }, b = (0..<n).map { _ in rng.nextFloat() - 0.5 }
            let naive = zip(a, b).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            let d = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in Kernels.dot(pa.baseAddress ?? UnsafePointer(bitPattern: 8)!, pb.baseAddress ?? UnsafePointer(bitPattern: 8)!, n) } }
            #expect(abs(d - naive) <= 1e-5 * Float(max(n, 1)))
            var y = b
            a.withUnsafeBufferPointer { pa in y.withUnsafeMutableBufferPointer { py in if n > 0 { Kernels.axpy(0.5, pa.baseAddress!, py.baseAddress!, n) } } }
            for i in 0..<n { #expect(abs(y[i] - (b[i] + 0.5 * a[i])) <= 1e-6) }
        }
    }

    @Test func gramMatchesDefinition() throws {
        let y = try FloatMatrix(rows: 5, cols: 3)
        for i in 0..<15 { y.base[i] = Float(i % 7) - 2 }
        let g = try FloatMatrix(rows: 3, cols: 3)
        Kernels.gram(y, lambda: 0.5, into: g)
        for r in 0..<3 { for c in 0..<3 {
            var s: Float = r == c ? 0.5 : 0
            for i in 0..<5 { s += y.row(i)[r] * y.row(i)[c] }
            #expect(abs(g.row(r)[c] - s) < 1e-4)
        } }
    }

    @Test func topKMatchesSortingAndSkipsMaskedEntries() {
        var rng = SeededRandom(seed: 11)
        var s = (0..<500).map { _ in Float(rng.nextInt(below: 50)) }  // many ties
        s[3] = -.infinity; s[4] = .nan
        let top = s.withUnsafeBufferPointer { TopK.select($0, k: 20) }
        let expected = s.indices.filter { s[$0] > -.infinity }
            .sorted { s[$0] > s[$1] || (s[$0] == s[$1] && $0 < $1) }.prefix(20)
        #expect(top.map { Int($0.index) } == Array(expected))
        let few: [Float] = [1, -.infinity, 2]
        #expect(few.withUnsafeBufferPointer { TopK.select($0, k: 10) }.map(\.index) == [2, 0])
        // Every size and k around the edges, ties, NaN, both infinities, sorted and reversed input.
        for n in [0, 1, 2, 7, 64, 301, 5003] {
            for k in [0, 1, 3, 10, 64, 400] {
                for order in 0..<3 {
                    var v = (0..<n).map { _ in Float(rng.nextInt(below: 13)) - 4 }
                    for j in v.indices where rng.nextInt(below: 9) == 0 { v[j] = [Float.nan, -.infinity, .infinity][rng.nextInt(below: 3)] }
                    if order == 1 { v.sort { $0 < $1 } } else if order == 2 { v.sort { $0 > $1 } }
                    let got = v.withUnsafeBufferPointer { TopK.select($0, k: k) }
                    let want = v.indices.filter { v[$0] > -.infinity }
                        .sorted { v[$0] > v[$1] || (v[$0] == v[$1] && $0 < $1) }.prefix(k)
                    #expect(got.map { Int($0.index) } == Array(want), "n \(n), k \(k), order \(order)")
                    #expect(got.map(\.score).elementsEqual(want.map { v[$0] }))
                }
            }
        }
    }

    /// Scores offered with their indices in any order, in chunks (an inverted-file index's lists),
    /// keep the same top k as selecting over the whole vector: ties to the lower index whatever
    /// comes first; NaN and -infinity never kept.
    @Test func heapOfferWithIndicesIsOrderIndependent() {
        var rng = SeededRandom(seed: 12)
        for n in [1, 5, 64, 301] {
            for k in [1, 3, 10, 64, 400] {
                var v = (0..<n).map { _ in Float(rng.nextInt(below: 7)) - 2 }  // many ties
                for j in v.indices where rng.nextInt(below: 9) == 0 { v[j] = [Float.nan, -.infinity, .infinity][rng.nextInt(below: 3)] }
                let want = v.withUnsafeBufferPointer { TopK.select($0, k: k) }
                for _ in 0..<4 {
                    var order = Array(0..<n)
                    order.shuffle(using: &rng)
                    let heap = TopK.Heap(k: min(k, n))
                    var start = 0
                    while start < n {
                        let end = min(n, start + 1 + rng.nextInt(below: 40))
                        let scores = order[start..<end].map { v[$0] }, ids = order[start..<end].map { Int32($0) }
                        scores.withUnsafeBufferPointer { s in ids.withUnsafeBufferPointer { heap.offer(s.baseAddress!, count: s.count, indices: $0.baseAddress!) } }
                        start = end
                    }
                    let got = heap.sorted()
                    #expect(got.map(\.index) == want.map(\.index), "n \(n), k \(k)")
                    #expect(got.map(\.score.bitPattern) == want.map(\.score.bitPattern))
                }
            }
        }
    }

    @Test func parallelForEachVisitsEveryIndexOnce() {
        // Written through a pointer: threads updating different elements of one `var` array would
        // each make a modify access of the whole array (an exclusivity violation TSan reports).
        final class Hits: @unchecked Sendable {
            let v = UnsafeMutableBufferPointer<Int>.allocate(capacity: 1000)
            init() { v.initialize(repeating: 0) }
            deinit { v.deallocate() }
        }
        let hits = Hits()
        Parallel.forEach(count: 1000, threads: 4, grain: 7) { _, i in hits.v[i] += 1 }
        #expect(hits.v.allSatisfy { $0 == 1 })
        let chunks = Hits()
        Parallel.forEachChunk(count: 1000, threads: 3) { _, r in for i in r { chunks.v[i] += 1 } }
        #expect(chunks.v.allSatisfy { $0 == 1 })
    }

    @Test func jemallocBuffersAreAlignedZeroedAndCounted() throws {
        let m = try FloatMatrix(rows: 1000, cols: 256)
        #expect(UInt(bitPattern: m.base) % 64 == 0)
        #expect(m.buffer.allSatisfy { $0 == 0 })
        #expect(Allocator.allocationSize(m.base) >= 1_024_000)
        // Other tests allocate and free concurrently, so only the live buffer is a lower bound.
        #expect(Allocator.stats().allocated >= 1_024_000)
        _ = m
    }

    @Test func seededRandomIsReproducible() {
        var a = SeededRandom(seed: 9), b = SeededRandom(seed: 9), c = SeededRandom(seed: 10)
        let xa = (0..<5).map { _ in a.next() }, xb = (0..<5).map { _ in b.next() }, xc = (0..<5).map { _ in c.next() }
        #expect(xa == xb); #expect(xa != xc)
        for _ in 0..<1000 { let f = a.nextFloat(); #expect(f >= 0 && f < 1) }
    }
}

@Suite struct SymvTests {
    @Test func symvMatchesNaiveProductForEveryShape() throws {
        var rng = SeededRandom(seed: 4)
        for n in [1, 3, 8, 13, 32, 40, 64, 71, 100] {
            let m = try FloatMatrix(rows: n, cols: n)
            for r in 0..<n { for c in r..<n { let v = rng.nextFloat() - 0.5; m.row(r)[c] = v; m.row(c)[r] = v } }
            let x = (0..<n).map { _ in rng.nextFloat() - 0.5 }
            var y = [Float](repeating: 0, count: n)
            x.withUnsafeBufferPointer { px in y.withUnsafeMutableBufferPointer { py in Kernels.symv(m.base, px.baseAddress!, py.baseAddress!, n) } }
            for r in 0..<n {
                var s: Float = 0
                for c in 0..<n { s += m.row(r)[c] * x[c] }
                #expect(abs(y[r] - s) < 1e-4, "n \(n) row \(r)")
            }
        }
    }
}

@Suite struct RowDotsTests {
    /// Half-precision rows: the AVX-512 path (widths a multiple of 16, on CPUs that have it), the
    /// AVX2 path and the portable tails, every shape of m and k, against the dots of the rounded rows.
    @Test func halfRowDotsMatchNaiveDots() {
        var rng = SeededRandom(seed: 9)
        for (m, k) in [(1, 16), (3, 32), (4, 16), (9, 16), (17, 64), (5, 384), (100, 64), (7, 8), (13, 24), (6, 5)] {
            let half = (0..<(m * k)).map { _ in Float16(rng.nextFloat() - 0.5).bitPattern }, x = (0..<k).map { _ in rng.nextFloat() - 0.5 }
            var y = [Float](repeating: .nan, count: m)
            half.withUnsafeBufferPointer { pa in x.withUnsafeBufferPointer { px in y.withUnsafeMutableBufferPointer { py in
                ck_row_dots_f16(pa.baseAddress!, m, k, px.baseAddress!, py.baseAddress!)
            } } }
            for i in 0..<m {
                var s: Double = 0
                for j in 0..<k { s += Double(Float(Float16(bitPattern: half[i * k + j]))) * Double(x[j]) }
                #expect(abs(Double(y[i]) - s) < 1e-4, "m \(m) k \(k) row \(i)")
            }
        }
    }

    /// Both the AVX2 path (on CPUs that have it) and the portable tail: every shape of m and k.
    @Test func rowDotsMatchNaiveDots() {
        var rng = SeededRandom(seed: 8)
        for (m, k) in [(1, 8), (3, 8), (4, 8), (9, 16), (17, 64), (100, 64), (13, 5), (16, 12), (7, 1)] {
            let a = (0..<(m * k)).map { _ in rng.nextFloat() - 0.5 }, x = (0..<k).map { _ in rng.nextFloat() - 0.5 }
            var y = [Float](repeating: .nan, count: m)
            a.withUnsafeBufferPointer { pa in x.withUnsafeBufferPointer { px in y.withUnsafeMutableBufferPointer { py in
                Kernels.rowDots(pa.baseAddress!, m: m, k: k, px.baseAddress!, into: py.baseAddress!)
            } } }
            for i in 0..<m {
                var s: Float = 0
                for j in 0..<k { s += a[i * k + j] * x[j] }
                #expect(abs(y[i] - s) < 1e-5, "m \(m) k \(k) row \(i)")
            }
        }
    }

    /// The batch scans give every query exactly (bit for bit) what a scan of its own gives, whatever
    /// the block size (a block of 4 rows, a block not dividing m, one block for all rows), in single
    /// and in half precision.
    @Test func batchScansEqualOneScanPerQuery() {
        var rng = SeededRandom(seed: 11)
        for (m, k) in [(1, 8), (7, 8), (37, 64), (101, 24), (13, 5), (50, 384), (9, 12), (41, 65), (3, 32), (6, 16)] {
            let a = (0..<(m * k)).map { _ in rng.nextFloat() - 0.5 }
            let half = a.map { Float16($0).bitPattern }
            let queries = (0..<5).map { _ in (0..<k).map { _ in rng.nextFloat() - 0.5 } }
            for blockBytes in [1, 4 * k * 4 + 3, 1 << 30] {
                for f16 in [false, true] {
                    var single = [[Float]](repeating: [Float](repeating: .nan, count: m), count: queries.count)
                    var batch = single
                    for q in queries.indices {
                        single[q].withUnsafeMutableBufferPointer { y in queries[q].withUnsafeBufferPointer { x in
                            if f16 { half.withUnsafeBufferPointer { ck_row_dots_f16($0.baseAddress!, m, k, x.baseAddress!, y.baseAddress!) } }
                            else { a.withUnsafeBufferPointer { ck_row_dots($0.baseAddress!, m, k, x.baseAddress!, y.baseAddress!) } }
                        } }
                    }
                    let xs = queries.map { q in let p = UnsafeMutablePointer<Float>.allocate(capacity: k); p.initialize(from: q, count: k); return p }
                    let ys = queries.map { _ in UnsafeMutablePointer<Float>.allocate(capacity: m) }
                    if f16 {
                        half.withUnsafeBufferPointer { Kernels.rowDotsF16Batch($0.baseAddress!, m: m, k: k, xs.map { UnsafePointer($0) }, into: ys, blockBytes: blockBytes) }
                    } else {
                        a.withUnsafeBufferPointer { Kernels.rowDotsBatch($0.baseAddress!, m: m, k: k, xs.map { UnsafePointer($0) }, into: ys, blockBytes: blockBytes) }
                    }
                    for q in queries.indices { batch[q] = Array(UnsafeBufferPointer(start: ys[q], count: m)) }
                    xs.forEach { $0.deallocate() }; ys.forEach { $0.deallocate() }
                    #expect(batch.map { $0.map(\.bitPattern) } == single.map { $0.map(\.bitPattern) }, "m \(m) k \(k) block \(blockBytes) f16 \(f16)")
                }
            }
        }
    }

    /// The vectorised min/max equals a scalar loop at every length around the vector width, NaNs
    /// skipped, infinities kept, and (+inf, -inf) for nothing to compare.
    @Test func minMaxMatchesAScalarLoop() {
        var rng = SeededRandom(seed: 12)
        for n in [0, 1, 7, 8, 15, 16, 17, 33, 100] {
            for special in [Float.nan, .infinity, -.infinity, 0] {
                var x = (0..<n).map { _ in rng.nextFloat() * 200 - 100 }
                if n > 0 { x[rng.nextInt(below: n)] = special }
                var lo = Float.infinity, hi = -Float.infinity
                for v in x where !v.isNaN { lo = Swift.min(lo, v); hi = Swift.max(hi, v) }
                let got = x.withUnsafeBufferPointer { Kernels.minMax($0) }
                #expect(got.lo == lo && got.hi == hi, "n \(n) special \(special)")
            }
        }
        let nans = [Float](repeating: .nan, count: 20)
        let got = nans.withUnsafeBufferPointer { Kernels.minMax($0) }
        #expect(got.lo == .infinity && got.hi == -.infinity)
    }

    /// The fold-ins' BPR kernels take the draws of the loops they replaced, in order (the same
    /// stream afterwards) and follow the same steps up to the order of the dot product's sums.
    @Test func bprFoldKernelsFollowTheScalarSteps() {
        var rng = SeededRandom(seed: 21)
        let lr: Float = 0.05, reg: Float = 0.01
        for f in [1, 7, 8, 9, 17, 64] {
            let n = 40
            let items = (0..<(n * (f + 1))).map { _ in rng.nextFloat() - 0.5 }
            let positives: [Int32] = [1, 4, 5, 9, 22, 39]
            let start = (0..<f).map { _ in rng.nextFloat() - 0.5 }
            // The user side: positives uniform, negatives redrawn while a positive, skipped when equal.
            var expected = start, r1 = SeededRandom(seed: UInt64(f))
            for _ in 0..<300 {
                let i = Int(positives[r1.nextInt(below: positives.count)])
                var j = r1.nextInt(below: n), tries = 0
                while tries < 8 && positives.contains(Int32(j)) { j = r1.nextInt(below: n); tries += 1 }
                if j == i { continue }
                var d = items[i * (f + 1) + f] - items[j * (f + 1) + f]
                for c in 0..<f { d += expected[c] * (items[i * (f + 1) + c] - items[j * (f + 1) + c]) }
                let z = 1 / (1 + expf(d))
                for c in 0..<f { expected[c] += lr * (z * (items[i * (f + 1) + c] - items[j * (f + 1) + c]) - reg * expected[c]) }
            }
            var got = start, r2 = SeededRandom(seed: UInt64(f))
            positives.withUnsafeBufferPointer { p in
                items.withUnsafeBufferPointer { q in
                    got.withUnsafeMutableBufferPointer {
                        Kernels.bprFoldUser($0.baseAddress!, f: f, positives: p, items: q.baseAddress!, itemCount: n, learningRate: lr,
                                            regularization: reg, rng: &r2, steps: 300)
                    }
                }
            }
            #expect(r1.next() == r2.next(), "f \(f): the kernel drew another number of values")
            #expect(zip(got, expected).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) }, "f \(f): \(got) vs \(expected)")

            // The item side: a user row and a negative row per step, the bias learned with weight 1.
            let users = (0..<(5 * (f + 1))).map { _ in rng.nextFloat() - 0.5 }
            var y = [Float](repeating: 0, count: f + 1), r3 = SeededRandom(seed: 99)
            for _ in 0..<200 {
                let u = r3.nextInt(below: 5), j = r3.nextInt(below: n)
                var d: Float = 0
                for c in 0...f { d += users[u * (f + 1) + c] * (y[c] - items[j * (f + 1) + c]) }
                let z = 1 / (1 + expf(d))
                for c in 0..<f { y[c] += lr * (z * users[u * (f + 1) + c] - reg * y[c]) }
                y[f] += lr * (z - reg * y[f])
            }
            var yk = [Float](repeating: 0, count: f + 1), r4 = SeededRandom(seed: 99)
            users.withUnsafeBufferPointer { u in
                items.withUnsafeBufferPointer { q in
                    yk.withUnsafeMutableBufferPointer {
                        Kernels.bprFoldItem($0.baseAddress!, f: f, users: u.baseAddress!, userCount: 5, items: q.baseAddress!, itemCount: n,
                                            learningRate: lr, regularization: reg, rng: &r4, steps: 200)
                    }
                }
            }
            #expect(r3.next() == r4.next())
            #expect(zip(yk, y).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) }, "f \(f): \(yk) vs \(y)")
        }
    }
}
