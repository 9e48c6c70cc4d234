import ChorusCore

/// Item-to-item neighbour lists: for every item, its `k` strongest neighbours by a similarity the
/// caller accumulates, kept as a sparse items x items matrix (row j = j's neighbours).
///
/// Two similarities are built here:
/// - `cosine`: co-occurrence in users' histories, c_jl / sqrt(n_j n_l) on the binarised matrix
///   (item-kNN, Sarwar et al. 2001; Deshpande & Karypis 2004).
/// - `transitions`: what users interacted with next, in time order: for every occurrence of j in a
///   user's sequence, the next `window` items l get 1/d (d = 1, 2, ... steps later), normalised by
///   sqrt(n_j n_l) so popular items do not take over every list (a session / next-item model).
public enum ItemNeighbours {
    public struct Parameters: Sendable, Equatable {
        /// Neighbours kept per item.
        public var neighbours = 100
        /// Items after each occurrence that count as "next" (transitions only).
        public var window = 5
        public var threads = 0
        public init() {}
    }

    /// Row j: j's neighbours l with their similarity, strongest first within the kept k (columns
    /// are not sorted by index).
    public struct Table: Sendable {
        public let items: Int
        public let rowStart: [Int]
        public let neighbour: [Int32]
        public let similarity: [Float]

        public init(items: Int, rowStart: [Int], neighbour: [Int32], similarity: [Float]) throws(ChorusError) {
            guard rowStart.count == items + 1, rowStart.first == 0, rowStart.last == neighbour.count,
                  neighbour.count == similarity.count, zip(rowStart, rowStart.dropFirst()).allSatisfy({ $0 <= $1 }),
                  neighbour.allSatisfy({ $0 >= 0 && Int($0) < items }), similarity.allSatisfy(\.isFinite) else {
                throw .format("an item neighbour table is malformed")
            }
            self.items = items; self.rowStart = rowStart; self.neighbour = neighbour; self.similarity = similarity
        }

        public var byteCount: Int { rowStart.count * 8 + neighbour.count * 8 }

        /// scores[l] += weight * sim(j, l) for j's neighbours.
        @inline(__always)
        public func accumulate(_ j: Int, weight: Float, into scores: UnsafeMutableBufferPointer<Float>) {
            for e in rowStart[j]..<rowStart[j + 1] { scores[Int(neighbour[e])] += weight * similarity[e] }
        }
    }

    /// Cosine item-kNN on the binarised `userItems` (users x items).
    public static func cosine(userItems ui: SparseMatrix, parameters p: Parameters) throws(ChorusError) -> Table {
        // The transpose lives only while the rows are built, not while they are joined.
        let slices: [Slice] = {
            let iu = ui.transposed()
            let counts = (0..<iu.rows).map { Float(iu.rowStart[$0 + 1] - iu.rowStart[$0]) }
            return rows(items: ui.cols, parameters: p, counts: counts) { j, acc in
                for e in iu.rowStart[j]..<iu.rowStart[j + 1] {
                    let u = Int(iu.colIndex[e])
                    for f in ui.rowStart[u]..<ui.rowStart[u + 1] { acc(Int(ui.colIndex[f]), 1) }
                }
            }
        }()
        return try join(consume slices, items: ui.cols)
    }

    /// Next-item transitions from each user's time-ordered sequence (`sequences[u]`: item indices,
    /// oldest first).
    public static func transitions(sequences: [[Int32]], items: Int, parameters p: Parameters) throws(ChorusError) -> Table {
        var rowStart = [0]
        for s in sequences { rowStart.append(rowStart.last! + s.count) }
        return try transitions(rowStart: rowStart, sequence: Array(sequences.joined()), items: items, parameters: p)
    }

