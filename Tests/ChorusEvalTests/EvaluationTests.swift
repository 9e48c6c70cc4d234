import Testing
import ChorusCore
import ChorusAgents
@testable import ChorusEval

@Suite struct EvaluationTests {
    /// Items 1...8, item j seen by users 1...(13 - j): item 1 by 12 users, ..., item 8 by 5, so
    /// popularity is strictly decreasing in j. User u has seen items 1...(13 - u); for users
    /// 6...12 the most popular unseen item is 14 - u, and that is their one test item. Users 1...5
    /// have seen everything and are not tested. User 99 is unknown to the engine (test item 1).
    static func fixture() -> (train: [Interaction], test: [Int64: Set<Int64>]) {
        var train: [Interaction] = []
        for j in Int64(1)...8 {
            for u in Int64(1)...(13 - j) { train.append(Interaction(user: u, item: j, weight: 1, timestamp: 0)) }
        }
        var test: [Int64: Set<Int64>] = [:]
        for u in Int64(6)...12 { test[u] = [14 - u] }
        test[99] = [1]
        test[100] = []   // nothing relevant: skipped
        return (train, test)
    }

    static func fittedEngine() throws -> Engine {
        let engine = Engine(config: EngineConfig(popularityHalfLifeSeconds: 0))
        try engine.add(fixture().train)
        var p = FitParameters()
        p.factors = 4; p.iterations = 3; p.threads = 1
        try engine.fit(p)
        return engine
    }

    @Test func popularityFindsTheMostPopularUnseenItem() throws {
        let engine = try Self.fittedEngine()
        let rows = try Evaluation.evaluate(engine: engine, test: Self.fixture().test, k: 1, recommenders: ["popularity"])
        // 8 users evaluated (6...12 and 99), each with its one relevant item at rank 1:
        // Recall@1 = NDCG@1 = HR@1 = MRR@1 = 1. Top-1 items: 8, 7, ..., 2 for users 6...12 and item 1
        // for the cold user: all 8 of the 8 catalogue items, coverage 1.
        #expect(rows.count == 1)
        let r = rows[0]
        #expect(r.name == "popularity")
        #expect(r.users == 8)
        #expect(r.coldUsers == 1)
        #expect(r.recall == 1 && r.ndcg == 1 && r.hitRate == 1 && r.mrr == 1)
        #expect(r.coverage == 1)
    }

    @Test func everyAgentThenTheBlend() throws {
        let engine = try Self.fittedEngine()
        let test = Self.fixture().test
        let rows = try Evaluation.evaluate(engine: engine, test: test, k: 3)
        #expect(rows.map(\.name) == engine.agentNames + [Evaluation.blendName])
        #expect(rows.last?.weight == nil)
        #expect(rows.dropLast().map { $0.weight ?? -1 } == engine.blendWeights)
        for r in rows {
            #expect(r.users == 8)
            for v in [r.recall, r.ndcg, r.hitRate, r.mrr, r.coverage] { #expect(v >= 0 && v <= 1) }
        }
        // Batching must not change anything but timings.
        let batched = try Evaluation.evaluate(engine: engine, test: test, k: 3, batchSize: 3)
        #expect(batched.map { var r = $0; r.seconds = 0; return r } == rows.map { var r = $0; r.seconds = 0; return r })
        let table = Evaluation.formatTable(rows)
        #expect(table.contains("Recall@3"))
        #expect(table.split(separator: "\n").count == rows.count + 2)
    }

    @Test func runFitsAndEvaluates() throws {
        let f = Self.fixture()
        var p = FitParameters()
        p.factors = 4; p.iterations = 2; p.threads = 1
        var stages: [String] = []
        let (result, engine) = try Evaluation.run(train: f.train, test: f.test, k: 2,
                                                  config: EngineConfig(popularityHalfLifeSeconds: 0), parameters: p,
                                                  progress: { stage, _ in stages.append(stage); return false })
        #expect(result.catalogueSize == 8)
        #expect(engine.itemCount == 8)
        #expect(result.rows.count == engine.agentNames.count + 1)
        #expect(!stages.isEmpty)
    }

    @Test func rejectsKOutOfRange() throws {
        let engine = try Self.fittedEngine()
        #expect(throws: ChorusError.self) { try Evaluation.evaluate(engine: engine, test: [6: [8]], k: 0) }
        #expect(throws: ChorusError.self) { try Evaluation.evaluate(engine: engine, test: [6: [8]], k: 9) }
        #expect(throws: ChorusError.self) { try Evaluation.evaluate(engine: engine, test: [6: [8]], k: 1, recommenders: ["nope"]) }
    }

    @Test func textFormat() {
        #expect(TextFormat.fixed(0.47762, 4) == "0.4776")
        #expect(TextFormat.fixed(2.0 / 3.0, 3) == "0.667")
        #expect(TextFormat.fixed(-1.5, 0) == "-2")
        #expect(TextFormat.fixed(-0.0001, 2) == "0.00")
        #expect(TextFormat.fixed(12.05, 1) == "12.1" || TextFormat.fixed(12.05, 1) == "12.0") // 12.05 is not exact in binary
        #expect(TextFormat.fixed(3, 2) == "3.00")
        #expect(TextFormat.grouped(100_836) == "100,836")
        #expect(TextFormat.grouped(-1_234_567) == "-1,234,567")
        #expect(TextFormat.grouped(0) == "0")
        #expect(TextFormat.grouped(999) == "999")
        #expect(TextFormat.percent(0.7249) == "72%")
        #expect(TextFormat.pad("ab", 4) == "ab  ")
        #expect(TextFormat.pad("ab", 4, left: false) == "  ab")
        #expect(TextFormat.truncate("abcdefgh", 6) == "abc...")
    }
}
