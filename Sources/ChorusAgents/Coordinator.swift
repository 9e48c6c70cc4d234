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

    /// Fits blend weights on validation users by maximising mean NDCG@`k` of the blend.
    ///
    /// `scores` holds each validation user's normalised scores per agent; `seen(u)` gives the
    /// training items to exclude, `relevant(u)` the held-out items. The search is coordinate ascent
    /// on the simplex: from uniform weights, move mass between pairs of agents in steps that halve
    /// from `firstStep` down to `lastStep`, keeping a move when it raises validation NDCG. A coarse
    /// search (large `lastStep`) compares settings cheaply; a fine one continues from its `start`.
    /// - Returns: the weights and the validation NDCG they reach.
    public static func fitWeights(_ scores: ValidationScores, k: Int, threads: Int,
                                  start: [Float]? = nil, firstStep: Float = 0.25, lastStep: Float = 1.0 / 64,
                                  seen: @escaping @Sendable (Int) -> ArraySlice<Int32>,
                                  relevant: @escaping @Sendable (Int) -> [Int32]) throws(ChorusError) -> (weights: [Float], ndcg: Double) {
        let agentCount = scores.agentCount, itemCount = scores.itemCount
        let evaluate: ([Float]) throws(ChorusError) -> Double = { w in
            try meanNDCG(itemCount: itemCount, users: scores.users, k: k, threads: threads,
                         score: { u, out in
                             out.update(repeating: 0)
                             for a in 0..<agentCount where w[a] != 0 {
                                 Kernels.axpy(w[a], scores.row(user: u, agent: a), out.baseAddress!, itemCount)
                             }
                         },
                         seen: seen, relevant: relevant)
        }
        if agentCount == 1 { return ([1], try evaluate([1])) }
        var w = start ?? [Float](repeating: 1 / Float(agentCount), count: agentCount)
        var best = try evaluate(w)
        var step = firstStep
        while step >= lastStep {
            var improved = true
            while improved {
                improved = false
                for from in 0..<agentCount {
                    for to in 0..<agentCount where to != from {
                        let move = min(step, w[from])
                        if move <= 0 { continue }
                        var c = w
                        c[from] -= move; c[to] += move
                        let v = try evaluate(c)
                        if v > best + 1e-9 { best = v; w = c; improved = true }
                    }
                }
            }
            step /= 2
        }
        return (w, best)
    }

    /// Mean NDCG@`k` over `users` of one scorer (seen items excluded), in parallel.
    public static func meanNDCG(itemCount: Int, users: Int, k: Int, threads: Int,
                                score: @escaping @Sendable (Int, UnsafeMutableBufferPointer<Float>) -> Void,
                                seen: @escaping @Sendable (Int) -> ArraySlice<Int32>,
                                relevant: @escaping @Sendable (Int) -> [Int32]) throws(ChorusError) -> Double {
        let sums = UnsafeSendableBox([Double](repeating: 0, count: max(1, threads)))
        defer { sums.free() }
        Parallel.forEachChunk(count: users, threads: threads) { worker, range in
            var total = 0.0
            var buffer = [Float](repeating: 0, count: itemCount)
            buffer.withUnsafeMutableBufferPointer { b in
                for u in range {
                    score(u, b)
                    for i in seen(u) { b[Int(i)] = -.infinity }
                    total += ndcg(TopK.select(UnsafeBufferPointer(b), k: k).map(\.index), relevant: relevant(u), k: k)
                }
            }
            sums.pointer[worker] = total
        }
        return sums.pointer.reduce(0, +) / Double(max(1, users))
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

/// Validation users' normalised scores, per agent (agent-major rows of `itemCount` per user), cached
/// once so the blend search and the popularity half-life search do not rescore anyone.
public final class ValidationScores: @unchecked Sendable {
    public let users: Int
    public let agentCount: Int
    public let itemCount: Int
    private let cache: FloatMatrix

    public init(users: Int, agentCount: Int, itemCount: Int) throws(ChorusError) {
        self.users = users; self.agentCount = agentCount; self.itemCount = itemCount
        cache = try FloatMatrix(rows: users, cols: agentCount * itemCount, zeroed: false)
    }

    @inline(__always) public func row(user u: Int, agent a: Int) -> UnsafeMutablePointer<Float> {
        cache.row(u) + a * itemCount
    }

    /// Fills agent `a`'s rows: `score(u, out)` writes user u's raw scores, then they are normalised.
    public func fill(agent a: Int, threads: Int, _ score: @escaping @Sendable (Int, UnsafeMutableBufferPointer<Float>) -> Void) {
        Parallel.forEach(count: users, threads: threads, grain: 8) { _, u in
            let out = UnsafeMutableBufferPointer(start: self.row(user: u, agent: a), count: self.itemCount)
            score(u, out)
            Coordinator.normalize(out)
        }
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
