import ChorusCore

/// Blends agents' scores: each agent's scores for a user are min-max normalised over the
/// catalogue to [0, 1], then combined as Σ_a w_a s_a with w on the simplex. The weights are fitted
/// on a validation hold-out (see `fitWeights`), never set by hand; each recommended item reports
/// each agent's share w_a s_a / Σ_b w_b s_b.
public enum Coordinator {
    /// Min-max normalises `scores` in place to [0, 1]; a constant vector becomes all zeros.
    @inline(__always)
    public static func normalize(_ scores: UnsafeMutableBufferPointer<Float>) {
        var lo = Float.infinity, hi = -Float.infinity
        for s in scores { lo = min(lo, s); hi = max(hi, s) }
        let span = hi - lo
        if !(span > 0) || !span.isFinite { scores.update(repeating: 0); return }
        let inv = 1 / span
        for i in scores.indices { scores[i] = (scores[i] - lo) * inv }
    }

    /// Fits blend weights on validation users by maximising mean NDCG@`k`.
    ///
    /// `normalized(u)` gives agent-major normalised scores (agents x items) for validation user `u`,
    /// `seen(u)` the training items to exclude, `relevant(u)` the held-out items. The search is
    /// coordinate ascent on the simplex: from uniform weights, move mass between pairs of agents in
    /// steps that halve from 0.25 down to 1/64, keeping a move when it raises validation NDCG.
    /// - Returns: the weights and the validation NDCG they reach.
    public static func fitWeights(agentCount: Int, itemCount: Int, validationUsers: Int, k: Int,
                                  threads: Int,
                                  normalized: @escaping @Sendable (Int, UnsafeMutablePointer<Float>) -> Void,
                                  seen: @escaping @Sendable (Int) -> ArraySlice<Int32>,
                                  relevant: @escaping @Sendable (Int) -> [Int32]) throws(ChorusError) -> (weights: [Float], ndcg: Double) {
        if agentCount == 1 { return ([1], 0) }
        // Cache every validation user's normalised scores once: agents x items per user.
        let stride = agentCount * itemCount
        let cache = try FloatMatrix(rows: validationUsers, cols: stride)
        Parallel.forEach(count: validationUsers, threads: threads, grain: 8) { _, u in
            normalized(u, cache.row(u))
        }
        let evaluate: ([Float]) -> Double = { w in
            let box = SendableBox(w)
            let sums = UnsafeSendableBox([Double](repeating: 0, count: max(1, threads)))
            Parallel.forEachChunk(count: validationUsers, threads: threads) { worker, range in
                var total = 0.0
                var blended = [Float](repeating: 0, count: itemCount)
                blended.withUnsafeMutableBufferPointer { b in
                    for u in range {
                        let row = cache.row(u)
                        for i in 0..<itemCount { b[i] = 0 }
                        for a in 0..<agentCount where box.value[a] != 0 {
                            Kernels.axpy(box.value[a], row + a * itemCount, b.baseAddress!, itemCount)
                        }
                        for i in seen(u) { b[Int(i)] = -.infinity }
                        let top = TopK.select(UnsafeBufferPointer(b), k: k)
                        total += ndcg(top.map(\.index), relevant: relevant(u), k: k)
                    }
                }
                sums.pointer[worker] = total
            }
            let s = sums.pointer.reduce(0, +)
            sums.free()
            return s / Double(max(1, validationUsers))
        }
        var w = [Float](repeating: 1 / Float(agentCount), count: agentCount)
        var best = evaluate(w)
        var step: Float = 0.25
        while step >= 1.0 / 64 {
            var improved = true
            while improved {
                improved = false
                for from in 0..<agentCount {
                    for to in 0..<agentCount where to != from {
                        let move = min(step, w[from])
                        if move <= 0 { continue }
                        var c = w
                        c[from] -= move; c[to] += move
                        let v = evaluate(c)
                        if v > best + 1e-9 { best = v; w = c; improved = true }
                    }
                }
            }
            step /= 2
        }
        return (w, best)
    }

    /// NDCG@k with binary relevance (log2 discount; ideal over min(k, |relevant|)).
    static func ndcg(_ ranked: [Int32], relevant: [Int32], k: Int) -> Double {
        if relevant.isEmpty { return 0 }
        var dcg = 0.0
        for (pos, item) in ranked.prefix(k).enumerated() where relevant.contains(item) {
            dcg += 1 / log2(Double(pos + 2))
        }
        var ideal = 0.0
        for pos in 0..<min(k, relevant.count) { ideal += 1 / log2(Double(pos + 2)) }
        return dcg / ideal
    }
}

/// A small fixed-size buffer shared by workers that each write their own slot.
final class UnsafeSendableBox: @unchecked Sendable {
    let pointer: UnsafeMutableBufferPointer<Double>
    init(_ values: [Double]) {
        pointer = .allocate(capacity: values.count)
        _ = pointer.initialize(from: values)
    }
    func free() { pointer.deallocate() }
}

#if canImport(Glibc)
import Glibc
#endif
