#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Top-k ranking metrics with binary relevance, for one user's ranked list against the items that
/// user actually went on to interact with. The one implementation: the coordinator's validation,
/// the fit's half-life choice and ChorusEval's evaluation all score with it.
///
/// Conventions shared by every metric here:
/// - Only the first `k` entries of `ranked` count; a shorter list is simply scored as it is.
/// - An item repeated in `ranked` counts once, at its first position (a well-formed engine never
///   repeats items; this keeps every metric within [0, 1] if one does).
/// - With `k <= 0` or an empty `relevant` set every metric is 0: the evaluation skips users with
///   nothing relevant, so this case never enters a mean.
public enum RankingMetrics {
    /// The positions (0-based, ascending) within the top `k` of `ranked` that hold a relevant
    /// item, each relevant item counted at its first occurrence only.
    /// - Complexity: O(min(k, ranked.count)).
    public static func hitPositions<Element: Hashable>(_ ranked: some Collection<Element>, relevant: Set<Element>, k: Int) -> [Int] {
        guard k > 0, !relevant.isEmpty else { return [] }
        var out: [Int] = []
        var seen = Set<Element>()
        for (position, item) in ranked.prefix(k).enumerated() where relevant.contains(item) {
            if seen.insert(item).inserted { out.append(position) }
        }
        return out
    }

    /// Recall@k, truncated variant: `hits in the top k / min(k, |relevant|)`.
    ///
    /// Dividing by `min(k, |relevant|)` instead of `|relevant|` makes a perfect ranking score 1
    /// even when a user has more relevant items than fit in k slots (the "R@k" of Liang et al.
    /// 2018, VAE-CF, and of many implicit-feedback benchmarks). `plainRecall` is the textbook
    /// `hits / |relevant|`.
    /// - Returns: a value in [0, 1].
    public static func recall<Element: Hashable>(_ ranked: some Collection<Element>, relevant: Set<Element>, k: Int) -> Double {
        guard k > 0, !relevant.isEmpty else { return 0 }
        let hits = hitPositions(ranked, relevant: relevant, k: k).count
        return Double(hits) / Double(min(k, relevant.count))
    }

    /// Plain recall@k: `hits in the top k / |relevant|`. Its maximum is `min(1, k / |relevant|)`.
    public static func plainRecall<Element: Hashable>(_ ranked: some Collection<Element>, relevant: Set<Element>, k: Int) -> Double {
        guard k > 0, !relevant.isEmpty else { return 0 }
        return Double(hitPositions(ranked, relevant: relevant, k: k).count) / Double(relevant.count)
    }

    /// Precision@k: `hits in the top k / k` (a list shorter than k is still divided by k).
    public static func precision<Element: Hashable>(_ ranked: some Collection<Element>, relevant: Set<Element>, k: Int) -> Double {
        guard k > 0, !relevant.isEmpty else { return 0 }
        return Double(hitPositions(ranked, relevant: relevant, k: k).count) / Double(k)
    }

    /// NDCG@k with binary relevance and the log2 discount:
    ///
    ///     DCG  = sum over hits at 0-based position p of 1 / log2(p + 2)
    ///     IDCG = sum for p in 0 ..< min(k, |relevant|) of 1 / log2(p + 2)
    ///     NDCG = DCG / IDCG
    ///
    /// - Returns: a value in [0, 1]; 1 exactly when the first `min(k, |relevant|)` slots are all hits.
    public static func ndcg<Element: Hashable>(_ ranked: some Collection<Element>, relevant: Set<Element>, k: Int) -> Double {
        guard k > 0, !relevant.isEmpty else { return 0 }
        var dcg = 0.0
        for p in hitPositions(ranked, relevant: relevant, k: k) { dcg += discount(p) }
        return dcg / idealDCG(relevantCount: relevant.count, k: k)
    }

    /// NDCG@k for a ranked list whose relevance is known per entry (`isRelevant`) rather than as
    /// a set, with `relevantCount` relevant items in all (IDCG counts them even when they are
    /// not in the list). Entries must be distinct. The same sums, in the same order, as
    /// `ndcg(_:relevant:k:)`: both give bit-identical values for the same hits.
    public static func ndcg<Element>(_ ranked: some Collection<Element>, relevantCount: Int, k: Int,
                                     isRelevant: (Element) -> Bool) -> Double {
        guard k > 0, relevantCount > 0 else { return 0 }
        var dcg = 0.0
        for (p, item) in ranked.prefix(k).enumerated() where isRelevant(item) { dcg += discount(p) }
        return dcg / idealDCG(relevantCount: relevantCount, k: k)
    }

    /// IDCG@k: Σ for p in 0 ..< min(k, relevantCount) of 1 / log2(p + 2).
    public static func idealDCG(relevantCount: Int, k: Int) -> Double {
        var idcg = 0.0
        for p in 0..<max(0, min(k, relevantCount)) { idcg += discount(p) }
        return idcg
    }

    /// HitRate@k: 1 when at least one relevant item is in the top k, else 0.
    public static func hitRate<Element: Hashable>(_ ranked: some Collection<Element>, relevant: Set<Element>, k: Int) -> Double {
        guard k > 0, !relevant.isEmpty else { return 0 }
        for item in ranked.prefix(k) where relevant.contains(item) { return 1 }
        return 0
    }

    /// The reciprocal rank within k: `1 / (1-based rank of the first relevant item)` when that
    /// rank is at most k, else 0. Its mean over users is MRR@k.
    public static func reciprocalRank<Element: Hashable>(_ ranked: some Collection<Element>, relevant: Set<Element>, k: Int) -> Double {
        guard k > 0, !relevant.isEmpty else { return 0 }
        for (position, item) in ranked.prefix(k).enumerated() where relevant.contains(item) {
            return 1 / Double(position + 1)
        }
        return 0
    }

    /// Catalogue coverage@k: the number of distinct items that appear in at least one user's
    /// top k, divided by `catalogueSize` (typically the number of distinct items the engine was
    /// trained on). Items outside the catalogue are counted too, so pass the size that matches
    /// what the engine can recommend.
    /// - Returns: a value in [0, 1] when every recommended item is in the catalogue; 0 when
    ///   `catalogueSize <= 0`.
    /// - Complexity: O(users x k).
    public static func coverage<Element: Hashable>(_ lists: some Sequence<[Element]>, k: Int, catalogueSize: Int) -> Double {
        guard catalogueSize > 0, k > 0 else { return 0 }
        var distinct = Set<Element>()
        for list in lists { distinct.formUnion(list.prefix(k)) }
        return Double(distinct.count) / Double(catalogueSize)
    }

    /// `1 / log2(position + 2)` for a 0-based position.
    @inline(__always) public static func discount(_ position: Int) -> Double {
        1 / log2(Double(position + 2))
    }
}
