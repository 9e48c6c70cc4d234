import Testing
@testable import ChorusAgents
@testable import ChorusCore

/// The engine's parts and their contracts: agents by role, the fit gate, snapshots of serving
/// state, the online state's generations, and the snapshot format's versions.
@Suite struct ArchitectureTests {
    @Test func theRegistryPlansWhatTheFitTrainsAndRestoresEveryKind() throws {
        let e = try textEngine()
        try e.addItemFacts(items: [101, 201], relations: ["genre", "genre"], entities: ["space", "food"])
        let planned = e.agentNames
        #expect(planned == AgentRegistry.collaborative + ["kg", "content", "query"])
        try e.fit(fastParameters())
        #expect(e.agentNames == planned, "the names before the fit are the agents it trains")
        let m = try e.serving().model
        // Roles, not names: one fallback (popularity, first), one query agent built on content.
        #expect(m.agents.filter { $0.role.contains(.fallback) }.count == 1 && m.fallbackIndex == 0)
        #expect(m.queryIndex.map { m.agents[$0].name } == "query")
        #expect(m.agents.filter { $0.role.contains(.itemDescriptions) }.map(\.name) == ["content"])
        for kind in AgentRegistry.kinds {
            let f = AgentRegistry.decoder(named: kind.name, AgentRegistry.Inputs(parameters: FitParameters(), halfLife: -1))
            #expect(f?.name == kind.name)
        }
        #expect(AgentRegistry.decoder(named: "nope", AgentRegistry.Inputs(parameters: FitParameters(), halfLife: -1)) == nil)
    }

    /// Before this restructure, a fit without a validation hold-out gave the query agent no blend
    /// weight entry, and listing the agents or saving the engine read past the weights.
    @Test func aFitWithoutValidationWeighsEveryAgentAndSaves() throws {
        let e = try textEngine()
        var p = fastParameters(); p.validationFraction = 0
        try e.fit(p)
        let agents = e.agents
        #expect(agents.map(\.name).last == "query")
        #expect(agents.last?.weight == 0)
        #expect(abs(agents.map(\.weight).reduce(0, +) - 1) < 1e-5)
        let loaded = try Engine.load(bytes: e.snapshotBytes())
        var o = RecommendOptions(); o.query = "rocket galaxy"
        let a = try e.recommend(users: [1, 2], k: 5, options: o), b = try loaded.recommend(users: [1, 2], k: 5, options: o)
        for (x, y) in zip(a, b) { #expect(x.items == y.items && x.scores == y.scores && x.shares == y.shares) }
    }

    @Test func aFitInsideItsOwnProgressCallbackIsRefusedNotATrap() throws {
        let e = try clusteredEngine()
        var inner: ChorusError? = nil
        var asked = false
        try e.fit(fastParameters()) { stage, _ in
            if stage == "start" && !asked {
                asked = true
                do throws(ChorusError) { try e.fit(fastParameters()) } catch { inner = error }
            }
            return false
        }
        guard case .invalidArgument(let message)? = inner else { Issue.record("nested fit gave \(String(describing: inner))"); return }
        #expect(message.contains("progress callback"))
        // The gate is open again afterwards.
        try e.fit(fastParameters())
    }

    @Test func aSnapshotKeepsServingItsModelWhileANewOneIsPublished() throws {
        let e = try clusteredEngine()
        #expect(throws: ChorusError.self) { try e.serving() }
        #expect(e.online.generation == 0)
        try e.fit(fastParameters())
        let before = try e.serving()
        #expect(before.generation == 1 && e.online.generation == 1)
        let listed = try before.recommend(users: [1, 2], k: 5, options: RecommendOptions())
        // New data and a new model: the old snapshot is untouched and ranks exactly as before.
        try e.add([Interaction(user: 99, item: 301, weight: 1, timestamp: 9_000_000), Interaction(user: 98, item: 301, weight: 1, timestamp: 9_000_001)])
        try e.defineScenario("home", description: "")
        var p = fastParameters(); p.factors = 3
        try e.fit(p)
        let after = try e.serving()
        #expect(after.generation == 2 && e.online.generation == 2)
        #expect(after.model !== before.model)
        #expect(before.model.itemCount == 40 && after.model.itemCount == 41)
        #expect(before.scenarios.count == 1 && after.scenarios.count == 2)
        let again = try before.recommend(users: [1, 2], k: 5, options: RecommendOptions())
        for (x, y) in zip(listed, again) { #expect(x.items == y.items && x.scores == y.scores) }
        #expect(try Engine.load(bytes: e.snapshotBytes()).online.generation == 1)
    }

    @Test func aNewerEngineFormatIsRefusedByVersion() throws {
        let e = try clusteredEngine()
        try e.fit(fastParameters())
        let bytes = e.snapshotBytes()
        let ranges = try Snapshot.decode(bytes)
        var sections: [Snapshot.Section] = []
        for (tag, range) in ranges.sorted(by: { $0.value.lowerBound < $1.value.lowerBound }) {
            var payload = Array(bytes[range])
            if tag == "META" { payload[0] = UInt8(EngineSnapshotCodec.schema + 1); payload[1] = 0; payload[2] = 0; payload[3] = 0 }
            sections.append(Snapshot.Section(tag: tag, payload: payload))
        }
        #expect(throws: ChorusError.unsupportedVersion(
            "engine snapshot format version \(EngineSnapshotCodec.schema + 1) is not supported (this library reads versions 1 to \(EngineSnapshotCodec.schema))")) {
            try Engine.load(bytes: Snapshot.encode(sections))
        }
    }
}

/// Inputs at the extremes of their types either work or are refused at the call that brings them.
@Suite struct InputExtremesTests {
    /// A NaT timestamp (Int64.min) next to Int64.max: the range is wider than Int64, and the
    /// popularity decay's age used to overflow and trap in the next fit.
    @Test func timestampsAtTheLimitsOfInt64Fit() throws {
        for halfLife: Int64 in [0, 86_400] {
            let e = Engine(config: EngineConfig(popularityHalfLifeSeconds: halfLife))
            var batch: [Interaction] = []
            for u in 1...6 {
                for i in 1...5 { batch.append(Interaction(user: Int64(u), item: Int64(i + (u % 2) * 5), weight: 1,
                                                          timestamp: i == 1 ? .min : (i == 5 ? .max : Int64(i)))) }
            }
            try e.add(batch)
            try e.fit(fastParameters())
            for list in try e.recommend(users: [1, 2], k: 3) { #expect(list.scores.allSatisfy { $0.isFinite }) }
        }
    }

    @Test func itemIdMinusOneIsRefusedEverywhereItCouldComeIn() throws {
        let e = Engine(config: EngineConfig(hashingEncoder: true))
        func refused(_ body: () throws -> Void) -> Bool {
            do { try body(); return false } catch {
                if case .invalidArgument(let m)? = error as? ChorusError { return m.contains("CHORUS_NO_ITEM") }
                return false
            }
        }
        #expect(refused { try e.add([Interaction(user: 1, item: 2), Interaction(user: 1, item: -1)]) })
        #expect(refused { try e.setTexts(.item, ids: [3, -1], texts: ["a", "b"]) })
        #expect(refused { try e.addItemFacts(items: [-1], relations: ["genre"], entities: ["x"]) })
        #expect(e.itemCount == 0 && e.stats().interactions == 0 && e.stats().itemTexts == 0 && e.stats().itemFacts == 0)
        // A user id of -1 is fine (the README's newcomer).
        try e.add([Interaction(user: -1, item: 2)])
        #expect(e.stats().users == 1)
    }
}
