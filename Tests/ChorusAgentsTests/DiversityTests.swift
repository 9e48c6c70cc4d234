import Testing
@testable import ChorusAgents
@testable import ChorusCore

/// Unit item vectors in the plane, one row each.
func planeVectors(_ rows: [(Float, Float)]) throws -> FloatMatrix {
    let m = try FloatMatrix(rows: rows.count, cols: 2)
    for (i, (x, y)) in rows.enumerated() {
        let n = (x * x + y * y).squareRoot()
        m.row(i)[0] = x / n; m.row(i)[1] = y / n
    }
    return m
}

@Suite struct DiversityTests {
    /// Item 0 = e0; item 1 almost e0 (a near-duplicate of 0); item 2 = e1 (orthogonal to 0);
    /// item 3 halfway (cos 0.707 with both 0 and 2). Relevance falls from 0 to 2.
    static func fixture() throws -> (vectors: FloatMatrix, scores: [Float], items: [Int32]) {
        (try planeVectors([(1, 0), (1, 0.01), (0, 1), (1, 1)]), [1.0, 0.9, 0.1, 0.8], [0, 1, 2, 3])
    }

    @Test func lambdaZeroIsThePlainRanking() throws {
        let (v, s, items) = try Self.fixture()
        #expect(Diversity.mmr(scores: s, items: items, vectors: v, k: 4, lambda: 0) == [0, 1, 3, 2])
        #expect(Diversity.mmr(scores: s, items: items, vectors: v, k: 2, lambda: 0) == [0, 1])
        // Candidates are positions: items in another order give the same picks by score.
        #expect(Diversity.mmr(scores: [0.1, 0.8, 1.0, 0.9], items: [2, 3, 0, 1], vectors: v, k: 4, lambda: 0) == [2, 3, 1, 0])
    }

    @Test func lambdaOnePicksTheMostDifferentItemNext() throws {
        let (v, s, items) = try Self.fixture()
        // First the best item (0); then the one least like it (2, cos 0), then 3 (max cos 0.707)
        // before the near-duplicate 1 (cos ≈ 1).
        #expect(Diversity.mmr(scores: s, items: items, vectors: v, k: 4, lambda: 1) == [0, 2, 3, 1])
        // Halfway (relevance min-max normalised: 1, 0.8/0.9, 0, 0.7/0.9): after 0, item 1 is worth
        // ½·0.889 − ½·1.0 ≈ −0.056, item 2 ½·0 − ½·0 = 0, item 3 ½·0.778 − ½·0.707 ≈ 0.035: item 3 comes second.
        #expect(Diversity.mmr(scores: s, items: items, vectors: v, k: 2, lambda: 0.5) == [0, 3])
    }

    @Test func minusInfinityIsNeverPicked() throws {
        let (v, _, items) = try Self.fixture()
        #expect(Diversity.mmr(scores: [1, -.infinity, 0.5, 0.2], items: items, vectors: v, k: 4, lambda: 0.3).sorted() == [0, 2, 3])
    }

    @Test func intraListDiversity() throws {
        let v = try planeVectors([(1, 0), (0, 1), (1, 0), (1, 1)])
        #expect(abs(Diversity.intraList([0, 1], vectors: v) - 1) < 1e-7)          // orthogonal
        #expect(abs(Diversity.intraList([0, 2], vectors: v)) < 1e-7)              // identical
        #expect(Diversity.intraList([3], vectors: v) == 0 && Diversity.intraList([], vectors: v) == 0)
        // Pairs (0,1): 1, (0,3) and (1,3): 1 − 1/√2 each.
        #expect(abs(Diversity.intraList([0, 1, 3], vectors: v) - (1 + 2 * (1 - 0.5.squareRoot())) / 3) < 1e-6)
    }
}
