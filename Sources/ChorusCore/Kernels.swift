import CBLAS
import CKernels

/// Dense vector kernels for the hot loops (ALS solves, scoring). Written over raw pointers with
/// SIMD8 accumulators so the compiler emits packed code; lengths need not be multiples of 8.
/// `@inlinable` so that callers in other modules (the ALS solve loop, agents' scoring) get them
/// inlined and fused: as plain calls they cost ~10% of an ALS fit (bench/als/PROFILE.md).
public enum Kernels {
    /// Σ a[i] * b[i].
    @inlinable @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while i + 16 <= n {
            acc0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            acc1 += ra.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4 + 32, as: SIMD8<Float>.self)
            i += 16
        }
        if i + 8 <= n {
            acc0 += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) * rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        var s = (acc0 + acc1).sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// y += alpha * x.
    @inlinable @inline(__always)
    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        let a = SIMD8<Float>(repeating: alpha)
        let rx = UnsafeRawPointer(x), ry = UnsafeMutableRawPointer(y)
        while i + 8 <= n {
            let v = ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) + a * rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            ry.storeBytes(of: v, toByteOffset: i * 4, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }

    /// y = A x for a symmetric row-major n x n matrix A (small: the ALS Gram matrix), computed as
    /// Σ_j x_j A[j, :] with SIMD8 accumulators across the output: no horizontal sums, twice as fast
    /// as n dot products at n = 64 and faster than OpenBLAS ssymv/sgemv at that size (`chorus-bench kernels`).
    @inlinable @inline(__always)
    public static func symv(_ a: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let ry = UnsafeMutableRawPointer(y)
        var c = 0
        while c + 32 <= n {
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            for j in 0..<n {
                let xj = SIMD8<Float>(repeating: x[j])
                let row = UnsafeRawPointer(a + j * n + c)
                a0 += xj * row.loadUnaligned(fromByteOffset: 0, as: SIMD8<Float>.self)
                a1 += xj * row.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
                a2 += xj * row.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self)
                a3 += xj * row.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self)
            }
            ry.storeBytes(of: a0, toByteOffset: c * 4, as: SIMD8<Float>.self)
            ry.storeBytes(of: a1, toByteOffset: c * 4 + 32, as: SIMD8<Float>.self)
            ry.storeBytes(of: a2, toByteOffset: c * 4 + 64, as: SIMD8<Float>.self)
            ry.storeBytes(of: a3, toByteOffset: c * 4 + 96, as: SIMD8<Float>.self)
            c += 32
        }
        while c + 8 <= n {
            var a0 = SIMD8<Float>()
            for j in 0..<n {
                a0 += SIMD8<Float>(repeating: x[j]) * UnsafeRawPointer(a + j * n + c).loadUnaligned(as: SIMD8<Float>.self)
            }
            ry.storeBytes(of: a0, toByteOffset: c * 4, as: SIMD8<Float>.self)
            c += 8
        }
        while c < n {
            var s: Float = 0
            for j in 0..<n { s += x[j] * a[j * n + c] }
            y[c] = s
            c += 1
        }
    }

    /// y[i] = A[i, :] · x for a row-major m x k matrix A: one user's scores against every item.
    /// A C kernel with an AVX2+FMA path chosen at run time (`Sources/CKernels`). Single-threaded on
    /// purpose: OpenBLAS's sgemv wakes its own threads at this size, which then compete with the
    /// engine's workers in batch calls and with the host's threads.
    @inlinable
    public static func rowDots(_ a: UnsafePointer<Float>, m: Int, k: Int, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        ck_row_dots(a, m, k, x, y)
    }

    /// `rowDots` for several queries at once: `ys[q][i]` = A[i, :] · `xs[q]`, bit for bit what
    /// `rowDots` gives each query alone. The rows are walked in blocks of about `blockBytes` (sized
    /// to stay in a core's L2 cache), each block scored for every query before the next, so a batch
    /// reads A from memory once instead of once per query (the catalogue scans of batch recommend
    /// are bound by that traffic); within a block, four queries share each load of a row chunk
    /// (`ck_row_dots_batch`). Blocks hold a multiple of 4 rows: the kernel's row grouping, and so
    /// its summation order, is the same as in one `rowDots` over all rows.
    public static func rowDotsBatch(_ a: UnsafePointer<Float>, m: Int, k: Int, _ xs: [UnsafePointer<Float>],
                                    into ys: [UnsafeMutablePointer<Float>], blockBytes: Int = 256 << 10) {
        precondition(xs.count == ys.count)
        let block = batchBlockRows(k: k, elementBytes: 4, blockBytes: blockBytes)
        var start = 0
        while start < m {
            let rows = min(block, m - start)
            let xsC: [UnsafePointer<Float>?] = xs, ysAt: [UnsafeMutablePointer<Float>?] = ys.map { $0 + start }
            xsC.withUnsafeBufferPointer { x in ysAt.withUnsafeBufferPointer { y in
                ck_row_dots_batch(a + start * k, rows, k, x.baseAddress!, y.baseAddress!, x.count)
            } }
            start += rows
        }
    }

    /// `rowDotsBatch` over half-precision rows (binary16 bits), bit for bit `ck_row_dots_f16` per query.
    public static func rowDotsF16Batch(_ a: UnsafePointer<UInt16>, m: Int, k: Int, _ xs: [UnsafePointer<Float>],
                                       into ys: [UnsafeMutablePointer<Float>], blockBytes: Int = 256 << 10) {
        precondition(xs.count == ys.count)
        let block = batchBlockRows(k: k, elementBytes: 2, blockBytes: blockBytes)
        var start = 0
        while start < m {
            let rows = min(block, m - start)
            let xsC: [UnsafePointer<Float>?] = xs, ysAt: [UnsafeMutablePointer<Float>?] = ys.map { $0 + start }
            xsC.withUnsafeBufferPointer { x in ysAt.withUnsafeBufferPointer { y in
                ck_row_dots_f16_batch(a + start * k, rows, k, x.baseAddress!, y.baseAddress!, x.count)
            } }
            start += rows
        }
    }

    /// `steps` steps of BPR's stochastic gradient ascent over one block of its stratified SGD
    /// (`ck_bpr_block`): interactions drawn uniformly from `edges` (indices into `colIndex` and
    /// `owner`), negatives from `negatives`, `rng` continued in place. The caller guarantees the
    /// indices are in range of the matrices (rows of `f` floats) and that no other thread writes
    /// the rows this block touches.
    public static func bprBlock(edges: UnsafeBufferPointer<Int32>, negatives: UnsafeBufferPointer<Int32>, owner: UnsafePointer<Int32>,
                                rowStart: UnsafePointer<Int>, colIndex: UnsafePointer<Int32>, users: UnsafeMutablePointer<Float>,
                                items: UnsafeMutablePointer<Float>, f: Int, learningRate: Float, regularization: Float,
                                rng: inout SeededRandom, steps: Int) {
        guard let e = edges.baseAddress, let n = negatives.baseAddress, steps > 0 else { return }
        continuing(&rng) { state in
            rowStart.withMemoryRebound(to: Int64.self, capacity: 1) { rs in
                ck_bpr_block(e, edges.count, n, negatives.count, owner, rs, colIndex, users, items, f, learningRate, regularization, state, steps)
            }
        }
    }

    /// Runs a C kernel on `rng`'s four xoshiro256** words (CKernels implements the same step) and
    /// keeps the state it leaves: the Swift stream continues where the kernel stopped.
    private static func continuing(_ rng: inout SeededRandom, _ kernel: (UnsafeMutablePointer<UInt64>) -> Void) {
        var w = rng.words
        withUnsafeMutableBytes(of: &w) { kernel($0.baseAddress!.assumingMemoryBound(to: UInt64.self)) }
        rng.words = w
    }

    /// A fold-in's BPR steps on the user side (`ck_bpr_fold_user`): `x` (f floats) against the item
    /// rows of `items` (`itemCount` rows of f + 1 floats, the last the bias), positives ascending;
    /// continues `rng`'s stream.
    public static func bprFoldUser(_ x: UnsafeMutablePointer<Float>, f: Int, positives: UnsafeBufferPointer<Int32>, items: UnsafePointer<Float>,
                                   itemCount: Int, learningRate: Float, regularization: Float, rng: inout SeededRandom, steps: Int) {
        guard let p = positives.baseAddress, steps > 0 else { return }
        continuing(&rng) { ck_bpr_fold_user(x, f, p, positives.count, items, itemCount, learningRate, regularization, $0, steps) }
    }

    /// A new item's BPR placement (`ck_bpr_fold_item`): `y` (f + 1 floats) from `userCount` user rows
    /// of f + 1 floats against negatives from `items` (`itemCount` rows); continues `rng`'s stream.
    public static func bprFoldItem(_ y: UnsafeMutablePointer<Float>, f: Int, users: UnsafePointer<Float>, userCount: Int, items: UnsafePointer<Float>,
                                   itemCount: Int, learningRate: Float, regularization: Float, rng: inout SeededRandom, steps: Int) {
        guard steps > 0 else { return }
        continuing(&rng) { ck_bpr_fold_item(y, f, users, userCount, items, itemCount, learningRate, regularization, $0, steps) }
    }

    /// Rows per block of the batch scans: a multiple of 4, at least 4.
    static func batchBlockRows(k: Int, elementBytes: Int, blockBytes: Int) -> Int {
        max(4, blockBytes / max(1, k * elementBytes) / 4 * 4)
    }

    /// The smallest and largest of `x`, NaNs skipped ((+inf, -inf) when there are no numbers):
    /// vectorised, unlike a Swift loop of `min`/`max` (their NaN rules keep it scalar).
    public static func minMax(_ x: UnsafeBufferPointer<Float>) -> (lo: Float, hi: Float) {
        var lo = Float.infinity, hi = -Float.infinity
        if let base = x.baseAddress { ck_min_max(base, x.count, &lo, &hi) }
        return (lo, hi)
    }

    /// True when the kernels run their AVX2+FMA path on this CPU.
    public static var usesAVX2: Bool { ck_uses_avx2() != 0 }

    /// G = Yᵀ Y (+ lambda I) for Y with `rows` x `cols`, row-major, through BLAS (OpenBLAS ssyrk).
    public static func gram(_ y: FloatMatrix, lambda: Float, into g: FloatMatrix) {
        let f = y.cols
        precondition(g.rows == f && g.cols == f)
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(f), Int32(y.rows), 1, y.base, Int32(f), 0, g.base, Int32(f))
        // ssyrk fills the upper triangle only: mirror it.
        for r in 0..<f {
            for c in 0..<r { g.base[r * f + c] = g.base[c * f + r] }
            g.base[r * f + r] += lambda
        }
    }

    /// y = A x for A (m x k) row-major through OpenBLAS sgemv (kept as the benchmark's reference for
    /// `rowDots`; OpenBLAS may use several threads here).
    public static func gemv(_ a: UnsafePointer<Float>, m: Int, k: Int, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(k), 1, a, Int32(k), x, 1, 0, y, 1)
    }
}
