import CKernels

/// Exact maximum-inner-product search: the `k` items of an item matrix (rows = items, row-major)
/// with the largest dot product with each query, ties to the lower index (`TopK`). The candidate
/// stage's scan of a factor agent over the whole catalogue, and what bench/scale measures against
/// faiss's IndexFlatIP.
///
/// The item range is split into one contiguous slice per thread. Each thread walks its slice in
/// blocks that stay in L2 (`rowsPerBlock`); a block is scored for four queries at a time
/// (`ck_row_dots_batch`: each row chunk loaded once for the four) into a small buffer, and each
/// query's running top k (`TopK.Heap`, threshold-scanned eight scores at a time) takes what beats
/// it. The matrix is read from memory once per call, whatever the number of queries. The slices'
/// heaps are merged in slice order, so the result does not depend on the thread count.
public enum ExactTopK {
    /// Items per block: about 256 KiB of rows, a multiple of 4, at least 4.
    static func rowsPerBlock(dimension: Int) -> Int { max(4, (256 << 10) / max(1, dimension * 4) / 4 * 4) }

    /// The top `k` items for each query vector (each `dimension` floats), best first.
    public static func search(items: UnsafePointer<Float>, count: Int, dimension: Int, queries: [UnsafePointer<Float>],
                              k: Int, threads: Int) -> [[(index: Int32, score: Float)]] {
        let cap = min(k, count)
        guard cap > 0, !queries.isEmpty else { return queries.map { _ in [] } }
        let block = rowsPerBlock(dimension: dimension)
        // No more slices than blocks: a slice of a few rows is not worth a thread.
        let slices = max(1, min(threads, (count + block - 1) / block))
        // Slices start at multiples of 4 rows: the kernel scores whole groups of 4 rows with its
        // vector path and a last partial group with a scalar loop (other rounding), so an item
        // gets the score one scan over the whole matrix gives it (ck_row_dots) whatever the threads.
        let perSlice = ((count + slices - 1) / slices + 3) / 4 * 4
        let found = UnsafeMutablePointer<[(index: Int32, score: Float)]>.allocate(capacity: slices * queries.count)
        found.initialize(repeating: [], count: slices * queries.count)
        defer { found.deinitialize(count: slices * queries.count); found.deallocate() }
        let shared = SendableBox((items, found, queries))
        Parallel.forEachChunk(count: slices, threads: slices) { _, sliceRange in
            let (items, found, queries) = shared.value
            for slice in sliceRange {
                let lo = slice * perSlice, hi = min(count, lo + perSlice)
                guard lo < hi else { continue }
                found.advanced(by: slice * queries.count)
                    .update(from: scan(items: items, rows: lo..<hi, dimension: dimension, queries: queries, k: cap, block: block),
                            count: queries.count)
            }
        }
        return (0..<queries.count).map { q in
            if slices == 1 { return found[q] }
            let heap = TopK.Heap(k: cap)
            for slice in 0..<slices { for e in found[slice * queries.count + q] { heap.insert(e.score, index: e.index) } }
            return heap.sorted()
        }
    }

    /// One thread's slice: every query's top k among `rows`.
    static func scan(items: UnsafePointer<Float>, rows: Range<Int>, dimension d: Int, queries: [UnsafePointer<Float>],
                     k: Int, block: Int) -> [[(index: Int32, score: Float)]] {
        let group = 4
        var heaps: [TopK.Heap] = []
        heaps.reserveCapacity(queries.count)
        for _ in queries { heaps.append(TopK.Heap(k: k)) }
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: group * block)
        defer { buffer.deallocate() }
        let outs: [UnsafeMutablePointer<Float>?] = (0..<group).map { buffer + $0 * block }
        var start = rows.lowerBound
        while start < rows.upperBound {
            let n = min(block, rows.upperBound - start)
            var q = 0
            while q < queries.count {
                let m = min(group, queries.count - q)
                let xs: [UnsafePointer<Float>?] = Array(queries[q..<(q + m)])
                xs.withUnsafeBufferPointer { x in outs.withUnsafeBufferPointer { y in
                    ck_row_dots_batch(items + start * d, n, d, x.baseAddress!, y.baseAddress!, m)
                } }
                for j in 0..<m { heaps[q + j].offer(outs[j]!, count: n, firstIndex: start) }
                q += m
            }
            start += n
        }
        return heaps.map { $0.sorted() }
    }
}
