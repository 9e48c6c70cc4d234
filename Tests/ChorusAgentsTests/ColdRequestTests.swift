import Testing
@testable import ChorusAgents
@testable import ChorusCore

/// Cold requests' own blends (`ColdRequest`, `Trainer.fitColdWeights`): fitted on validation users
/// served as a session or a profile-only request, saved and loaded, refused when hostile.
@Suite struct ColdRequestTests {
    /// 120 users in two clusters (space and cooking items, with texts): enough validation users for
    /// the cold blends (at least 50).
    static func engine() throws -> Engine {
        let e = Engine(config: EngineConfig(hashingEncoder: true))
        var batch: [Interaction] = []
        var rng = SeededRandom(seed: 7)
        var t: Int64 = 1_000_000
        for u in 1...120 {
            let base: Int64 = u % 2 == 1 ? 100 : 200
            for i in 1...20 where i == 1 || rng.nextFloat() < 0.4 {
                t += 60
                batch.append(Interaction(user: Int64(u), item: base + Int64(i), weight: 1, timestamp: t))
            }
        }
        try e.add(batch)
        var ids: [Int64] = [], texts: [String] = []
        for i in 1...20 {
            ids.append(100 + Int64(i)); texts.append("space film \(i): rocket galaxy orbit \(i % 3 == 0 ? "comet" : "planet")")
            ids.append(200 + Int64(i)); texts.append("cooking show \(i): recipe kitchen pasta \(i % 3 == 0 ? "soup" : "chef")")
        }
        try e.setTexts(.item, ids: ids, texts: texts)
        try e.fit(fastParameters())
        return e
    }

    @Test func coldBlendsAreFittedSavedAndServed() throws {
        let e = try Self.engine()
        let m = try e.serving().model
        let names = m.agentNames
        for kind in ColdRequest.allCases {
            let w = try #require(m.coordinator.coldWeights[kind], "no \(kind.rawValue) blend: \(m.coordinator.report)")
            #expect(w.count == names.count && w.allSatisfy { $0 >= 0 && $0.isFinite })
            #expect(abs(w.reduce(0, +) - 1) < 1e-4)
            // Agents that cannot score a user the model does not know get nothing.
            for a in ["als", "bpr"] { if let i = names.firstIndex(of: a) { #expect(w[i] == 0) } }
        }
        #expect(m.coordinator.report.contains("profile requests of unknown users"))
        // Saved and loaded as they were; a cold profile request is served the same.
        let loaded = try Engine.load(bytes: e.snapshotBytes())
        #expect(try loaded.serving().model.coordinator.coldWeights == m.coordinator.coldWeights)
        try e.setTexts(.user, ids: [999], texts: ["cooking: recipe kitchen pasta"])
        try loaded.setTexts(.user, ids: [999], texts: ["cooking: recipe kitchen pasta"])
        var o = RecommendOptions()
        let a = try e.recommend(users: [999], k: 5, options: o)[0], b = try loaded.recommend(users: [999], k: 5, options: o)[0]
        #expect(a.items == b.items && a.scores == b.scores)
        #expect(a.items.filter { $0 > 200 }.count >= 4, "a cooking profile gets cooking shows: \(a.items)")
        o.history = [101, 103]
        let session = try e.recommend(users: [-7], k: 5, options: o)[0]
        #expect(session.items.filter { $0 > 100 && $0 <= 120 }.count >= 4, "a space session gets space films: \(session.items)")
    }

    /// With fewer than 50 validation users no cold blend can be fitted: each kind then weighs the
    /// agents that can score it equally (not the warm blend renormalised, which can leave popularity
    /// alone), and a session of space films still gets space films.
    @Test func tooFewValidationUsersGiveColdKindsEqualWeights() throws {
        let e = Engine(config: EngineConfig(hashingEncoder: true))
        var batch: [Interaction] = []
        var t: Int64 = 1_000_000
        for u in 1...30 {
            let base: Int64 = u % 2 == 1 ? 100 : 200
            for i in 1...12 where (i + u) % 3 != 0 {
                t += 60
                batch.append(Interaction(user: Int64(u), item: base + Int64(i), weight: 1, timestamp: t))
            }
        }
        try e.add(batch)
        try e.fit(fastParameters())
        let m = try e.serving().model
        let w = try #require(m.coordinator.coldWeights[.history], "\(m.coordinator.report)")
        let taking = m.agentNames.indices.filter { w[$0] > 0 }
        #expect(taking.count >= 2 && taking.allSatisfy { abs(w[$0] - 1 / Float(taking.count)) < 1e-6 })
        #expect(taking.map { m.agentNames[$0] }.contains("popularity") && taking.map { m.agentNames[$0] }.contains("itemknn"))
        #expect(m.coordinator.report.contains("equal weights over"))
        var o = RecommendOptions()
        o.history = [101, 102, 104]
        let session = try e.recommend(users: [-7], k: 4, options: o)[0]
        #expect(session.items.allSatisfy { $0 > 100 && $0 <= 112 }, "a space session gets space films: \(session.items)")
    }

    @Test func aHostileColdBlendSectionIsRefused() throws {
        let bytes = try Self.engine().snapshotBytes()
        #expect(try Snapshot.decode(bytes)["CSEG"] != nil)
        // A weight turned NaN, then an unknown kind: refused with a format error, never served.
        let nan = try HostileSnapshotTests.rewrite(bytes, "CSEG") { p in
            let bits = Float.nan.bitPattern
            for i in 0..<4 { p[p.count - 4 + i] = UInt8(truncatingIfNeeded: bits >> (8 * i)) }
        }
        #expect(throws: ChorusError.self) { _ = try Engine.load(bytes: nan) }
        let unknown = try HostileSnapshotTests.rewrite(bytes, "CSEG") { p in
            // The first kind's name starts after the u32 count and its u32 length: change a letter.
            p[8] = UInt8(ascii: "X")
        }
        #expect(throws: ChorusError.self) { _ = try Engine.load(bytes: unknown) }
        let many = try HostileSnapshotTests.rewrite(bytes, "CSEG") { p in p[0] = 0xFF }
        #expect(throws: ChorusError.self) { _ = try Engine.load(bytes: many) }
    }
}
