import CKernels

/// Approximate maximum-inner-product search over a large item matrix (rows = items, float32): an
/// inverted-file index. Spherical k-means on a seeded sample of the items gives `listCount` unit
/// centroids; every item goes to the list whose centroid has its largest inner product, and each
/// list keeps its items' indices and a contiguous copy of their rows (faiss's `IndexIVFFlat`), or,
/// built `sharing:` a matrix, reads the rows from that matrix by index and holds no copy (a
/// serving index beside an agent's own item factors: 256 MiB less per agent at 1M x 64, for
/// gathered instead of streamed row loads). A shared index may also keep an 8-bit copy of the
/// rows by list (`quantized`, about a quarter of a float copy) to scan instead: each query's
/// probed lists are streamed as 8-bit codes giving every item a proven score interval, and only
/// the items whose interval reaches the k-th best lower end are rescored from the float rows, so
/// the results are still the float index's, bit for bit. A search scores the query
/// against the centroids, scans the best `nprobe` lists with the same blocked kernels as
/// `ExactTopK` and keeps a `TopK.Heap`. With every list probed the result is `ExactTopK`'s, bit
/// for bit; with a few it reads a few lists instead of the catalogue (issue 16, past ~100k items).
///
/// Spherical, not plain, k-means. The search routes a query by inner product with the centroids,
/// so items should be assigned by the same rule. Plain (Euclidean) k-means partitions by distance
/// instead, which disagrees with inner product wherever norms differ (factor vectors' do); and
/// plain means with inner-product assignment decrease no objective and drift toward the longest
/// centroids, which take ever more items. With unit centroids each Lloyd step (assign by largest
/// inner product, centroid = normalised sum) increases Σ <x, c(x)>, the lists stay balanced, and a
/// list's rank for a query follows its centroid's direction. faiss does the same for
/// `IndexIVFFlat` with inner product (`cp.spherical`).
///
/// Deterministic for a seed whatever the thread count: the sample and the initial centroids come
/// from `SeededRandom`; each item's assignment is its own; each centroid is the sum of its members
/// in item order (in `Double`); an empty list takes a split of the largest one. An item's score
/// does not depend on where its row sits (see `init`), and the heaps keep the top k under
/// (score desc, index asc), which does not depend on the order lists are scanned in.
///
/// Immutable once built: concurrent searches are safe.
public final class IVFIndex: @unchecked Sendable {
    public struct Parameters: Sendable, Equatable {
        /// Number of lists; nil: round(sqrt(count)). At most `count`.
        public var lists: Int?
        /// Lloyd iterations on the sample (0: the centroids are sampled items).
        public var iterations: Int
        /// Sample size per list for the k-means (faiss: `max_points_per_centroid`, default 256:
        /// somewhat better lists for 4x the k-means work).
        public var samplePerList: Int
        public var seed: UInt64

        public init(lists: Int? = nil, iterations: Int = 10, samplePerList: Int = 64, seed: UInt64 = 42) {
            self.lists = lists
            self.iterations = iterations
            self.samplePerList = samplePerList
            self.seed = seed
        }
    }

    public let count: Int
    public let dimension: Int
    public let listCount: Int
    public let parameters: Parameters
    /// Items per list.
    public let listSizes: [Int]
    /// listCount x dimension, unit rows (a zero row stays zero).
    let centroids: FloatMatrix
    /// The lists' rows one after the other (`storedRows` x dimension), or the shared matrix the
    /// rows are read from by item index (`copied` false).
    let rows: FloatMatrix
    /// Whether `rows` is the index's own copy laid out by list.
    public let copied: Bool
    /// A shared index's scan copy (nil: none): per stored row, `dimension` signed 8-bit codes,
    /// value j read as codeScale[row] * code[j], the scale the row's largest magnitude / 127. A
    /// scale per row, not a range per dimension (faiss's `QT_8bit`): factor rows' norms spread
    /// over orders of magnitude (popular items'), and a range set by the largest rows would leave
    /// the others a few levels, and bounds too wide to prune with. Padding rows are zero.
    let codes: UnsafeMutablePointer<Int8>?
    let codeScale: UnsafeMutablePointer<Float>?
    /// The largest scale (for the overflow check).
    let largestScale: Float
    /// Whether searches scan the 8-bit codes (then rescore exactly).
    public var quantized: Bool { codes != nil }
    /// Per stored row: its item index, or -1 for padding.
    let ids: UnsafeMutablePointer<Int32>
    /// List l is stored rows start[l] ..< start[l + 1]: its members below the catalogue's last
    /// partial group of 4 (`regular[l]` rows), zero padding up to `padded[l]` rows, then its
    /// members in that last group.
    let start: [Int]
    let regular: [Int]
    let padded: [Int]

