import CKernels

/// Top-k selection over a dense score vector with a min-heap: O(n log k), no full sort.
public enum TopK {
    /// The indices of the `k` largest finite scores, best first; ties broken by the lower index so
    /// results are deterministic. Entries with `-infinity` or NaN scores are never selected, so a
    /// caller masks an index out by setting its score to `-.infinity`.
    ///
    /// The scan compares each score with one threshold (the heap's worst kept score, or -infinity
    /// until the heap is full), eight at a time (`ck_first_above`): the heap is touched only by the
    /// few scores that beat it, about k · ln(n / k) of n in random order. (An equal score is never taken: it comes
    /// later, so it has the higher index and loses the tie.)
    /// - Complexity: O(n + k log k · log(n / k)).
    public static func select(_ scores: UnsafeBufferPointer<Float>, k: Int) -> [(index: Int32, score: Float)] {
        let cap = min(k, scores.count)
        guard cap > 0 else { return [] }
        let heapVal = UnsafeMutablePointer<Float>.allocate(capacity: cap)
        let heapIdx = UnsafeMutablePointer<Int32>.allocate(capacity: cap)
        defer { heapVal.deallocate(); heapIdx.deallocate() }
        // min-heap on (score, -index): the root is the worst kept entry.
        @inline(__always) func worse(_ a: Int, _ b: Int) -> Bool {
            heapVal[a] < heapVal[b] || (heapVal[a] == heapVal[b] && heapIdx[a] > heapIdx[b])
        }
        @inline(__always) func swapAt(_ a: Int, _ b: Int) {
            let v = heapVal[a]; heapVal[a] = heapVal[b]; heapVal[b] = v
            let i = heapIdx[a]; heapIdx[a] = heapIdx[b]; heapIdx[b] = i
        }
        var n = 0
        var threshold = -Float.infinity
        let base = scores.baseAddress!
        let count = scores.count
        var i = 0
        while true {
            // The next score that beats the threshold (8 compared per instruction; NaN and
            // -infinity never beat it).
            i = ck_first_above(base, i, count, threshold)
            guard i < count else { break }
            let s = base[i]
            if n < cap {
                heapVal[n] = s; heapIdx[n] = Int32(truncatingIfNeeded: i)
                var c = n
                n += 1
                while c > 0 {
                    let p = (c - 1) / 2
                    if worse(c, p) { swapAt(c, p); c = p } else { break }
                }
                if n == cap { threshold = heapVal[0] }
            } else {
                heapVal[0] = s; heapIdx[0] = Int32(truncatingIfNeeded: i)
                var j = 0
                while true {
                    let l = 2 * j + 1, r = l + 1
                    var m = j
                    if l < n && worse(l, m) { m = l }
                    if r < n && worse(r, m) { m = r }
                    if m == j { break }
                    swapAt(j, m)
                    j = m
                }
                threshold = heapVal[0]
            }
            i += 1
        }
        var out = (0..<n).map { (index: heapIdx[$0], score: heapVal[$0]) }
        out.sort { $0.score > $1.score || ($0.score == $1.score && $0.index < $1.index) }
        return out
    }
}
