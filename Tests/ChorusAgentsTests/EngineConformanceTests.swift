import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import ChorusAgents
@testable import ChorusCore

/// Users 1..40: odd users like items 101..120 (odd group), even users items 201..220. Item 101 and 201
/// are each group's favourite. Timestamps grow, so the temporal hold-out has something to hold out.
func clusteredEngine() throws -> Engine {
    let e = Engine()
    var batch: [Interaction] = []
    var rng = SeededRandom(seed: 2)
    var t: Int64 = 1_000_000
    for u in 1...40 {
        let base: Int64 = u % 2 == 1 ? 100 : 200
        for i in 1...20 where i == 1 || rng.nextFloat() < 0.45 {
            t += 60
            batch.append(Interaction(user: Int64(u), item: base + Int64(i), weight: 1 + Float(rng.nextInt(below: 4)), timestamp: t))
        }
    }
    try e.add(batch)
    return e
}

func fastParameters() -> FitParameters {
    var p = FitParameters()
    p.factors = 2; p.iterations = 10; p.threads = 2; p.regularization = 0.1
    return p
}

@Suite struct EngineConformanceTests {
    @Test func recommendsWithinTheUsersCluster() throws {
        let e = try clusteredEngine()
        try e.fit(fastParameters())
        for list in try e.recommend(users: Array(1...40), k: 5) {
            #expect(!list.coldFallback)
            let base: Int64 = list.user % 2 == 1 ? 100 : 200
            #expect(list.items.allSatisfy { $0 > base && $0 <= base + 20 }, "user \(list.user) got \(list.items)")
        }
        let w = e.blendWeights
        #expect(abs(w.reduce(0, +) - 1) < 1e-5)
    }

