import Testing
@testable import ChorusAgents
@testable import ChorusCore

/// The clustered engine of EngineConformanceTests with texts: odd-group items (101...120) are about
/// space, even-group items (201...220) about cooking. Hashing encoder: fast and the same everywhere.
func textEngine() throws -> Engine {
    let e = Engine(config: EngineConfig(hashingEncoder: true))
    var batch: [Interaction] = []
    var rng = SeededRandom(seed: 2)
    var t: Int64 = 1_000_000
    for u in 1...40 {
        let base: Int64 = u % 2 == 1 ? 100 : 200
        for i in 1...20 where i == 1 || rng.nextFloat() < 0.45 {
            t += 60
            batch.append(Interaction(user: Int64(u), item: base + Int64(i), weight: 1, timestamp: t))
        }
    }
    try e.add(batch)
    let space = ["rocket", "galaxy", "astronaut", "orbit", "planet", "nebula", "spaceship", "comet"]
    let food = ["recipe", "kitchen", "baking", "pasta", "chef", "spices", "dessert", "soup"]
    var ids: [Int64] = [], texts: [String] = []
    for i in 1...20 {
        ids.append(100 + Int64(i)); texts.append("space film \(i): \(space[i % 8]) \(space[(i * 3) % 8]) and \(space[(i + 5) % 8])")
        ids.append(200 + Int64(i)); texts.append("cooking show \(i): \(food[i % 8]) \(food[(i * 3) % 8]) and \(food[(i + 5) % 8])")
    }
    try e.setTexts(.item, ids: ids, texts: texts)
    return e
}

@Suite struct ContentAgentTests {
    @Test func contentAgentJoinsTheBlendAndRanksByText() throws {
        let e = try textEngine()
        #expect(e.agentNames == AgentRegistry.collaborative + ["content", "query"])
        try e.fit(fastParameters())
        #expect(e.agentNames == AgentRegistry.collaborative + ["content", "query"])
        #expect(abs(e.blendWeights.reduce(0, +) - 1) < 1e-5)
        var o = RecommendOptions(); o.agent = "content"
        for list in try e.recommend(users: Array(1...40), k: 5, options: o) {
            let base: Int64 = list.user % 2 == 1 ? 100 : 200
            #expect(list.items.allSatisfy { $0 > base && $0 <= base + 20 }, "user \(list.user) got \(list.items)")
        }
        #expect(e.stats().itemTexts == 40)
        #expect(e.encoderDescription.contains("hashing"))
    }

