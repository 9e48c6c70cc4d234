import ChorusCore

/// Re-ranking for diversity and how diverse a list is.
public enum Diversity {
    /// Maximal marginal relevance (Carbonell & Goldstein 1998): picks, one at a time, the candidate
    /// maximising (1 − λ) · rel(c) − λ · max_{s picked} cos(c, s), with rel the scores min-max
    /// normalised over the candidates and cos the cosine of unit item `vectors`. λ = 0 is the
    /// plain ranking; λ = 1 ignores relevance after the first pick.
    /// - Returns: candidate positions, best first (at most `k`; candidates scored -inf are never picked).
    public static func mmr(scores: [Float], items: [Int32], vectors: FloatMatrix, k: Int, lambda: Float) -> [Int] {
        let c = scores.count
        var lo = Float.infinity, hi = -Float.infinity
        for s in scores where s.isFinite { lo = min(lo, s); hi = max(hi, s) }
        let span = hi > lo ? hi - lo : 1
        var rel = scores.map { $0.isFinite ? ($0 - lo) / span : -Float.infinity }
        var maxSim = [Float](repeating: -1, count: c)
        var picked: [Int] = []
        let d = vectors.cols
        while picked.count < min(k, c) {
            var best = -1
            var bestValue = -Float.infinity
            for j in 0..<c where rel[j] > -Float.infinity {
                let penalty = picked.isEmpty ? 0 : max(0, maxSim[j])
                let v = (1 - lambda) * rel[j] - lambda * penalty
                if v > bestValue || (v == bestValue && best >= 0 && scores[j] > scores[best]) { bestValue = v; best = j }
            }
            if best < 0 { break }
            picked.append(best)
            rel[best] = -.infinity
            // Items past the vectors' rows (online new items) are unlike every other (cosine 0).
            guard Int(items[best]) < vectors.rows else { for j in 0..<c where rel[j] > -Float.infinity { maxSim[j] = max(maxSim[j], 0) }; continue }
            let pv = vectors.row(Int(items[best]))
            for j in 0..<c where rel[j] > -Float.infinity && Int(items[j]) < vectors.rows {
                maxSim[j] = max(maxSim[j], Kernels.dot(pv, vectors.row(Int(items[j])), d))
            }
        }
        return picked
    }

    /// Intra-list diversity: the mean of 1 − cos(i, j) over pairs of the list (0 for < 2 items).
    public static func intraList(_ items: [Int32], vectors: FloatMatrix) -> Double {
        guard items.count >= 2 else { return 0 }
        var total = 0.0, pairs = 0
        for a in 0..<items.count {
            for b in (a + 1)..<items.count {
                total += 1 - Double(Kernels.dot(vectors.row(Int(items[a])), vectors.row(Int(items[b])), vectors.cols))
                pairs += 1
            }
        }
        return total / Double(pairs)
    }
}
