import CKernels

/// Top-k selection over score vectors: one vector by a reservoir scan (`select`), chunks or
/// scattered indices by a min-heap (`Heap`).
public enum TopK {
    /// The indices of the `k` largest finite scores, best first; ties broken by the lower index so
    /// results are deterministic. Entries with `-infinity` or NaN scores are never selected, so a
    /// caller masks an index out by setting its score to `-.infinity`.
    /// - Complexity: O(n + k log k): one comparison per score (eight at a time) against a threshold
    ///   that rises as a buffer of 2k is compacted by quickselect (`ck_top_k`), which costs less
    ///   than the heap's O(log k) per kept score when k is in the hundreds (candidate quotas).
    public static func select(_ scores: UnsafeBufferPointer<Float>, k: Int) -> [(index: Int32, score: Float)] {
        guard let base = scores.baseAddress, min(k, scores.count) > 0 else { return [] }
        let k = min(k, scores.count)
        guard scores.count <= Int(Int32.max) else {   // the reservoir's keys hold 32-bit indices
            let heap = Heap(k: k)
            heap.offer(base, count: scores.count, firstIndex: 0)
            return heap.sorted()
        }
        // One allocation: the reservoir's 2k keys, then the k results.
        let work = UnsafeMutableRawPointer.allocate(byteCount: 2 * k * 8 + k * 8, alignment: 16)
        defer { work.deallocate() }
        let keys = work.bindMemory(to: UInt64.self, capacity: 2 * k)
        let values = (work + 2 * k * 8).bindMemory(to: Float.self, capacity: k)
        let indices = (work + 2 * k * 8 + k * 4).bindMemory(to: Int32.self, capacity: k)
        let found = ck_top_k(base, scores.count, k, values, indices, keys)
        return [(index: Int32, score: Float)](unsafeUninitializedCapacity: found) { out, initialized in
            for i in 0..<found { (out.baseAddress! + i).initialize(to: (index: indices[i], score: values[i])) }
            initialized = found
        }
    }

    /// A running top k fed in chunks of scores whose indices increase from chunk to chunk (a scan
    /// of a catalogue in blocks, or ranges scanned by several threads merged in range order).
    ///
    /// The scan compares each score with one threshold (the heap's worst kept score, or -infinity
    /// until the heap is full), eight at a time (`ck_first_above`): the heap is touched only by the
    /// few scores that beat it, about k · ln(n / k) of n in random order. An equal score is never
    /// taken: it comes later, so it has the higher index and loses the tie.
    public final class Heap {
        public let capacity: Int
        private let values: UnsafeMutablePointer<Float>
        private let indices: UnsafeMutablePointer<Int32>
        public private(set) var count = 0
        /// The worst kept score once full (-infinity before): what a new score must beat.
        public private(set) var threshold = -Float.infinity

        /// A heap keeping the best `k` (k ≥ 1).
        public init(k: Int) {
            precondition(k >= 1)
            capacity = k
            values = .allocate(capacity: k)
            indices = .allocate(capacity: k)
        }

        deinit { values.deallocate(); indices.deallocate() }

        // min-heap on (score, -index): the root is the worst kept entry.
        @inline(__always) private func worse(_ a: Int, _ b: Int) -> Bool {
            values[a] < values[b] || (values[a] == values[b] && indices[a] > indices[b])
        }
        @inline(__always) private func swapAt(_ a: Int, _ b: Int) {
            let v = values[a]; values[a] = values[b]; values[b] = v
            let i = indices[a]; indices[a] = indices[b]; indices[b] = i
        }

        /// Offers `count` scores whose indices are `firstIndex`, `firstIndex + 1`, ...
        public func offer(_ scores: UnsafePointer<Float>, count n: Int, firstIndex: Int) {
            var i = 0
            while true {
                // The next score that beats the threshold (NaN and -infinity never do).
                i = ck_first_above(scores, i, n, threshold)
                guard i < n else { return }
                insert(scores[i], index: Int32(truncatingIfNeeded: firstIndex + i))
                i += 1
            }
        }

        /// Offers scores whose indices come in any order (`indices[i]` for `scores[i]`): the lists of
        /// an inverted-file index, or heaps merged in any order. An equal score is taken when its
        /// index is lower, so the kept set is the top k under (score desc, index asc) whatever the
        /// order of the offers.
        public func offer(_ scores: UnsafePointer<Float>, count n: Int, indices: UnsafePointer<Int32>) {
            var i = 0
            while true {
                // Scores >= threshold (a tie may win on its index); nextDown of -infinity is itself.
                i = ck_first_above(scores, i, n, threshold.nextDown)
                guard i < n else { return }
                insertOrdered(scores[i], index: indices[i])
                i += 1
            }
        }

        /// Offers one (score, index) in any order: kept if it beats the worst kept entry, or ties
        /// it with a lower index. -infinity and NaN are never kept.
        public func insertOrdered(_ s: Float, index: Int32) {
            if count < capacity {
                guard s > -Float.infinity else { return }
            } else {
                guard s > values[0] || (s == values[0] && index < indices[0]) else { return }
            }
            place(s, index: index)
        }

        /// Offers one (score, index) already known to beat `threshold`, or any pair: kept if it does.
        public func insert(_ s: Float, index: Int32) {
            guard s > threshold else { return }
            place(s, index: index)
        }

        /// Adds an entry known to belong among the best k: appended while the heap fills, else in
        /// place of the root.
        private func place(_ s: Float, index: Int32) {
            if count < capacity {
                values[count] = s; indices[count] = index
                var c = count
                count += 1
                while c > 0 {
                    let p = (c - 1) / 2
                    if worse(c, p) { swapAt(c, p); c = p } else { break }
                }
                if count == capacity { threshold = values[0] }
            } else {
                values[0] = s; indices[0] = index
                var j = 0
                while true {
                    let l = 2 * j + 1, r = l + 1
                    var m = j
                    if l < count && worse(l, m) { m = l }
                    if r < count && worse(r, m) { m = r }
                    if m == j { break }
                    swapAt(j, m)
                    j = m
                }
                threshold = values[0]
            }
        }

        /// The kept entries, best first (ties: lower index first).
        public func sorted() -> [(index: Int32, score: Float)] {
            var out = (0..<count).map { (index: indices[$0], score: values[$0]) }
            out.sort { $0.score > $1.score || ($0.score == $1.score && $0.index < $1.index) }
            return out
        }
    }
}
