import Testing
@testable import ChorusAgents
@testable import ChorusCore

/// The validation phase's fast paths give what the plain ones give: candidates scored in batches
/// equal candidates scored one user at a time, and the linear blend's NDCG by ranks of the relevant
/// candidates equals NDCG of the selected top k, bit for bit (against the test's own selection
/// with one thread, so that both sum the users in the same order).
@Suite struct CoordinatorSearchTests {
    /// A factor agent that does not batch: the one-user-at-a-time reference.
    final class Unbatched: RecommenderAgent {
        let inner: FactorAgent
        init(_ inner: FactorAgent) { self.inner = inner }
        var name: String { inner.name }
        var modelBytes: Int { 0 }
        var itemVectors: FloatMatrix? { nil }
        func canScore(_ request: AgentRequest) -> Bool { inner.canScore(request) }
        func score(_ request: AgentRequest, into scores: UnsafeMutableBufferPointer<Float>) { inner.score(request, into: scores) }
        func encode(into w: inout ByteWriter) {}
    }

    static func cache(users: Int, items: Int, batched: Bool, seed: UInt64 = 5) throws -> ValidationCandidates {
        var rng = SeededRandom(seed: seed)
        func matrix(_ rows: Int, _ cols: Int) throws -> FloatMatrix {
            let m = try FloatMatrix(rows: rows, cols: cols)
            // Coarse values, so that scores tie.
            for i in 0..<m.count { m.base[i] = Float(rng.nextInt(below: 5)) - 2 }
            return m
        }
        let als = try FactorAgent(name: "als", userFactors: try matrix(users, 3), itemFactors: try matrix(items, 3))
        let bpr = try FactorAgent(name: "bpr", userFactors: try matrix(users, 4), itemFactors: try matrix(items, 4))
        var table = [[Float]]()
        for _ in 0..<users { table.append((0..<items).map { _ in Float(rng.nextInt(below: 7)) }) }
        let agents: [RecommenderAgent] = batched ? [als, bpr, FixedScoresAgent(name: "fixed", table: table)]
            : [Unbatched(als), Unbatched(bpr), FixedScoresAgent(name: "fixed", table: table)]
        return try ValidationCandidates(
            agents: agents, itemCount: items, quota: 6, threads: 2, users: users,
            request: { u, body in body(AgentRequest(user: Int32(u))) },
            seen: { u in [Int32(u % items), Int32((u * 3 + 1) % items)] },
            relevant: { u in [Int32((u + 2) % items), Int32((u * 7 + 5) % items), Int32((u + 11) % items)] },
            activity: { u in Float(u % 3) / 8 }, warmth: (0..<items).map { Float($0 % 4) / 8 })
    }

    @Test func batchedScoringBuildsTheSameCandidates() throws {
        // 70 users: more than one batch per worker, and a last batch that is not full.
        let a = try Self.cache(users: 70, items: 40, batched: true), b = try Self.cache(users: 70, items: 40, batched: false)
        for u in 0..<70 {
            #expect(a.candidates(u) == b.candidates(u))
            #expect(a.relevantCount(u) == b.relevantCount(u))
            for j in 0..<a.candidates(u) {
                #expect(Array(UnsafeBufferPointer(start: a.features(u, j), count: a.layout.count))
                        == Array(UnsafeBufferPointer(start: b.features(u, j), count: b.layout.count)))
                #expect(a.isRelevant(u, j) == b.isRelevant(u, j))
            }
        }
    }

    @Test func linearNDCGByRanksEqualsTheSelectedTopK() throws {
        let cache = try Self.cache(users: 90, items: 30, batched: true, seed: 9)
        #expect((0..<90).contains { cache.relevantCount($0) > 0 } && (0..<90).contains { cache.relevantCount($0) == 0 })
        let blends: [[Float]] = [[1, 0, 0], [0.5, 0.25, 0.25], [0, 0, 1], [0.2, 0.8, 0], [0, 0, 0], [0.3, -0.1, 0.8]]
        for w in blends {
            for k in [1, 3, 10, 40] {
                let byRanks = Coordinator.meanNDCG(cache, users: Array(0..<90), k: k, threads: 2, weights: w)
                let bySelection = Coordinator.meanNDCG(cache, users: Array(0..<90), k: k, threads: 2) { _, x in Coordinator.linear(w, x) }
                #expect(byRanks == bySelection, "weights \(w), k \(k)")
                // Both forms share the rank-counting loop: the reference selects the top k itself.
                var reference = 0.0
                for u in 0..<90 {
                    let scores = (0..<cache.candidates(u)).map { Coordinator.linear(w, cache.features(u, $0)) }
                    let top = scores.withUnsafeBufferPointer { TopK.select($0, k: k) }
                    reference += RankingMetrics.ndcg(top, relevantCount: cache.totalRelevant(u), k: k) { cache.isRelevant(u, Int($0.index)) }
                }
                let oneThread = Coordinator.meanNDCG(cache, users: Array(0..<90), k: k, threads: 1, weights: w)
                #expect(oneThread == reference / 90, "weights \(w), k \(k)")
            }
        }
    }
}
