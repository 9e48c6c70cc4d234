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
        let iu = ui.transposed()
        let counts = (0..<iu.rows).map { Float(iu.rowStart[$0 + 1] - iu.rowStart[$0]) }
        return try build(items: ui.cols, parameters: p, counts: counts) { j, acc in
            for e in iu.rowStart[j]..<iu.rowStart[j + 1] {
                let u = Int(iu.colIndex[e])
                for f in ui.rowStart[u]..<ui.rowStart[u + 1] { acc(Int(ui.colIndex[f]), 1) }
            }
        }
    }

    /// Next-item transitions from each user's time-ordered sequence (`sequences[u]`: item indices,
    /// oldest first).
    public static func transitions(sequences: [[Int32]], items: Int, parameters p: Parameters) throws(ChorusError) -> Table {
        // Every occurrence of every item: (user, position).
        var occurrenceStart = [Int](repeating: 0, count: items + 1)
        for s in sequences { for i in s { occurrenceStart[Int(i) + 1] += 1 } }
        for i in 0..<items { occurrenceStart[i + 1] += occurrenceStart[i] }
        var fill = occurrenceStart
        var occUser = [Int32](repeating: 0, count: occurrenceStart[items])
        var occPos = [Int32](repeating: 0, count: occurrenceStart[items])
        for (u, s) in sequences.enumerated() {
            for (pos, i) in s.enumerated() {
                occUser[fill[Int(i)]] = Int32(u); occPos[fill[Int(i)]] = Int32(pos)
                fill[Int(i)] += 1
            }
        }
        let counts = (0..<items).map { Float(occurrenceStart[$0 + 1] - occurrenceStart[$0]) }
        let window = max(1, p.window)
        let (users, positions, starts) = (occUser, occPos, occurrenceStart)
        return try build(items: items, parameters: p, counts: counts) { j, acc in
            for e in starts[j]..<starts[j + 1] {
                let s = sequences[Int(users[e])]
                let pos = Int(positions[e])
                var d = 1
                while d <= window && pos + d < s.count {
                    acc(Int(s[pos + d]), 1 / Float(d))
                    d += 1
                }
            }
        }
    }

    /// Runs `accumulate(j, add)` per item into a dense row, normalises by sqrt(n_j n_l), keeps the
    /// top `neighbours` (j itself excluded). Items in parallel; the result does not depend on the
    /// thread count.
    static func build(items n: Int, parameters p: Parameters, counts: [Float],
                      accumulate: @escaping @Sendable (Int, (Int, Float) -> Void) -> Void) throws(ChorusError) -> Table {
        let k = max(1, min(p.neighbours, max(1, n - 1)))
        let threads = p.threads > 0 ? p.threads : Parallel.cpuCount
        let kept = try FloatMatrix(rows: n, cols: k)
        let keptIndex = UnsafeMutableBufferPointer<Int32>.allocate(capacity: n * k)
        defer { keptIndex.deallocate() }
        let keptCount = UnsafeMutableBufferPointer<Int>.allocate(capacity: n)
        defer { keptCount.deallocate() }
        let out = SendableBox((kept, keptIndex, keptCount))
        Parallel.forEachChunk(count: n, threads: threads) { _, range in
            let (kept, keptIndex, keptCount) = out.value
            let acc = UnsafeMutableBufferPointer<Float>.allocate(capacity: n)
            defer { acc.deallocate() }
            acc.update(repeating: 0)
            var touched: [Int32] = []
            var gathered: [Float] = []
            for j in range {
                touched.removeAll(keepingCapacity: true)
                accumulate(j) { l, w in
                    if acc[l] == 0 { touched.append(Int32(l)) }
                    acc[l] += w
                }
                gathered.removeAll(keepingCapacity: true)
                var cand: [Int32] = []
                cand.reserveCapacity(touched.count)
                for l in touched where Int(l) != j {
                    let denom = (counts[j] * counts[Int(l)]).squareRoot()
                    if denom > 0 { cand.append(l); gathered.append(acc[Int(l)] / denom) }
                }
                for l in touched { acc[Int(l)] = 0 }
                let top = gathered.withUnsafeBufferPointer { TopK.select($0, k: k) }
                keptCount[j] = top.count
                for (slot, t) in top.enumerated() {
                    keptIndex[j * k + slot] = cand[Int(t.index)]
                    kept.row(j)[slot] = t.score
                }
            }
        }
        var rowStart = [Int](repeating: 0, count: n + 1)
        for j in 0..<n { rowStart[j + 1] = rowStart[j] + keptCount[j] }
        var neighbour = [Int32](repeating: 0, count: rowStart[n])
        var similarity = [Float](repeating: 0, count: rowStart[n])
        for j in 0..<n {
            for slot in 0..<keptCount[j] {
                neighbour[rowStart[j] + slot] = keptIndex[j * k + slot]
                similarity[rowStart[j] + slot] = kept.row(j)[slot]
            }
        }
        return try Table(items: n, rowStart: rowStart, neighbour: neighbour, similarity: similarity)
    }
}
