import Testing
@testable import ChorusAgents
@testable import ChorusCore

/// 80 users in two taste clusters (items 101...120 and 201...220). In the "discover" scenario they
/// interact with items of their cluster; in "trending" with the same 12 hot items (301...312) as
/// everyone else. Interactions alternate between the scenarios over time, so both have held-out
/// items, and what a user needs next depends on the scenario.
func scenarioEngine() throws -> Engine {
    let e = Engine(config: EngineConfig(hashingEncoder: true))
    try e.defineScenario("discover", description: "discover new things that match your own taste")
    try e.defineScenario("trending", description: "what everybody is watching right now")
    var rng = SeededRandom(seed: 5)
    var t: Int64 = 1_000_000
    for u in Int64(1)...80 {
        let base: Int64 = u % 2 == 1 ? 100 : 200
        var mine = Array(1...20).map { base + Int64($0) }
        var hot = Array(301...312).map { Int64($0) }
        for i in stride(from: mine.count - 1, to: 0, by: -1) { mine.swapAt(i, rng.nextInt(below: i + 1)) }
        for i in stride(from: hot.count - 1, to: 0, by: -1) { hot.swapAt(i, rng.nextInt(below: i + 1)) }
        for step in 0..<8 {
            t += 60
            try e.add([Interaction(user: u, item: mine[step], weight: 1, timestamp: t)], scenario: "discover")
            t += 60
            try e.add([Interaction(user: u, item: hot[step], weight: 1, timestamp: t)], scenario: "trending")
        }
    }
    return e
}

@Suite struct ScenarioTests {
    @Test func theScenarioChangesWhatComesFirst() throws {
        let e = try scenarioEngine()
        var p = fastParameters()
        p.validationFraction = 0.25
        try e.fit(p)
        #expect(e.scenarioNames == ["discover", "trending"])
        var discover = RecommendOptions(); discover.scenario = "discover"
        var trending = RecommendOptions(); trending.scenario = "trending"
        let users = Array(Int64(1)...80)
        let d = try e.recommend(users: users, k: 3, options: discover), t = try e.recommend(users: users, k: 3, options: trending)
        let hotInDiscover = d.map { $0.items.filter { $0 > 300 }.count }.reduce(0, +)
        let hotInTrending = t.map { $0.items.filter { $0 > 300 }.count }.reduce(0, +)
        #expect(e.coordinatorDescription.contains("network"), "\(e.coordinatorDescription)")
        #expect(hotInTrending > hotInDiscover + 40, "hot items in top 3: discover \(hotInDiscover), trending \(hotInTrending)")
    }

    @Test func unknownScenariosAreRefusedAndSnapshotsKeepThem() throws {
        let e = try scenarioEngine()
        #expect(throws: ChorusError.self) { try e.add([Interaction(user: 1, item: 101)], scenario: "nope") }
        #expect(throws: ChorusError.self) { try e.defineScenario("", description: "empty name") }
        try e.fit(fastParameters())
        var o = RecommendOptions(); o.scenario = "nope"
        #expect(throws: ChorusError.self) { try e.recommend(users: [1], k: 3, options: o) }
        let loaded = try Engine.load(bytes: e.snapshotBytes())
        #expect(loaded.scenarioNames == e.scenarioNames)
        o.scenario = "trending"
        let a = try e.recommend(users: [1, 2, 3], k: 5, options: o), b = try loaded.recommend(users: [1, 2, 3], k: 5, options: o)
        for (x, y) in zip(a, b) { #expect(x.items == y.items && x.scores == y.scores) }
        // A scenario defined after the fit is served from its description alone.
        try e.defineScenario("push", description: "a short notification about something popular")
        o.scenario = "push"
        #expect(try e.recommend(users: [1], k: 3, options: o)[0].items.count == 3)
    }
}