    public var storedRows: Int { start[listCount] }

    /// Bytes held: rows, item indices, centroids and the list tables.
    public var bytes: Int {
        (copied ? rows.byteCount : 0) + (codes == nil ? 0 : storedRows * (dimension + 4)) + storedRows * MemoryLayout<Int32>.stride
            + centroids.byteCount
            + (start.count + regular.count + padded.count + listSizes.count) * MemoryLayout<Int>.stride
    }

    deinit {
        Allocator.deallocate(UnsafeMutableRawPointer(ids))
        if let codes { Allocator.deallocate(UnsafeMutableRawPointer(codes)) }
        if let codeScale { Allocator.deallocate(UnsafeMutableRawPointer(codeScale)) }
    }

    /// Builds the index over `count` rows of `dimension` floats (the rows are copied).
    /// - Throws: `.invalidArgument` for a count or dimension below 1, a count past Int32, an
    ///   explicit list count below 1, negative iterations, a sample per list below 1, a
    ///   non-finite value (naming its row); `.outOfMemory`.
    public convenience init(items: UnsafePointer<Float>, count: Int, dimension: Int, parameters: Parameters = Parameters(),
                            threads: Int) throws(ChorusError) {
        try self.init(items: items, count: count, dimension: dimension, parameters: parameters, threads: threads, sharing: nil,
                      quantized: false)
    }

    /// Builds the index over `matrix`'s rows without copying them: searches read them from the
    /// matrix (retained), which must not change while the index lives. Same lists, same results,
    /// bit for bit, as an index over a copy. `quantized`: searches scan an 8-bit copy of the rows
    /// (count x (dimension + 4) bytes) and rescore only the few items that can be in the top k from the
    /// matrix: streamed instead of gathered loads, the same results. Throws as `init(items:...)`.
    public convenience init(sharing matrix: FloatMatrix, quantized: Bool = false, parameters: Parameters = Parameters(),
                            threads: Int) throws(ChorusError) {
        try self.init(items: matrix.base, count: matrix.rows, dimension: matrix.cols, parameters: parameters, threads: threads,
                      sharing: matrix, quantized: quantized)
    }