    @Test func anItemWithOnlyTextIsRecommendable() throws {
        let e = try textEngine()
        try e.setTexts(.item, ids: [150], texts: ["brand new space film: rocket galaxy astronaut orbit"])
        try e.fit(fastParameters())
        #expect(e.itemCount == 41)
        var o = RecommendOptions(); o.agent = "content"
        // Space users rank the new item above every cooking item; cooking users below every one.
        for list in try e.recommend(users: [1, 3, 5, 7, 2, 4, 6, 8], k: 41, options: o) {
            let pos = try #require(list.items.firstIndex(of: 150))
            let ownGroup: Int64 = list.user % 2 == 1 ? 100 : 200
            let other = list.items.enumerated().filter { $0.element / 100 * 100 != ownGroup && $0.element != 150 }.map(\.offset)
            if list.user % 2 == 1 { #expect(pos < other.min()!, "user \(list.user): \(list.items)") }
            else { #expect(pos > list.items.enumerated().filter { $0.element / 100 * 100 == ownGroup }.map(\.offset).max()!, "user \(list.user): \(list.items)") }
        }
    }

    @Test func anUnknownUserWithAProfileTextGetsContentRecommendations() throws {
        let e = try textEngine()
        try e.setTexts(.user, ids: [999], texts: ["I love cooking: recipe, kitchen, pasta, chef and soup"])
        try e.fit(fastParameters())
        let list = try e.recommend(users: [999], k: 5)[0]
        #expect(list.coldFallback)
        let content = try #require(e.agentNames.firstIndex(of: "content"))
        if e.blendWeights[content] > 0 {
            #expect(list.items.filter { $0 > 200 }.count >= 4, "got \(list.items)")
            #expect(list.shares.allSatisfy { $0[content] > 0 })
        }
        var o = RecommendOptions(); o.agent = "content"
        let alone = try e.recommend(users: [999], k: 5, options: o)[0]
        #expect(alone.items.allSatisfy { $0 > 200 }, "got \(alone.items)")
        // A user with neither history nor text still gets popularity.
        let nobody = try e.recommend(users: [12345], k: 5)[0]
        #expect(nobody.coldFallback && nobody.items.count == 5)
        #expect(nobody.shares.allSatisfy { $0[0] == 1 })
    }

    @Test func textsSurviveASnapshotAndRecommendationsAreIdentical() throws {
        let e = try textEngine()
        try e.setTexts(.user, ids: [999], texts: ["space rockets"])
        try e.fit(fastParameters())
        let loaded = try Engine.load(bytes: e.snapshotBytes())
        #expect(loaded.agentNames == e.agentNames)
        #expect(loaded.blendWeights == e.blendWeights)
        #expect(loaded.text(.item, id: 101) == e.text(.item, id: 101))
        #expect(loaded.text(.user, id: 999) == "space rockets")
        let users: [Int64] = [1, 2, 3, 999, 4242]
        let a = try e.recommend(users: users, k: 8), b = try loaded.recommend(users: users, k: 8)
        for (x, y) in zip(a, b) { #expect(x.items == y.items && x.scores == y.scores && x.shares == y.shares) }
    }

    @Test func badTextCallsChangeNothing() throws {
        let e = try textEngine()
        #expect(throws: ChorusError.self) { try e.setTexts(.item, ids: [1, 2], texts: ["a"]) }
        #expect(throws: ChorusError.self) { try e.setTexts(.item, ids: [7, 7], texts: ["a", "b"]) }
        #expect(e.stats().itemTexts == 40)
        // An empty text removes the entry.
        try e.setTexts(.item, ids: [101], texts: [""])
        #expect(e.text(.item, id: 101) == nil && e.stats().itemTexts == 39)
    }

    @Test func vectorsOfTwoEncodersAreNeverMixed() throws {
        var c = TextCatalogue()
        try c.set(.item, ids: [1], texts: ["a"], vectors: [1, 0], encoderName: "one", dimension: 2)
        #expect(throws: ChorusError.self) {
            try c.set(.item, ids: [2], texts: ["b"], vectors: [0, 1], encoderName: "other", dimension: 2)
        }
        #expect(c.items.count == 1)
    }

    @Test func historyRequestsScoreAnonymousUsers() throws {
        let e = try textEngine()
        try e.fit(fastParameters())
        let m = try e.serving().model
        let content = try #require(m.agents.first { $0.name == "content" })
        let history = [m.items.index(of: 103)!, m.items.index(of: 107)!]
        let request = AgentRequest(user: nil, history: history)
        #expect(content.canScore(request))
        #expect(!content.canScore(AgentRequest(user: nil)))
        var scores = [Float](repeating: 0, count: m.itemCount)
        scores.withUnsafeMutableBufferPointer { content.score(request, into: $0) }
        let best = scores.indices.max { scores[$0] < scores[$1] }!
        #expect(m.items.ids[best] > 100 && m.items.ids[best] <= 120)
    }
}

@Suite struct RequestTests {
    @Test func aQueryPullsTheRankingTowardsItsText() throws {
        let e = try textEngine()
        try e.fit(fastParameters())
        #expect(e.agentNames.suffix(2) == ["content", "query"])
        var o = RecommendOptions(); o.query = "rocket galaxy astronaut"; o.agent = "query"
        // A cooking user asking for space gets space items from the query agent alone.
        let alone = try e.recommend(users: [2], k: 5, options: o)[0]
        #expect(alone.items.allSatisfy { $0 > 100 && $0 <= 120 }, "got \(alone.items)")
        o.agent = nil
        let mixed = try e.recommend(users: [2], k: 5, options: o)[0]
        let q = try #require(e.agentNames.firstIndex(of: "query"))
        for s in mixed.shares { #expect(abs(s.reduce(0, +) - 1) < 1e-4) }
        if mixed.shares.contains(where: { $0[q] > 0.5 }) { #expect(mixed.items.contains { $0 > 100 && $0 <= 120 }) }
        // An anonymous visitor with only a query.
        let anonymous = try e.recommend(users: [424_242], k: 5, options: o)[0]
        #expect(anonymous.coldFallback && anonymous.items.count == 5)
        #expect(anonymous.items.filter { $0 > 100 && $0 <= 120 }.count >= 3, "got \(anonymous.items)")
    }

    @Test func anAnonymousHistoryIsRecommendedFrom() throws {
        let e = try textEngine()
        try e.fit(fastParameters())
        var o = RecommendOptions(); o.history = [202, 204, 206, 999_999]
        let list = try e.recommend(users: [777_777], k: 5, options: o)[0]
        #expect(list.coldFallback)
        #expect(!list.items.contains(202) && !list.items.contains(204))
        #expect(list.items.filter { $0 > 200 }.count >= 4, "got \(list.items)")
    }

    @Test func diversityTradesRelevanceForDifferentItems() throws {
        let e = try clusteredEngine()
        try e.fit(fastParameters())
        let m = try e.serving().model
        let vectors = try #require(m.similarityVectors)
        func ild(_ d: Float) throws -> Double {
            var o = RecommendOptions(); o.diversity = d
            let lists = try e.recommend(users: Array(1...20), k: 6, options: o)
            return lists.map { Diversity.intraList($0.items.map { m.items.index(of: $0)! }, vectors: vectors) }.reduce(0, +) / 20
        }
        let plain = try ild(0), diverse = try ild(0.9)
        #expect(diverse > plain + 0.05, "ILD \(plain) -> \(diverse)")
        var bad = RecommendOptions(); bad.diversity = 1.5
        #expect(throws: ChorusError.self) { try e.recommend(users: [1], k: 3, options: bad) }
    }

    @Test func queriesNeedTexts() throws {
        let e = try clusteredEngine()
        try e.fit(fastParameters())
        var o = RecommendOptions(); o.query = "anything"
        #expect(throws: ChorusError.self) { try e.recommend(users: [1], k: 3, options: o) }
    }
}

@Suite struct ExplanationTests {
    @Test func anExplanationAgreesWithTheRecommendation() throws {
        let e = try textEngine()
        try e.fit(fastParameters())
        let list = try e.recommend(users: [3], k: 4)[0]
        for (slot, item) in list.items.enumerated() {
            let x = try e.explain(user: 3, item: item)
            #expect(abs(x.score - list.scores[slot]) < 1e-5)
            for (a, b) in zip(x.shares, list.shares[slot]) { #expect(abs(a - b) < 1e-5) }
            let because = try #require(x.becauseItem)
            #expect(because > 100 && because <= 120, "user 3 is a space user; because \(because)")
            #expect(x.sentence.contains("is recommended"))
            #expect(x.reasons.count == e.agentNames.count && x.reasons.contains { !$0.isEmpty })
            #expect(!x.sentence.contains("%@"))
        }
        // An item nobody proposed still gets a score, shares and a sentence.
        let far = try e.explain(user: 3, item: 215)
        #expect(abs(far.shares.reduce(0, +) - 1) < 1e-4)
        #expect(throws: ChorusError.self) { try e.explain(user: 3, item: 123_456) }
    }

    @Test func queryTermsAreMatched() throws {
        let e = try textEngine()
        try e.fit(fastParameters())
        var o = RecommendOptions(); o.query = "a film about a rocket and a galaxy"
        let x = try e.explain(user: 424_242, item: 101, options: o)
        #expect(x.matchedTerms.contains("film") || x.matchedTerms.contains("rocket") || x.matchedTerms.contains("galaxy"))
        #expect(!x.matchedTerms.contains("a") && !x.matchedTerms.contains("and"))
        #expect(x.sentence.contains("matches your request"))
        let list = try e.recommend(users: [424_242], k: 3, options: o)[0]
        let top = try e.explain(user: 424_242, item: list.items[0], options: o)
        #expect(abs(top.score - list.scores[0]) < 1e-5)
    }
}

/// Batch recommend scores the factor and content agents for many users per pass over their item
/// vectors (`scoreBatch`); each user's list must be bit for bit what a call of their own gives.
@Suite struct BatchScoringTests {
    @Test func aBatchGivesEachUserExactlyTheirOwnCall() throws {
        let e = try textEngine()
        try e.fit(fastParameters())
        let users = Array(Int64(1)...40) + [999]
        #expect(ServingSnapshot.batchSize(items: 40, agents: 3) > 1)
        for round in 0..<2 {
            for agent in [nil, "content", "als", "bpr"] as [String?] {
                var o = RecommendOptions(); o.agent = agent
                let batch = try e.recommend(users: users, k: 8, options: o)
                for (u, list) in zip(users, batch) {
                    let own = try e.recommend(users: [u], k: 8, options: o)[0]
                    #expect(own.items == list.items, "round \(round) user \(u) agent \(agent ?? "blend")")
                    #expect(own.scores.map(\.bitPattern) == list.scores.map(\.bitPattern), "round \(round) user \(u) agent \(agent ?? "blend")")
                }
            }
            // Then with live feedback: folded-in vectors for known users, a new user, a new item.
            try e.feedback(users: [1, 2, 999, 3], items: [105, 207, 110, 5000], events: [.purchase, .click, .click, .purchase])
        }
    }

    /// Every agent's `scoreBatch` writes what `score` writes, for users it can and cannot score.
    @Test func scoreBatchEqualsScore() throws {
        let e = try textEngine()
        try e.fit(fastParameters())
        let m = try e.serving().model
        for agent in m.agents {
            var requests = [Int32(0), 3, 7, 39].map { AgentRequest(user: $0) } + [AgentRequest(user: nil, history: [2, 5])]
            // A folded-in vector (online feedback) replaces a user's row, or gives one to a new user.
            if let f = agent as? FactorAgent {
                requests[1].folded[f.name] = (0..<f.itemFactors.cols).map { Float($0 % 3) * 0.1 - 0.1 }
                var newcomer = AgentRequest(user: nil)
                newcomer.folded[f.name] = (0..<f.itemFactors.cols).map { Float($0 % 2) * 0.2 }
                requests.append(newcomer)
            }
            let rows = requests.map { _ in UnsafeMutablePointer<Float>.allocate(capacity: m.itemCount) }
            defer { rows.forEach { $0.deallocate() } }
            agent.scoreBatch(requests, into: rows, itemCount: m.itemCount)
            for (r, request) in requests.enumerated() {
                var own = [Float](repeating: .nan, count: m.itemCount)
                own.withUnsafeMutableBufferPointer { agent.score(request, into: $0) }
                #expect(Array(UnsafeBufferPointer(start: rows[r], count: m.itemCount)).map(\.bitPattern) == own.map(\.bitPattern),
                        "\(agent.name) request \(r)")
            }
        }
    }
}
