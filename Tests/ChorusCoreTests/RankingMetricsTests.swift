import Testing
#if canImport(Glibc)
import Glibc
#endif
import ChorusCore

/// Metrics against hand-computed values. Tolerance 1e-12: every expected value below is a short
/// closed-form expression evaluated in double precision, so only rounding separates them.
@Suite struct RankingMetricsTests {
    // ranked = [10, 20, 30, 40, 50], relevant = {20, 50, 99}.
    // 0-based hit positions within k = 5: 1 (item 20) and 4 (item 50); item 99 is never recommended.
    let ranked: [Int64] = [10, 20, 30, 40, 50]
    let relevant: Set<Int64> = [20, 50, 99]
    let tol = 1e-12

    @Test func recallDividesByMinOfKAndRelevant() {
        // k = 5: 2 hits / min(5, 3) = 2/3.
        #expect(abs(RankingMetrics.recall(ranked, relevant: relevant, k: 5) - 2.0 / 3.0) < tol)
        // k = 3: top 3 = [10, 20, 30], 1 hit / min(3, 3) = 1/3.
        #expect(abs(RankingMetrics.recall(ranked, relevant: relevant, k: 3) - 1.0 / 3.0) < tol)
        // k = 2: top 2 = [10, 20], 1 hit / min(2, 3) = 1/2 (plain recall would say 1/3).
        #expect(abs(RankingMetrics.recall(ranked, relevant: relevant, k: 2) - 0.5) < tol)
        #expect(abs(RankingMetrics.plainRecall(ranked, relevant: relevant, k: 2) - 1.0 / 3.0) < tol)
        // k = 1: top 1 = [10], no hit.
        #expect(RankingMetrics.recall(ranked, relevant: relevant, k: 1) == 0)
    }

    @Test func perfectRankingWithMoreRelevantThanK() {
        // ranked [1, 2, 3], relevant {1..6}, k = 3: 3 hits / min(3, 6) = 1; plain recall 3/6 = 0.5;
        // DCG = IDCG (the 3 slots are all hits), so NDCG = 1.
        let r: [Int64] = [1, 2, 3]
        let rel: Set<Int64> = [1, 2, 3, 4, 5, 6]
        #expect(RankingMetrics.recall(r, relevant: rel, k: 3) == 1)
        #expect(RankingMetrics.plainRecall(r, relevant: rel, k: 3) == 0.5)
        #expect(abs(RankingMetrics.ndcg(r, relevant: rel, k: 3) - 1) < tol)
        #expect(RankingMetrics.precision(r, relevant: rel, k: 3) == 1)
    }

    @Test func ndcgBinaryLog2() {
        // k = 5: DCG  = 1/log2(1+2) + 1/log2(4+2) = 0.6309297535714575 + 0.3868528072345416 = 1.0177825608059992
        //        IDCG = over min(5, 3) = 3 slots: 1/log2(2) + 1/log2(3) + 1/log2(4) = 1 + 0.6309297535714575 + 0.5
        //             = 2.1309297535714578
        //        NDCG = 1.0177825608059992 / 2.1309297535714578 = 0.4776237035032179
        #expect(abs(RankingMetrics.ndcg(ranked, relevant: relevant, k: 5) - 0.4776237035032179) < tol)
        // k = 3: DCG = 1/log2(3) = 0.6309297535714575; IDCG as above (min(3, 3) = 3 slots);
        //        NDCG = 0.2960819109658652
        #expect(abs(RankingMetrics.ndcg(ranked, relevant: relevant, k: 3) - 0.2960819109658652) < tol)
        // ranked [5, 6, 7], relevant {7, 8}, k = 3: DCG = 1/log2(4) = 0.5; IDCG over min(3, 2) = 2 slots
        //        = 1 + 0.6309297535714575; NDCG = 0.5 / 1.6309297535714575 = 0.3065735963827292
        #expect(abs(RankingMetrics.ndcg([5, 6, 7], relevant: [7, 8], k: 3) - 0.3065735963827292) < tol)
    }

    @Test func hitRateAndReciprocalRank() {
        // First hit at 1-based rank 2: HR@5 = 1, RR@5 = 1/2; RR@1 = 0 (rank 2 > 1).
        #expect(RankingMetrics.hitRate(ranked, relevant: relevant, k: 5) == 1)
        #expect(RankingMetrics.reciprocalRank(ranked, relevant: relevant, k: 5) == 0.5)
        #expect(RankingMetrics.hitRate(ranked, relevant: relevant, k: 1) == 0)
        #expect(RankingMetrics.reciprocalRank(ranked, relevant: relevant, k: 1) == 0)
        // First hit at rank 4 (item 4): RR = 1/4.
        #expect(RankingMetrics.reciprocalRank([1, 2, 3, 4, 5], relevant: [4, 5], k: 10) == 0.25)
    }

    @Test func edgeCases() {
        // Empty relevant set, k = 0, empty list: all 0 (never NaN).
        #expect(RankingMetrics.recall(ranked, relevant: [], k: 5) == 0)
        #expect(RankingMetrics.ndcg(ranked, relevant: [], k: 5) == 0)
        #expect(RankingMetrics.ndcg(ranked, relevant: relevant, k: 0) == 0)
        #expect(RankingMetrics.ndcg([], relevant: relevant, k: 5) == 0)
        #expect(RankingMetrics.reciprocalRank([], relevant: relevant, k: 5) == 0)
        // A repeated item counts once: [7, 7, 8] vs {7}: 1 hit / min(3, 1) = 1; DCG = IDCG = 1.
        #expect(RankingMetrics.recall([7, 7, 8], relevant: [7], k: 3) == 1)
        #expect(RankingMetrics.ndcg([7, 7, 8], relevant: [7], k: 3) == 1)
    }

    @Test func coverage() {
        // Top 2 of each list: {1, 2} ∪ {2, 3} ∪ {5} = {1, 2, 3, 5}: 4 distinct / catalogue 10 = 0.4.
        let lists: [[Int64]] = [[1, 2, 3], [2, 3, 4], [5]]
        #expect(RankingMetrics.coverage(lists, k: 2, catalogueSize: 10) == 0.4)
        // k = 3: {1, 2, 3, 4, 5} = 5 / 10.
        #expect(RankingMetrics.coverage(lists, k: 3, catalogueSize: 10) == 0.5)
        #expect(RankingMetrics.coverage(lists, k: 3, catalogueSize: 0) == 0)
    }

    @Test func ndcgByFlagsEqualsNdcgBySet() {
        // The validation path scores candidate positions by a relevance flag: the same hits must
        // give the same bits as the set form, and relevant items absent from the list still count in IDCG.
        let byFlag = RankingMetrics.ndcg(ranked, relevantCount: relevant.count, k: 5) { relevant.contains($0) }
        #expect(byFlag == RankingMetrics.ndcg(ranked, relevant: relevant, k: 5))
        #expect(abs(byFlag - 0.4776237035032179) < tol)
        // One hit at position 0, two relevant in all: 1 / (1 + 1/log2(3)).
        let one = RankingMetrics.ndcg([7, 8, 9], relevantCount: 2, k: 3) { $0 == 7 }
        #expect(abs(one - 1 / (1 + 1 / log2(3.0))) < tol)
        #expect(RankingMetrics.ndcg([7], relevantCount: 0, k: 3) { _ in true } == 0)
        #expect(RankingMetrics.ndcg([7], relevantCount: 1, k: 0) { _ in true } == 0)
        #expect(RankingMetrics.idealDCG(relevantCount: 3, k: 2) == 1 + 1 / log2(3.0))
    }
}