    private init(items: UnsafePointer<Float>, count: Int, dimension: Int, parameters: Parameters, threads: Int,
                 sharing: FloatMatrix?, quantized: Bool) throws(ChorusError) {
        guard dimension >= 1 else { throw .invalidArgument("dimension must be at least 1, got \(dimension)") }
        guard count >= 1 else { throw .invalidArgument("an IVF index needs at least one item, got count \(count)") }
        guard count <= Int(Int32.max) else { throw .invalidArgument("count \(count) is past the \(Int32.max) items an index can hold") }
        let floats = count.multipliedReportingOverflow(by: dimension)
        guard !floats.overflow, !floats.partialValue.multipliedReportingOverflow(by: 4).overflow else {
            throw .invalidArgument("count \(count) x dimension \(dimension) overflows")
        }
        if let l = parameters.lists, l < 1 { throw .invalidArgument("lists must be at least 1, got \(l)") }
        guard parameters.iterations >= 0 else { throw .invalidArgument("iterations must be at least 0, got \(parameters.iterations)") }
        guard parameters.samplePerList >= 1 else { throw .invalidArgument("samplePerList must be at least 1, got \(parameters.samplePerList)") }
        let threads = max(1, threads)
        if let bad = Self.firstNonFiniteRow(items, count: count, dimension: dimension, threads: threads) {
            throw .invalidArgument("item row \(bad) has a value that is not finite")
        }
        let lists = min(count, parameters.lists ?? max(1, Int(Double(count).squareRoot().rounded())))
        self.count = count
        self.dimension = dimension
        self.listCount = lists
        self.parameters = parameters
        let d = dimension

        // The sample: distinct items by a partial Fisher-Yates shuffle, the first `lists` of them
        // the initial centroids; then in item order (memory order for the gather, a fixed
        // summation order for the centroids).
        let sampleCount = min(count, max(lists, min(count, parameters.samplePerList) * lists))
        var rng = SeededRandom(seed: parameters.seed)
        var sample: [Int32]
        let centroids = try FloatMatrix(rows: lists, cols: d)
        if sampleCount == count && lists == count {
            sample = (0..<Int32(count)).map { $0 }
        } else {
            var perm = (0..<Int32(count)).map { $0 }
            for i in 0..<sampleCount { perm.swapAt(i, i + rng.nextInt(below: count - i)) }
            sample = Array(perm[0..<sampleCount])
        }
        for l in 0..<lists { centroids.row(l).update(from: items + Int(sample[l]) * d, count: d) }
        Self.normalizeRows(centroids, only: nil)
        sample.sort()
        let points = try FloatMatrix(rows: sampleCount, cols: d, zeroed: false)
        for (i, s) in sample.enumerated() { points.row(i).update(from: items + Int(s) * d, count: d) }

        var assignment = [Int32](repeating: 0, count: sampleCount)
        for _ in 0..<parameters.iterations {
            assignment.withUnsafeMutableBufferPointer {
                Self.assign(points.base, count: sampleCount, dimension: d, centroids: centroids, threads: threads, into: $0.baseAddress!)
            }
            Self.update(centroids, points: points, assignment: assignment, threads: threads)
        }
        self.centroids = centroids

        // Every item to its list.
        var owner = [Int32](repeating: 0, count: count)
        owner.withUnsafeMutableBufferPointer {
            Self.assign(items, count: count, dimension: d, centroids: centroids, threads: threads, into: $0.baseAddress!)
        }
        // The kernels score whole groups of 4 rows with their vector path and a call's last
        // partial group with a scalar loop (other rounding). One scan of the catalogue
        // (ExactTopK, ck_row_dots) puts items count & ~3 ... count - 1 in that scalar tail and all
        // others in groups of 4: each list pads its other members to whole groups with zero rows
        // and puts those tail items (at most 3 in all) after the padding, so every item gets the
        // score the exact scan gives it.
        let tailStart = count & ~3
        var sizes = [Int](repeating: 0, count: lists), tails = [Int](repeating: 0, count: lists)
        for i in 0..<count {
            sizes[Int(owner[i])] += 1
            if i >= tailStart { tails[Int(owner[i])] += 1 }
        }
        var start = [Int](repeating: 0, count: lists + 1), regular = sizes, padded = sizes
        for l in 0..<lists {
            regular[l] = sizes[l] - tails[l]
            padded[l] = (regular[l] + 3) & ~3
            start[l + 1] = start[l] + padded[l] + tails[l]
        }
        let stored = start[lists]
        let ids = try Allocator.allocate(bytes: max(1, stored) * 4, zeroed: false).bindMemory(to: Int32.self, capacity: max(1, stored))
        ids.initialize(repeating: -1, count: max(1, stored))
        var cursor = start, tailCursor = (0..<lists).map { start[$0] + padded[$0] }
        for i in 0..<count {
            let l = Int(owner[i])
            if i >= tailStart { ids[tailCursor[l]] = Int32(i); tailCursor[l] += 1 } else { ids[cursor[l]] = Int32(i); cursor[l] += 1 }
        }
        var codes: UnsafeMutablePointer<Int8>? = nil, codeScale: UnsafeMutablePointer<Float>? = nil, largestScale: Float = 0
        if let sharing {
            self.rows = sharing
            self.copied = false
            if quantized {
                do {
                    (codes, codeScale, largestScale) = try Self.quantize(items, count: count, dimension: d, ids: ids, stored: stored,
                                                                  threads: threads)
                } catch {
                    Allocator.deallocate(UnsafeMutableRawPointer(ids))
                    throw error
                }
            }
        } else {
            let rows: FloatMatrix
            do { rows = try FloatMatrix(rows: stored, cols: d, zeroed: false) } catch {
                Allocator.deallocate(UnsafeMutableRawPointer(ids))
                throw error
            }
            let shared = SendableBox((items, rows, ids))
            Parallel.forEachChunk(count: stored, threads: threads) { _, range in
                let (items, rows, ids) = shared.value
                for r in range {
                    let i = Int(ids[r])
                    if i >= 0 { rows.row(r).update(from: items + i * d, count: d) } else { rows.row(r).update(repeating: 0, count: d) }
                }
            }
            self.rows = rows
            self.copied = true
        }
        self.ids = ids
        self.codes = codes
        self.codeScale = codeScale
        self.largestScale = largestScale
        self.start = start
        self.regular = regular
        self.padded = padded
        self.listSizes = sizes
    }

