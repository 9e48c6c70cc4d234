import Testing
@testable import ChorusEval

/// The evaluation's running means against hand-computed values (the metrics themselves are
/// tested in ChorusCoreTests/RankingMetricsTests). Tolerance 1e-12: every expected value below is a short
/// closed-form expression evaluated in double precision, so only rounding separates them.
@Suite struct MetricsTests {
    let ranked: [Int64] = [10, 20, 30, 40, 50]
    let relevant: Set<Int64> = [20, 50, 99]
    let tol = 1e-12

    @Test func accumulatorMeans() {
        // User A: the `ranked`/`relevant` fixture at k = 5: recall 2/3, NDCG 0.4776237035032179, HR 1, RR 1/2.
        // User B: ranked [1, 2], relevant {3}: all 0.
        // User C: relevant {} is ignored entirely (not counted as a user, its list not in coverage).
        // Means over 2 users: recall 1/3, NDCG 0.23881185175160895, HR 0.5, MRR 0.25.
        // Coverage: {10, 20, 30, 40, 50, 1, 2} = 7 of 14 = 0.5.
        var acc = MetricAccumulator(k: 5)
        acc.add(ranked, relevant: relevant)
        acc.add([1, 2], relevant: [3])
        acc.add([60, 61], relevant: [])
        #expect(acc.users == 2)
        #expect(abs(acc.recall - 1.0 / 3.0) < tol)
        #expect(abs(acc.ndcg - 0.4776237035032179 / 2) < tol)
        #expect(acc.hitRate == 0.5)
        #expect(acc.mrr == 0.25)
        #expect(acc.coverage(catalogueSize: 14) == 0.5)
    }
}