    @Test func sharesSumToOneAndScoresDescend() throws {
        let e = try clusteredEngine()
        try e.fit(fastParameters())
        for list in try e.recommend(users: [1, 2, 3], k: 6) {
            #expect(list.scores == list.scores.sorted(by: >))
            for s in list.shares { #expect(abs(s.reduce(0, +) - 1) < 1e-4) }
        }
    }

    @Test func excludesSeenUnlessAsked() throws {
        let e = try clusteredEngine()
        try e.fit(fastParameters())
        let seen = try e.recommend(users: [1], k: 30, options: { var o = RecommendOptions(); o.includeSeen = true; return o }())[0]
        #expect(seen.items.contains(101))
        let unseen = try e.recommend(users: [1], k: 30)[0]
        #expect(!unseen.items.contains(101))
    }

    @Test func allowAndDenyListsAreHonoured() throws {
        let e = try clusteredEngine()
        try e.fit(fastParameters())
        var o = RecommendOptions()
        o.allow = [202, 204, 999_999]
        o.includeSeen = true
        let l = try e.recommend(users: [1], k: 5, options: o)[0]
        #expect(Set(l.items) == [202, 204])  // only two allowed items exist; the other slots stay empty
        o.allow = nil
        o.deny = Set((101...120).map { Int64($0) })
        #expect(try e.recommend(users: [1], k: 5, options: o)[0].items.allSatisfy { $0 > 200 })
    }

    @Test func batchEqualsSingle() throws {
        let e = try clusteredEngine()
        try e.fit(fastParameters())
        let users: [Int64] = Array(1...40) + [77]
        let batch = try e.recommend(users: users, k: 7)
        for (u, list) in zip(users, batch) {
            let single = try e.recommend(users: [u], k: 7)[0]
            #expect(single.items == list.items)
            #expect(single.scores == list.scores)
        }
    }

    @Test func unknownUsersFallBackToPopularity() throws {
        let e = try clusteredEngine()
        try e.fit(fastParameters())
        let cold = try e.recommend(users: [12345], k: 3)[0]
        #expect(cold.coldFallback)
        #expect(cold.shares.allSatisfy { $0[0] == 1 && $0.dropFirst().allSatisfy { $0 == 0 } })
        let pop = try e.recommend(users: [1], k: 3, options: { var o = RecommendOptions(); o.agent = "popularity"; o.includeSeen = true; return o }())[0]
        #expect(cold.items == pop.items)
    }

    @Test func snapshotRoundTripGivesIdenticalRecommendations() throws {
        let e = try clusteredEngine()
        try e.fit(fastParameters())
        let bytes = e.snapshotBytes()
        let loaded = try Engine.load(bytes: bytes)
        let users: [Int64] = Array(1...40) + [999]
        let a = try e.recommend(users: users, k: 5), b = try loaded.recommend(users: users, k: 5)
        for (x, y) in zip(a, b) { #expect(x.items == y.items); #expect(x.scores == y.scores) }
        #expect(loaded.blendWeights == e.blendWeights)
        #expect(loaded.stats().interactions == e.stats().interactions)
        // An unfitted engine round-trips too, and stays unfitted.
        let fresh = try Engine.load(bytes: Engine().snapshotBytes())
        #expect(!fresh.stats().fitted)
    }

    @Test func corruptedSnapshotsAreRejected() throws {
        let e = try clusteredEngine()
        try e.fit(fastParameters())
        let bytes = e.snapshotBytes()
        for cut in [0, 10, 19, bytes.count / 2, bytes.count - 1] {
            #expect(throws: ChorusError.self) { try Engine.load(bytes: Array(bytes[0..<cut])) }
        }
        var flipped = bytes
        flipped[bytes.count / 2] ^= 0xff
        #expect(throws: ChorusError.self) { try Engine.load(bytes: flipped) }
    }

    @Test func errorsBeforeFitAndForBadArguments() throws {
        let e = try clusteredEngine()
        #expect(throws: ChorusError.self) { try e.recommend(users: [1], k: 5) }
        try e.fit(fastParameters())
        #expect(throws: ChorusError.self) { try e.recommend(users: [1], k: 0) }
        #expect(throws: ChorusError.self) { try e.recommend(users: [1], k: 41) }
        #expect(throws: ChorusError.self) { try e.recommend(users: [1], k: 5, options: { var o = RecommendOptions(); o.agent = "nope"; return o }()) }
        var bad = fastParameters(); bad.validationFraction = 0.7
        #expect(throws: ChorusError.self) { try e.fit(bad) }
        let tiny = Engine()
        try tiny.add([Interaction(user: 1, item: 1)])
        #expect(throws: ChorusError.self) { try tiny.fit(fastParameters()) }
    }

    @Test func cancelledFitKeepsThePreviousModel() throws {
        let e = try clusteredEngine()
        try e.fit(fastParameters())
        let before = try e.recommend(users: [1, 2], k: 5)
        try e.add([Interaction(user: 500, item: 101)])
        #expect(throws: ChorusError.self) { try e.fit(fastParameters()) { stage, _ in stage == "training" } }
        let after = try e.recommend(users: [1, 2], k: 5)
        #expect(before.map(\.items) == after.map(\.items))
        #expect(try e.recommend(users: [500], k: 1)[0].coldFallback)
    }

    @Test func similarItemsStayInTheCluster() throws {
        let e = try clusteredEngine()
        try e.fit(fastParameters())
        var ids = [Int64](repeating: 0, count: 3), scores = [Float](repeating: 0, count: 3)
        try [Int64(101)].withUnsafeBufferPointer { q in
            try e.similarItems(items: q, k: 3, allow: nil, deny: [], outIds: &ids, outScores: &scores)
        }
        #expect(ids.allSatisfy { $0 > 100 && $0 <= 120 && $0 != 101 })
        #expect(throws: ChorusError.self) {
            try [Int64(5)].withUnsafeBufferPointer { q in
                try e.similarItems(items: q, k: 3, allow: nil, deny: [], outIds: &ids, outScores: &scores)
            }
        }
    }
}

@Suite struct PopularityHalfLifeTests {
    @Test func automaticHalfLifeIsOneOfTheCandidatesAndFixedOnesAreKept() throws {
        let auto = try clusteredEngine()
        #expect(auto.stats().popularityHalfLifeSeconds == 0)
        try auto.fit(fastParameters())
        #expect(EngineConfig.halfLifeCandidates.contains(auto.stats().popularityHalfLifeSeconds))
        let fixed = Engine(config: EngineConfig(popularityHalfLifeSeconds: 3600))
        try fixed.add((1...6).map { Interaction(user: Int64($0), item: Int64($0 % 3), timestamp: Int64($0)) })
        try fixed.fit(fastParameters())
        #expect(fixed.stats().popularityHalfLifeSeconds == 3600)
        let loaded = try Engine.load(bytes: fixed.snapshotBytes())
        #expect(loaded.stats().popularityHalfLifeSeconds == 3600)
    }

    @Test func decayFavoursRecentInteractions() throws {
        // Item 1: three old interactions; item 2: two recent ones. No decay: 1 first; a short half-life: 2 first.
        let rows = [Interaction(user: 1, item: 1, timestamp: 0), Interaction(user: 2, item: 1, timestamp: 0),
                    Interaction(user: 3, item: 1, timestamp: 0), Interaction(user: 4, item: 2, timestamp: 1_000_000),
                    Interaction(user: 5, item: 2, timestamp: 1_000_000), Interaction(user: 6, item: 3, timestamp: 10)]
        var o = RecommendOptions(); o.agent = "popularity"; o.includeSeen = true
        for (halfLife, first) in [(Int64(-1), Int64(1)), (Int64(86_400), Int64(2))] {
            let e = Engine(config: EngineConfig(popularityHalfLifeSeconds: halfLife))
            try e.add(rows)
            var p = fastParameters(); p.validationFraction = 0
            try e.fit(p)
            #expect(try e.recommend(users: [1], k: 1, options: o)[0].items == [first])
        }
    }
}
