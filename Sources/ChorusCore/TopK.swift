/// Top-k selection over a dense score vector with a min-heap: O(n log k), no full sort.
public enum TopK {
    /// The indices of the `k` largest finite scores, best first; ties broken by the lower index so
    /// results are deterministic. Entries with `-infinity` or NaN scores are never selected, so a
    /// caller masks an index out by setting its score to `-.infinity`.
    /// - Complexity: O(n log k).
    public static func select(_ scores: UnsafeBufferPointer<Float>, k: Int) -> [(index: Int32, score: Float)] {
        guard k > 0 else { return [] }
        var heapIdx = [Int32](); heapIdx.reserveCapacity(k)
        var heapVal = [Float](); heapVal.reserveCapacity(k)
        // min-heap on (score, -index): the root is the worst kept entry.
        @inline(__always) func worse(_ a: Int, _ b: Int) -> Bool {
            heapVal[a] < heapVal[b] || (heapVal[a] == heapVal[b] && heapIdx[a] > heapIdx[b])
        }
        func siftDown(_ start: Int) {
            var i = start
            let n = heapVal.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < n && worse(l, m) { m = l }
                if r < n && worse(r, m) { m = r }
                if m == i { return }
                heapVal.swapAt(i, m); heapIdx.swapAt(i, m)
                i = m
            }
        }
        for i in 0..<scores.count {
            let s = scores[i]
            guard s > -Float.infinity else { continue } // also drops NaN
            if heapVal.count < k {
                heapVal.append(s); heapIdx.append(Int32(i))
                var c = heapVal.count - 1
                while c > 0 {
                    let p = (c - 1) / 2
                    if worse(c, p) { heapVal.swapAt(c, p); heapIdx.swapAt(c, p); c = p } else { break }
                }
            } else if s > heapVal[0] {
                heapVal[0] = s; heapIdx[0] = Int32(i)
                siftDown(0)
            }
        }
        var out = zip(heapIdx, heapVal).map { (index: $0.0, score: $0.1) }
        out.sort { $0.score > $1.score || ($0.score == $1.score && $0.index < $1.index) }
        return out
    }
}