    /// The same from the sequences laid end to end: user u's is `sequence[rowStart[u] ..< rowStart[u + 1]]`.
    public static func transitions(rowStart: [Int], sequence: [Int32], items: Int, parameters p: Parameters) throws(ChorusError) -> Table {
        guard let last = rowStart.last, last == sequence.count, rowStart.first == 0,
              zip(rowStart, rowStart.dropFirst()).allSatisfy({ $0 <= $1 }), sequence.allSatisfy({ $0 >= 0 && Int($0) < items }) else {
            throw .invalidArgument("transitions: sequences and their starts disagree, or an item is out of range")
        }
        guard sequence.count < Int(Int32.max) else { throw .invalidArgument("transitions take fewer than 2^31 items in all, got \(sequence.count)") }
        // The occurrence tables live only while the rows are built, not while they are joined.
        let slices: [Slice] = {
            // Every occurrence of every item, as its position in `sequence`, with the end of its user's sequence.
            var occurrenceStart = [Int](repeating: 0, count: items + 1)
            for i in sequence { occurrenceStart[Int(i) + 1] += 1 }
            for i in 0..<items { occurrenceStart[i + 1] += occurrenceStart[i] }
            var fill = occurrenceStart
            var occPos = [Int32](repeating: 0, count: sequence.count), occEnd = [Int32](repeating: 0, count: sequence.count)
            for u in 0..<(rowStart.count - 1) {
                for pos in rowStart[u]..<rowStart[u + 1] {
                    let i = Int(sequence[pos])
                    occPos[fill[i]] = Int32(truncatingIfNeeded: pos); occEnd[fill[i]] = Int32(truncatingIfNeeded: rowStart[u + 1])
                    fill[i] += 1
                }
            }
            let counts = (0..<items).map { Float(occurrenceStart[$0 + 1] - occurrenceStart[$0]) }
            let window = max(1, p.window)
            let (positions, ends, starts, s) = (occPos, occEnd, occurrenceStart, sequence)
            return rows(items: items, parameters: p, counts: counts) { j, acc in
                for e in starts[j]..<starts[j + 1] {
                    let pos = Int(positions[e]), end = Int(ends[e])
                    var d = 1
                    while d <= window && pos + d < end {
                        acc(Int(s[pos + d]), 1 / Float(d))
                        d += 1
                    }
                }
            }
        }()
        return try join(consume slices, items: items)
    }

    /// One slice of items' neighbour rows (`rows`), in item order from `first`.
    struct Slice: Sendable { var first = 0; var counts: [Int] = []; var neighbour: [Int32] = []; var similarity: [Float] = [] }

    /// Runs `accumulate(j, add)` per item into a dense row, normalises by sqrt(n_j n_l), keeps the
    /// top `neighbours` (j itself excluded). Items in parallel, in slices (`join` makes the
    /// table); the result does not depend on the thread count.
    static func rows(items n: Int, parameters p: Parameters, counts: [Float],
                     accumulate: @escaping @Sendable (Int, (Int, Float) -> Void) -> Void) -> [Slice] {
        let k = max(1, min(p.neighbours, max(1, n - 1)))
        let threads = p.threads > 0 ? p.threads : Parallel.cpuCount
        // Each slice of items keeps its rows in lists of its own (most items have fewer than k
        // neighbours: an items x k table would hold 800 MB at a million items).
        let slices = Lock<[Slice]>([])
        Parallel.forEachChunk(count: n, threads: threads) { _, range in
            var mine = Slice(first: range.lowerBound)
            mine.counts.reserveCapacity(range.count)
            let acc = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
            defer { acc.deallocate() }
            acc.update(repeating: 0)
            var touched: [Int32] = []
            var gathered: [Float] = []
            var cand: [Int32] = []
            for j in range {
                touched.removeAll(keepingCapacity: true)
                accumulate(j) { l, w in
                    if acc[l] == 0 { touched.append(Int32(l)) }
                    acc[l] += w
                }
                gathered.removeAll(keepingCapacity: true)
                cand.removeAll(keepingCapacity: true)
                for l in touched where Int(l) != j {
                    let denom = (counts[j] * counts[Int(l)]).squareRoot()
                    if denom > 0 { cand.append(l); gathered.append(acc[Int(l)] / denom) }
                }
                for l in touched { acc[Int(l)] = 0 }
                let top = gathered.withUnsafeBufferPointer { TopK.select($0, k: k) }
                mine.counts.append(top.count)
                for t in top {
                    mine.neighbour.append(cand[Int(t.index)])
                    mine.similarity.append(t.score)
                }
            }
            slices.withLock { $0.append(mine) }
        }
        return slices.withLock { all in
            defer { all = [] }
            return all
        }
    }

    /// The slices' rows as one table, in item order. Joined into arrays of the exact size, each
    /// slice released once copied: the slices and a growing copy of them all would otherwise be
    /// held together (the peak memory of a fit at a million items).
    static func join(_ slices: consuming [Slice], items n: Int) throws(ChorusError) -> Table {
        var parts = consume slices
        parts.sort { $0.first < $1.first }
        let total = parts.reduce(0) { $0 + $1.neighbour.count }
        var rowStart = [Int](repeating: 0, count: n + 1)
        var neighbour: [Int32] = [], similarity: [Float] = []
        neighbour.reserveCapacity(total); similarity.reserveCapacity(total)
        var j = 0
        for s in parts.indices {
            let slice = parts[s]
            parts[s] = Slice()
            for c in slice.counts { rowStart[j + 1] = rowStart[j] + c; j += 1 }
            neighbour += slice.neighbour
            similarity += slice.similarity
        }
        guard j == n else { throw .internalError("item neighbours: \(j) of \(n) items built") }
        return try Table(items: n, rowStart: rowStart, neighbour: neighbour, similarity: similarity)
    }
}
