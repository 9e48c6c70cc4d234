#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore

/// Running means of the per-user ranking metrics, so an evaluation can accumulate users batch by
/// batch without keeping every list.
public struct MetricAccumulator: Sendable, Equatable {
    public let k: Int
    public private(set) var users = 0
    public private(set) var recallSum = 0.0
    public private(set) var plainRecallSum = 0.0
    public private(set) var ndcgSum = 0.0
    public private(set) var hitSum = 0.0
    public private(set) var reciprocalRankSum = 0.0
    public private(set) var recommended = Set<Int64>()

    public init(k: Int) { self.k = k }

    /// Adds one user's ranked list. Users with an empty `relevant` set are ignored.
    public mutating func add(_ ranked: [Int64], relevant: Set<Int64>) {
        guard !relevant.isEmpty else { return }
        users += 1
        recallSum += RankingMetrics.recall(ranked, relevant: relevant, k: k)
        plainRecallSum += RankingMetrics.plainRecall(ranked, relevant: relevant, k: k)
        ndcgSum += RankingMetrics.ndcg(ranked, relevant: relevant, k: k)
        hitSum += RankingMetrics.hitRate(ranked, relevant: relevant, k: k)
        reciprocalRankSum += RankingMetrics.reciprocalRank(ranked, relevant: relevant, k: k)
        recommended.formUnion(ranked.prefix(k))
    }

    public var recall: Double { mean(recallSum) }
    public var plainRecall: Double { mean(plainRecallSum) }
    public var ndcg: Double { mean(ndcgSum) }
    public var hitRate: Double { mean(hitSum) }
    public var mrr: Double { mean(reciprocalRankSum) }
    /// Catalogue coverage@k of everything added so far (see `RankingMetrics.coverage`).
    public func coverage(catalogueSize: Int) -> Double {
        catalogueSize > 0 ? Double(recommended.count) / Double(catalogueSize) : 0
    }

    private func mean(_ sum: Double) -> Double { users > 0 ? sum / Double(users) : 0 }
}
