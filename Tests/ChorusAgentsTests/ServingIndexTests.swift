import Testing
@testable import ChorusAgents
@testable import ChorusCore

/// Serving from an index (issue 16, large catalogues): factor agents with a serving index propose
/// from it (`FactorAgent.indexedProposals`), and the coordinator ranks the union as before.
@Suite struct ServingIndexTests {
    /// A factor agent over `n` random items (8 factors).
    static func agent(items n: Int, users: Int = 5, seed: UInt64 = 3) throws -> FactorAgent {
        var rng = SeededRandom(seed: seed)
        let u = try FloatMatrix(rows: users, cols: 8), v = try FloatMatrix(rows: n, cols: 8)
        for i in 0..<(users * 8) { u.base[i] = rng.nextFloat() - 0.5 }
        for i in 0..<(n * 8) { v.base[i] = rng.nextFloat() - 0.5 }
        return try FactorAgent(name: "als", userFactors: u, itemFactors: v)
    }

    /// With every list probed (60 items: 8 lists, all probed), the proposals are the agent's exact
    /// top k of its own scores, the range's top is the best score, its bottom is a real score no
    /// lower than the catalogue's lowest, and any item is scored as `score` scores it.
    @Test func proposalsAreTheExactTopWhenEveryListIsProbed() throws {
        let plain = try Self.agent(items: 60)
        let indexed = plain.indexedForServing(minimumItems: 1, threads: 2)
        let index = try #require(indexed.servingIndex)
        #expect(FactorAgent.probes(lists: index.listCount).top >= index.listCount)
        #expect(!indexed.scoresInBatches && plain.scoresInBatches)
        #expect(plain.indexedForServing(minimumItems: 61, threads: 2).servingIndex == nil)
        for user in Int32(0)..<5 {
            let request = AgentRequest(user: user)
            var row = [Float](repeating: 0, count: 60)
            row.withUnsafeMutableBufferPointer { plain.score(request, into: $0) }
            let exact = row.withUnsafeBufferPointer { TopK.select($0, k: 10) }
            let p = try #require(indexed.indexedProposals(request, k: 10))
            #expect(p.top.map(\.index) == exact.map(\.index), "user \(user)")
            #expect(p.hi == row.max()!)
            #expect(p.lo >= row.min()! && p.lo <= p.hi)
            for item in Int32(0)..<60 { #expect(abs(p.score(item) - row[Int(item)]) < 1e-5) }
        }
        // No vector, no proposals: the request is scored as before (or not at all).
        #expect(indexed.indexedProposals(AgentRequest(user: nil), k: 10) == nil)
        #expect(plain.indexedProposals(AgentRequest(user: 0), k: 10) == nil)
    }

    /// Two clusters of users over 240 items.
    static func engine(indexFrom minimum: Int) throws -> Engine {
        let e = Engine(config: EngineConfig(hashingEncoder: true))
        var batch: [Interaction] = []
        var rng = SeededRandom(seed: 5)
        var t: Int64 = 1_000_000
        for u in 1...160 {
            let base: Int64 = u % 2 == 1 ? 1000 : 2000
            for i in 1...120 where rng.nextFloat() < 0.12 {
                t += 60
                batch.append(Interaction(user: Int64(u), item: base + Int64(i), weight: 1, timestamp: t))
            }
        }
        try e.add(batch)
        var p = fastParameters()
        p.factors = 8
        p.servingIndexMinimumItems = minimum
        try e.fit(p)
        return e
    }

    /// An engine whose factor agents serve from indexes recommends what the same fit does without
    /// them in most places, and never an item the request masks: seen, denied or dismissed.
    @Test func indexedServingKeepsTheRankingAndItsMasks() throws {
        let withIndex = try Self.engine(indexFrom: 1), without = try Self.engine(indexFrom: 1_000_000)
        let (mi, mo) = try (#require(withIndex.dataAndModel.model), #require(without.dataAndModel.model))
        #expect(mi.agents.contains { ($0 as? FactorAgent)?.servingIndex != nil })
        #expect(!mo.agents.contains { ($0 as? FactorAgent)?.servingIndex != nil })
        let users = Array(Int64(1)...160)
        var options = RecommendOptions()
        options.deny = [1001, 1002, 2001, 2002]
        try withIndex.feedback(users: [1], items: [1003], events: [FeedbackEvent.dismiss.rawValue])
        try without.feedback(users: [1], items: [1003], events: [FeedbackEvent.dismiss.rawValue])
        let a = try withIndex.recommend(users: users, k: 10, options: options)
        let b = try without.recommend(users: users, k: 10, options: options)
        var shared = 0
        let data = withIndex.dataAndModel.data
        for (j, u) in users.enumerated() {
            shared += Set(a[j].items).intersection(b[j].items).count
            let seen = Set((0..<data.log.count).filter { data.log.users.ids[Int(data.log.userIndex[$0])] == u }
                .map { data.log.items.ids[Int(data.log.itemIndex[$0])] })
            #expect(a[j].items.count == 10)
            #expect(Set(a[j].items).isDisjoint(with: seen), "user \(u) was recommended a seen item")
            #expect(Set(a[j].items).isDisjoint(with: options.deny))
            #expect(zip(a[j].scores, a[j].scores.dropFirst()).allSatisfy { $0 >= $1 })
        }
        #expect(!a[0].items.contains(1003))
        // Approximate search and an approximate score range: most of each list, not all of it.
        #expect(Double(shared) / Double(10 * users.count) > 0.8, "shared \(shared) of \(10 * users.count)")
        // A single call takes the same path as a batch.
        let single = try withIndex.recommend(users: [7], k: 10, options: options)
        #expect(single[0].items == a[6].items)
    }
}
