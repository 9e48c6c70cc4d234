import Testing
@testable import ChorusAgents
import ChorusKnowledge
@testable import ChorusCore

@Suite struct KnowledgeAgentTests {
    /// The clustered engine with facts: odd-group items have director "A", even-group items
    /// director "B"; every item has genre "Film" (a weak, shared entity). Item 150 is new: only facts.
    func factEngine() throws -> Engine {
        let e = try clusteredEngine()
        var items: [Int64] = [], relations: [String] = [], entities: [String] = []
        for i in Int64(1)...20 {
            for (id, d) in [(100 + i, "A"), (200 + i, "B")] {
                items += [id, id]; relations += ["director", "genre"]; entities += [d, "Film"]
            }
        }
        items += [150, 150]; relations += ["director", "genre"]; entities += ["A", "Film"]
        #expect(try e.addItemFacts(items: items, relations: relations, entities: entities) == items.count)
        #expect(try e.addItemFacts(items: [101], relations: ["director"], entities: ["A"]) == 0) // a repeat
        return e
    }

    @Test func recommendsThroughSharedEntitiesAndNamesThePath() throws {
        let e = try factEngine()
        try e.fit(fastParameters())
        #expect(e.agentNames.contains("kg"))
        var o = RecommendOptions(); o.agent = "kg"
        for list in try e.recommend(users: Array(1...10), k: 5, options: o) {
            let base: Int64 = list.user % 2 == 1 ? 100 : 200
            #expect(list.items.allSatisfy { ($0 > base && $0 <= base + 50) }, "user \(list.user): \(list.items)")
        }
        // The fact-only item reaches a director-A user through the graph, with the path as reason.
        let odd = try e.recommend(users: [1], k: 25, options: o)[0]
        #expect(odd.items.contains(150))
        let x = try e.explain(user: 1, item: 150)
        let kg = try #require(e.agentNames.firstIndex(of: "kg"))
        if x.shares[kg] > 0 { #expect(x.reasons[kg].contains("director: A"), "\(x.reasons[kg])") }
        #expect(e.stats().itemFacts == 82)
    }

    @Test func factsSurviveSnapshotsAndBadFactsAreRefused() throws {
        let e = try factEngine()
        #expect(throws: ChorusError.self) { try e.addItemFacts(items: [1], relations: [""], entities: ["x"]) }
        #expect(throws: ChorusError.self) { try e.addItemFacts(items: [1, 2], relations: ["r"], entities: ["x"]) }
        try e.fit(fastParameters())
        let loaded = try Engine.load(bytes: e.snapshotBytes())
        #expect(loaded.stats().itemFacts == e.stats().itemFacts)
        var o = RecommendOptions(); o.agent = "kg"
        let a = try e.recommend(users: [1, 2], k: 5, options: o), b = try loaded.recommend(users: [1, 2], k: 5, options: o)
        for (x, y) in zip(a, b) { #expect(x.items == y.items && x.scores == y.scores) }
    }

    @Test func theEnginesGraphIsTrainedAndItsEmbeddingsRecommend() throws {
        let e = try factEngine()
        let graph = e.knowledgeGraph
        #expect(graph.counts.triples == 82 && !graph.isTrained)
        // A host fact about an entity (not an item) joins the same graph.
        try graph.add(heads: ["A"], relations: ["born_in"], tails: ["France"])
        try e.fit(fastParameters())
        #expect(!e.agentNames.contains("kge"), "no embeddings before the host trains the graph")
        var kp = KGTrainingParameters.defaults(for: .distMult)
        kp.dimension = 32; kp.epochs = 300; kp.batchSize = 32; kp.threads = 2
        try graph.train(kp)
        #expect(graph.isTrainedOnEveryTriple)
        try e.fit(fastParameters())
        #expect(e.agentNames.contains("kge"))
        // Items with the same director come out close: kge recommends within the user's group.
        var o = RecommendOptions(); o.agent = "kge"
        for list in try e.recommend(users: Array(1...6), k: 5, options: o) {
            let base: Int64 = list.user % 2 == 1 ? 100 : 200
            #expect(list.items.allSatisfy { $0 > base && $0 <= base + 50 }, "user \(list.user): \(list.items)")
        }
        #expect(try graph.vector(entity: "item:150").count == 32)

        // The graph and its embeddings live in the engine snapshot: the same vectors, the same lists,
        // and a refit leaves the trained graph as it is.
        let loaded = try Engine.load(bytes: e.snapshotBytes())
        #expect(loaded.knowledgeGraph.counts == graph.counts)
        #expect(try loaded.knowledgeGraph.vector(entity: "item:150") == graph.vector(entity: "item:150"))
        let a = try e.recommend(users: [1, 2], k: 5, options: o), b = try loaded.recommend(users: [1, 2], k: 5, options: o)
        for (x, y) in zip(a, b) { #expect(x.items == y.items && x.scores == y.scores) }
        let before = try loaded.knowledgeGraph.vector(entity: "item:101")
        try loaded.fit(fastParameters())
        #expect(try loaded.knowledgeGraph.vector(entity: "item:101") == before)
    }
}