    /// The top `k` items for each query, best first (ties to the lower index), among the items of
    /// the `nprobe` lists whose centroids score highest with it (ties to the lower list); fewer
    /// than `k` when those lists hold fewer. `queries` holds `queries.count / dimension` rows of
    /// `dimension` floats. A query whose centroid scores are all NaN probes nothing.
    /// - Throws: `.invalidArgument` for a dimension other than the index's, a buffer that is not
    ///   whole rows, k or nprobe below 1 (nprobe past `listCount` is clamped to it).
    public func search(queries: UnsafeBufferPointer<Float>, dimension: Int, k: Int, nprobe: Int,
                       threads: Int) throws(ChorusError) -> [[(index: Int32, score: Float)]] {
        guard dimension == self.dimension else {
            throw .invalidArgument("queries have dimension \(dimension), the index \(self.dimension)")
        }
        guard queries.count % dimension == 0 else {
            throw .invalidArgument("queries hold \(queries.count) floats, not whole rows of \(dimension)")
        }
        guard k >= 1 else { throw .invalidArgument("k must be at least 1, got \(k)") }
        guard nprobe >= 1 else { throw .invalidArgument("nprobe must be at least 1, got \(nprobe)") }
        let nq = queries.count / dimension
        guard nq > 0, let qbase = queries.baseAddress else { return [] }
        let threads = max(1, threads), probes = min(nprobe, listCount), cap = min(k, count), d = dimension
        guard !nq.multipliedReportingOverflow(by: probes).overflow else {
            throw .invalidArgument("\(nq) queries x nprobe \(probes) overflows")
        }
        let qs = (0..<nq).map { qbase + $0 * d }

        // Coarse stage: each query's best lists.
        let probed = UnsafeMutablePointer<Int32>.allocate(capacity: nq * probes)
        let probedCount = UnsafeMutablePointer<Int>.allocate(capacity: nq)
        defer { probed.deallocate(); probedCount.deallocate() }
        let coarse = SendableBox((self, qs, probed, probedCount))
        let groups = (nq + 3) / 4
        Parallel.forEachChunk(count: groups, threads: nq >= 64 ? threads : 1) { _, range in
            let (index, qs, probed, probedCount) = coarse.value
            let l = index.listCount
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: 4 * l)
            defer { buffer.deallocate() }
            for g in range {
                let lo = g * 4, m = min(4, qs.count - lo)
                index.scoreCentroids(Array(qs[lo..<(lo + m)]), into: buffer)
                for j in 0..<m {
                    let best = TopK.select(UnsafeBufferPointer(start: buffer + j * l, count: l), k: probes)
                    probedCount[lo + j] = best.count
                    for (p, e) in best.enumerated() { probed[(lo + j) * probes + p] = e.index }
                }
            }
        }

        if codes != nil {
            // Each query on its own: its lists' codes streamed once, then its few candidates.
            var out = [[(index: Int32, score: Float)]](repeating: [], count: nq)
            let shared = SendableBox((self, qs, probed, probedCount))
            out.withUnsafeMutableBufferPointer { o in
                let results = SendableBox(o.baseAddress!)
                Parallel.forEachChunk(count: nq, threads: nq >= 4 ? min(threads, nq) : 1) { _, range in
                    let (index, qs, probed, probedCount) = shared.value
                    for q in range {
                        results.value[q] = index.quantizedSearch(qs[q], lists: UnsafeBufferPointer(start: probed + q * probes,
                                                                                                    count: probedCount[q]), k: cap).found
                    }
                }
            }
            return out
        }

        // Queries per list (CSR, queries ascending), so a batch scans each list once.
        var perList = [Int](repeating: 0, count: listCount + 1)
        for q in 0..<nq { for p in 0..<probedCount[q] { perList[Int(probed[q * probes + p]) + 1] += 1 } }
        for l in 0..<listCount { perList[l + 1] += perList[l] }
        var queryOf = [Int32](repeating: 0, count: perList[listCount])
        var fill = perList
        for q in 0..<nq { for p in 0..<probedCount[q] { let l = Int(probed[q * probes + p]); queryOf[fill[l]] = Int32(q); fill[l] += 1 } }
        // Largest work first: dynamic hand-out then balances the threads.
        let tasks = (0..<listCount).filter { perList[$0 + 1] > perList[$0] && start[$0 + 1] > start[$0] }
            .sorted { a, b in
                let wa = (start[a + 1] - start[a]) * (perList[a + 1] - perList[a]), wb = (start[b + 1] - start[b]) * (perList[b + 1] - perList[b])
                return wa > wb || (wa == wb && a < b)
            }
        // A thread only for about 1 MiB of row loads or more: a single query's few small lists
        // cost less than waking one.
        let loads = tasks.reduce(0) { $0 + (start[$1 + 1] - start[$1]) * ((perList[$1 + 1] - perList[$1] + 3) / 4) * d }
        let workers = max(1, min(threads, tasks.count, loads / (1 << 18)))
        let block = ExactTopK.rowsPerBlock(dimension: d)
        // Per worker: a heap per query it touched, and a score buffer.
        let heaps = UnsafeMutablePointer<TopK.Heap?>.allocate(capacity: workers * nq)
        heaps.initialize(repeating: nil, count: workers * nq)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: workers * 4 * block)
        // A shared index's rows of the block being scanned, by pointer (`scan`).
        let pointers = UnsafeMutablePointer<UnsafePointer<Float>?>.allocate(capacity: copied ? 1 : workers * block)
        defer { heaps.deinitialize(count: workers * nq); heaps.deallocate(); scratch.deallocate(); pointers.deallocate() }
        let fine = SendableBox((self, qs, tasks, perList, queryOf, heaps, scratch, pointers))
        Parallel.forEach(count: tasks.count, threads: workers, grain: 1) { worker, t in
            let (index, qs, tasks, perList, queryOf, heaps, scratch, pointers) = fine.value
            let l = tasks[t]
            let mine = heaps + worker * qs.count
            let listQueries = queryOf[perList[l]..<perList[l + 1]].map { Int($0) }
            for q in listQueries where mine[q] == nil { mine[q] = TopK.Heap(k: cap) }
            index.scan(list: l, queries: listQueries, vectors: qs, heaps: mine, buffer: scratch + worker * 4 * block, block: block,
                       pointers: index.copied ? nil : pointers + worker * block)
        }
        return (0..<nq).map { q in
            let found = (0..<workers).compactMap { heaps[$0 * nq + q] }
            if found.count == 1 { return found[0].sorted() }
            let merged = TopK.Heap(k: cap)
            for h in found { for e in h.sorted() { merged.insertOrdered(e.score, index: e.index) } }
            return merged.sorted()
        }
    }

    /// Scores up to 4 queries against every centroid: buffer[j * listCount + l].
    func scoreCentroids(_ xs: [UnsafePointer<Float>], into buffer: UnsafeMutablePointer<Float>) {
        let xsC: [UnsafePointer<Float>?] = xs
        let ys: [UnsafeMutablePointer<Float>?] = (0..<xs.count).map { buffer + $0 * listCount }
        xsC.withUnsafeBufferPointer { x in ys.withUnsafeBufferPointer { y in
            ck_row_dots_batch(centroids.base, listCount, dimension, x.baseAddress!, y.baseAddress!, xs.count)
        } }
    }

    /// One list for the queries that probe it: blocks of rows that stay in L2, each scored for
    /// four queries at a time, its members' scores offered to each query's heap (padding skipped).
    /// A shared index gathers each block's rows by item index into `pointers` (room for `block`)
    /// and scores them with the same arithmetic (`ck_row_dots_gather_batch`).
    func scan(list l: Int, queries: [Int], vectors: [UnsafePointer<Float>], heaps: UnsafeMutablePointer<TopK.Heap?>,
              buffer: UnsafeMutablePointer<Float>, block: Int, pointers: UnsafeMutablePointer<UnsafePointer<Float>?>?) {
        let d = dimension, lo = start[l], hi = start[l + 1], regularEnd = lo + regular[l], padEnd = lo + padded[l]
        var xs: [UnsafePointer<Float>?] = [], ys: [UnsafeMutablePointer<Float>?] = []
        var from = lo
        // Blocks are multiples of 4 rows from the list's start: the kernel's groups of 4 stay
        // those of the layout (see init).
        while from < hi {
            let n = min(block, hi - from)
            if let pointers {
                for r in 0..<n {
                    let i = Int(ids[from + r])
                    // Padding is scored with its group of 4 but never offered: any row will do.
                    pointers[r] = UnsafePointer(rows.row(max(0, i)))
                }
            }
            var g = 0
            while g < queries.count {
                let m = min(4, queries.count - g)
                xs = (0..<m).map { vectors[queries[g + $0]] }
                ys = (0..<m).map { buffer + $0 * block }
                xs.withUnsafeBufferPointer { x in ys.withUnsafeBufferPointer { y in
                    if let pointers {
                        ck_row_dots_gather_batch(pointers, n, d, x.baseAddress!, y.baseAddress!, m)
                    } else {
                        ck_row_dots_batch(rows.base + from * d, n, d, x.baseAddress!, y.baseAddress!, m)
                    }
                } }
                for j in 0..<m {
                    guard let heap = heaps[queries[g + j]] else { continue }
                    let scores = buffer + j * block
                    if from < regularEnd {
                        let e = min(from + n, regularEnd)
                        heap.offer(scores, count: e - from, indices: ids + from)
                    }
                    let s = max(from, padEnd), e = from + n
                    if s < e { heap.offer(scores + (s - from), count: e - s, indices: ids + s) }
                }
                g += m
            }
            from += n
        }
    }

    // MARK: 8-bit scan

    /// Every stored row's codes and scale (padding rows zero), and the largest scale.
    static func quantize(_ items: UnsafePointer<Float>, count: Int, dimension d: Int, ids: UnsafeMutablePointer<Int32>, stored: Int,
                         threads: Int) throws(ChorusError) -> (UnsafeMutablePointer<Int8>, UnsafeMutablePointer<Float>, Float) {
        let codes = try Allocator.allocate(bytes: max(1, stored * d), zeroed: true).bindMemory(to: Int8.self, capacity: max(1, stored * d))
        let scales: UnsafeMutablePointer<Float>
        do {
            scales = try Allocator.allocate(bytes: max(1, stored) * 4, zeroed: true).bindMemory(to: Float.self, capacity: max(1, stored))
        } catch {
            Allocator.deallocate(UnsafeMutableRawPointer(codes))
            throw error
        }
        let shared = SendableBox((items, ids, codes, scales))
        Parallel.forEachChunk(count: stored, threads: threads) { _, range in
            let (items, ids, codes, scales) = shared.value
            for r in range {
                let i = Int(ids[r])
                guard i >= 0 else { continue }
                let row = items + i * d, out = codes + r * d
                var largest: Float = 0
                for j in 0..<d { largest = max(largest, abs(row[j])) }
                guard largest > 0 else { continue }
                // In Double: |row[j]| / largest * 127 is at most 127, and rounds to within half a level.
                let unit = 127 / Double(largest)
                for j in 0..<d { out[j] = Int8((Double(row[j]) * unit).rounded()) }
                scales[r] = Float(Double(largest) / 127)
            }
        }
        var largestScale: Float = 0
        for r in 0..<stored { largestScale = max(largestScale, scales[r]) }
        return (codes, scales, largestScale)
    }

    /// One query's top `k` over `lists`, from the codes: every member's score interval [lo, hi]
    /// from its codes, L the k-th largest lo, then exact scores (the float rows, the kernels'
    /// arithmetic) for the members with hi >= L. Every item of the float search's top k is among
    /// them: at least k items score >= L (their lo is), so the k-th best score s_k >= L, and a
    /// top-k item's hi >= its score >= s_k. The interval's half-width is the row's scale x `err`:
    /// half a level per value (|x| * scale / 2 each) plus both sums' float rounding. When a sum
    /// could leave Float's range (huge queries or items) or the width is not finite, every member
    /// is rescored. `rescored`: how many items were scored exactly.
    func quantizedSearch(_ q: UnsafePointer<Float>, lists: UnsafeBufferPointer<Int32>,
                         k: Int) -> (found: [(index: Int32, score: Float)], rescored: Int) {
        guard let codes, let codeScale, !lists.isEmpty else { return ([], 0) }
        let d = dimension
        var absSum = 0.0
        for j in 0..<d { absSum += abs(Double(q[j])) }
        // In units of the scale (a level): 1/2 for the coding; float rounding of the exact and
        // approximate sums (each within (d + 2) x 2^-24 of their terms' magnitudes, at most 127
        // levels a value), of the scale, and of forming lo and hi, with room to spare.
        let err = 1.01 * absSum * (0.5 + 127 * (4 * Double(d + 2) * 0x1p-24 + 0x1p-21))
        let inRange = err.isFinite && absSum * 127 * Double(largestScale) * 2 < Double(Float.greatestFiniteMagnitude) / 4
        let probed = lists.map { Int($0) }
        let total = probed.reduce(0) { $0 + start[$1 + 1] - start[$1] }
        let lo = UnsafeMutablePointer<Float>.allocate(capacity: 2 * max(1, total)), hi = lo + max(1, total)
        defer { lo.deallocate() }
        var offset = 0
        if inRange {
            for l in probed {
                let n = start[l + 1] - start[l]
                ck_sq8_dots(codes + start[l] * d, codeScale + start[l], n, d, q, Float(err), lo + offset, hi + offset)
                // Padding never competes.
                for r in regular[l]..<padded[l] { lo[offset + r] = -.infinity; hi[offset + r] = -.infinity }
                offset += n
            }
        }
        let best = inRange ? TopK.select(UnsafeBufferPointer(start: lo, count: total), k: k) : []
        let every = !inRange || best.count < k
        let floor = every ? -Float.infinity : best[best.count - 1].score.nextDown

        // The candidates, split as the layout splits the catalogue (see init): items below its
        // last partial group of 4 are scored in groups of 4, the (at most 3) others one by one.
        let tailStart = count & ~3
        var regularIds: [Int32] = [], tailIds: [Int32] = []
        offset = 0
        for l in probed {
            let n = start[l + 1] - start[l]
            var r = every ? 0 : ck_first_above(hi + offset, 0, n, floor)
            while r < n {
                let i = ids[start[l] + r]
                if i >= 0 { if Int(i) < tailStart { regularIds.append(i) } else { tailIds.append(i) } }
                r = every ? r + 1 : ck_first_above(hi + offset, r + 1, n, floor)
            }
            offset += n
        }
        let heap = TopK.Heap(k: k)
        for (group, padTo) in [(regularIds, (regularIds.count + 3) & ~3), (tailIds, tailIds.count)] where !group.isEmpty {
            var pointers = group.map { Optional(UnsafePointer(rows.row(Int($0)))) }
            while pointers.count < padTo { pointers.append(pointers[0]) }
            var scores = [Float](repeating: 0, count: pointers.count)
            scores.withUnsafeMutableBufferPointer { sp in
                var xs: [UnsafePointer<Float>?] = [q]
                var ys: [UnsafeMutablePointer<Float>?] = [sp.baseAddress!]
                pointers.withUnsafeBufferPointer { p in
                    ck_row_dots_gather_batch(p.baseAddress!, p.count, d, &xs, &ys, 1)
                }
                group.withUnsafeBufferPointer { heap.offer(sp.baseAddress!, count: group.count, indices: $0.baseAddress!) }
            }
        }
        return (heap.sorted(), regularIds.count + tailIds.count)
    }

    // MARK: k-means

    /// The first row (of `count`) holding a NaN or an infinity, or nil.
    static func firstNonFiniteRow(_ items: UnsafePointer<Float>, count: Int, dimension d: Int, threads: Int) -> Int? {
        let chunks = max(1, min(threads, count / 4096))
        let firstBad = UnsafeMutablePointer<Int>.allocate(capacity: chunks)
        firstBad.initialize(repeating: Int.max, count: chunks)
        defer { firstBad.deallocate() }
        let shared = SendableBox((items, firstBad))
        Parallel.forEachChunk(count: count, threads: chunks) { w, range in
            let (items, firstBad) = shared.value
            for r in range {
                // x * 0 is 0 for every finite x, NaN for NaN and the infinities: a sum of them is
                // 0 exactly when the whole row is finite.
                var acc: Float = 0
                let row = items + r * d
                for j in 0..<d { acc += row[j] * 0 }
                if acc != 0 { firstBad[w] = r; return }
            }
        }
        let bad = (0..<chunks).map { firstBad[$0] }.min() ?? Int.max
        return bad == Int.max ? nil : bad
    }

    /// out[i] = the centroid with the largest inner product with point i (ties and NaN: the lower
    /// centroid, 0 when every score is NaN). Each point is scored on its own: the result does not
    /// depend on the thread count.
    static func assign(_ points: UnsafePointer<Float>, count n: Int, dimension d: Int, centroids: FloatMatrix, threads: Int,
                       into out: UnsafeMutablePointer<Int32>) {
        let groups = (n + 3) / 4
        let shared = SendableBox((points, centroids, out))
        Parallel.forEachChunk(count: groups, threads: threads) { _, range in
            let (points, centroids, out) = shared.value
            let l = centroids.rows
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: 4 * l)
            defer { buffer.deallocate() }
            var xs: [UnsafePointer<Float>?] = [], ys: [UnsafeMutablePointer<Float>?] = []
            for g in range {
                let lo = g * 4, m = min(4, n - lo)
                xs = (0..<m).map { points + (lo + $0) * d }
                ys = (0..<m).map { buffer + $0 * l }
                xs.withUnsafeBufferPointer { x in ys.withUnsafeBufferPointer { y in
                    ck_row_dots_batch(centroids.base, l, d, x.baseAddress!, y.baseAddress!, m)
                } }
                for j in 0..<m {
                    // A running maximum: the next score above the best so far, 8 compared at a time.
                    let s = buffer + j * l
                    var best = -Float.infinity, arg = 0, i = 0
                    while true {
                        i = ck_first_above(s, i, l, best)
                        guard i < l else { break }
                        best = s[i]; arg = i; i += 1
                    }
                    out[lo + j] = Int32(arg)
                }
            }
        }
    }

    /// Lloyd's update, spherical: each centroid the normalised sum of its points, summed in point
    /// order in Double (the same whatever the threads). An empty list takes a perturbed copy of
    /// the largest list's centroid, which keeps the other (faiss's split, deterministic here).
    static func update(_ centroids: FloatMatrix, points: FloatMatrix, assignment: [Int32], threads: Int) {
        let l = centroids.rows, d = centroids.cols
        var sizes = [Int](repeating: 0, count: l + 1)
        for a in assignment { sizes[Int(a) + 1] += 1 }
        for c in 0..<l { sizes[c + 1] += sizes[c] }
        var members = [Int32](repeating: 0, count: assignment.count)
        var fill = sizes
        for (i, a) in assignment.enumerated() { members[fill[Int(a)]] = Int32(i); fill[Int(a)] += 1 }
        let shared = SendableBox((centroids, points, sizes, members))
        Parallel.forEach(count: l, threads: threads, grain: 16) { _, c in
            let (centroids, points, sizes, members) = shared.value
            guard sizes[c + 1] > sizes[c] else { return }
            var sum = [Double](repeating: 0, count: d)
            for p in sizes[c]..<sizes[c + 1] {
                let row = points.row(Int(members[p]))
                for j in 0..<d { sum[j] += Double(row[j]) }
            }
            let norm = sum.reduce(0) { $0 + $1 * $1 }.squareRoot()
            // A zero sum keeps the centroid it had.
            guard norm > 0, norm.isFinite else { return }
            let out = centroids.row(c)
            for j in 0..<d { out[j] = Float(sum[j] / norm) }
        }
        var counts = (0..<l).map { sizes[$0 + 1] - sizes[$0] }
        for e in 0..<l where counts[e] == 0 {
            var big = 0
            for c in 1..<max(1, l) where counts[c] > counts[big] { big = c }
            guard counts[big] > 1 else { break }
            let eps: Float = 1.0 / 1024
            let src = centroids.row(big), dst = centroids.row(e)
            for j in 0..<d {
                let v = src[j]
                if j % 2 == 0 { dst[j] = v * (1 + eps); src[j] = v * (1 - eps) } else { dst[j] = v * (1 - eps); src[j] = v * (1 + eps) }
            }
            counts[e] = counts[big] / 2
            counts[big] -= counts[e]
            normalizeRows(centroids, only: [e, big])
        }
    }

    /// Scales rows to unit length (all rows, or those listed); a zero row stays zero.
    static func normalizeRows(_ m: FloatMatrix, only rows: [Int]?) {
        for r in rows ?? Array(0..<m.rows) {
            let row = m.row(r)
            var s: Double = 0
            for j in 0..<m.cols { s += Double(row[j]) * Double(row[j]) }
            let norm = s.squareRoot()
            guard norm > 0, norm.isFinite else { continue }
            for j in 0..<m.cols { row[j] = Float(Double(row[j]) / norm) }
        }
    }
}
