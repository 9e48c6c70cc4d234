import ChorusCore
import ChorusKnowledge

/// Fitting: the validation phase that chooses the blend, then the final agents on all data.
extension Engine {
    /// Trains every agent, fits the blend on a temporal validation hold-out, retrains on all data,
    /// and publishes the new model.
    /// - Parameter progress: `(stage, fraction)`; return true to cancel (the previous model stays).
    /// - Throws: `.invalidArgument` for bad parameters or too little data, `.cancelled`.
    public func fit(_ p: FitParameters, progress: ((String, Double) -> Bool)? = nil) throws(ChorusError) {
        try p.validate()
        try fitLock.withLock { (_) throws(ChorusError) in
            let (log, texts, scenarios, facts, knowledgeGraph) = state.withLock { ($0.log, $0.texts, $0.scenarios, $0.facts, $0.knowledgeGraph) }
            guard log.users.count >= 2, log.items.count >= 2 else {
                throw .invalidArgument("fit needs interactions from at least 2 users on at least 2 items; have \(log.users.count) users, \(log.items.count) items")
            }
            let threads = p.threads > 0 ? p.threads : Parallel.cpuCount
            let report = SendableBox(progress)
            func stage(_ name: String, _ lo: Double, _ hi: Double) -> (@Sendable (Double) -> Bool) {
                { f in report.value?(name, lo + (hi - lo) * f) ?? false }
            }
            if let progress, progress("start", 0) { throw .cancelled("fit cancelled by the progress callback") }
            // An automatic half-life starts as "no decay" and is replaced by the validated choice below.
            var halfLife = config.popularityHalfLifeSeconds == 0 ? -1 : config.popularityHalfLifeSeconds
            // Text vectors of the fit's items, one row per item (zero rows for items without text).
            let itemVectors = try texts.itemMatrix(for: log.items)
            let graph = facts.graph(for: log.items)
            // Item embeddings when the host has trained the engine's knowledge graph. The fit does
            // not train it itself: on MovieLens' genre and decade facts the embeddings earned no
            // blend weight while their training cost more than the rest of the fit.
            let graphVectors = try KnowledgeEmbeddingAgent.itemVectors(knowledgeGraph, items: log.items)
            var factories = self.factories(p, halfLife: halfLife, itemVectors: itemVectors, graph: graph, graphVectors: graphVectors)
            // Users' profile texts, by user index, for the validation requests.
            var profiles: [Int32: [Float]] = [:]
            for (id, entry) in texts.users { if let u = log.users.index(of: id) { profiles[u] = entry.vector } }

            // 1. Validation: fit on each user's earlier interactions, choose the blend on the later ones.
            var weights = [Float](repeating: 1 / Float(factories.count), count: factories.count)
            var ranker: RankingMLP? = nil
            var coordinatorReport = "linear blend with uniform weights (no validation hold-out)"
            var queryWeight: Float = 0.5
            if let chosen = try fitBlend(log: log, parameters: p, threads: threads, halfLife: halfLife, itemVectors: itemVectors,
                                         profiles: profiles, scenarios: scenarios, graph: graph, graphVectors: graphVectors,
                                         progress: progress, stage: stage) {
                weights = chosen.weights
                ranker = chosen.ranker
                coordinatorReport = chosen.report
                queryWeight = chosen.queryWeight
                halfLife = chosen.halfLife
                factories = self.factories(p, halfLife: halfLife, itemVectors: itemVectors, graph: graph, graphVectors: graphVectors)
            }

            // 2. Final agents on all data.
            let all = TrainingData(userCount: log.users.count, itemCount: log.items.count, users: log.userIndex,
                                   items: log.itemIndex, weights: log.weights, timestamps: log.timestamps)
            var agents: [RecommenderAgent] = []
            for (a, f) in factories.enumerated() {
                let lo = 0.5 + 0.5 * Double(a) / Double(factories.count), hi = 0.5 + 0.5 * Double(a + 1) / Double(factories.count)
                agents.append(try f.fit(all, FitContext(threads: threads, seed: p.seed, progress: stage("training", lo, hi))))
            }
            agents = Engine.withQueryAgent(agents)
            let model = FittedModel(users: log.users, items: log.items, trainedRows: log.count, seen: all.userItems,
                                    agents: agents, weights: weights, ranker: ranker, candidatesPerAgent: p.candidatesPerAgent,
                                    parameters: p, popularityHalfLifeSeconds: halfLife)
            model.coordinatorReport = coordinatorReport
            model.queryWeight = queryWeight
            if let progress, progress("done", 1) { throw .cancelled("fit cancelled by the progress callback") }
            state.withLock { $0.model = model; $0.lastParameters = p }
        }
    }

    /// The validation phase of a fit: holds out each user's latest interactions, trains the agents
    /// on the rest, builds every validation user's candidates, and fits the coordinator on what was
    /// held out (`Coordinator.choose`). With an automatic popularity half-life, each candidate
    /// half-life is scored first by the popularity agent's own validation NDCG@10. Returns nil when
    /// nothing can be held out.
    private func fitBlend(log: InteractionLog, parameters p: FitParameters, threads: Int, halfLife: Int64,
                          itemVectors: FloatMatrix?, profiles: [Int32: [Float]], scenarios: ScenarioTable, graph: KnowledgeGraphTable?,
                          graphVectors: FloatMatrix?, progress: ((String, Double) -> Bool)?,
                          stage: (String, Double, Double) -> (@Sendable (Double) -> Bool)) throws(ChorusError) -> (weights: [Float], ranker: RankingMLP?, halfLife: Int64, report: String, queryWeight: Float)? {
        guard p.validationFraction > 0 else { return nil }
        let held = TemporalHoldOut.split(users: log.userIndex, timestamps: log.timestamps, fraction: Double(p.validationFraction))
        guard held.contains(true) else { return nil }
        var tu = [Int32](), ti = [Int32](), tw = [Float](), tt = [Int64]()
        var relevant: [Int32: [Int32]] = [:]
        for r in 0..<log.count {
            if held[r] { relevant[log.userIndex[r], default: []].append(log.itemIndex[r]) }
            else { tu.append(log.userIndex[r]); ti.append(log.itemIndex[r]); tw.append(log.weights[r]); tt.append(log.timestamps[r]) }
        }
        let train = TrainingData(userCount: log.users.count, itemCount: log.items.count, users: tu, items: ti, weights: tw, timestamps: tt)
        var halfLife = halfLife
        var factories = self.factories(p, halfLife: halfLife, itemVectors: itemVectors, graph: graph, graphVectors: graphVectors)

        // Validation users: every user with a held-out item, thinned to a deterministic spread
        // when their candidate features would pass 256 MB.
        var vUsers = relevant.keys.sorted()
        let perUser = factories.count * p.candidatesPerAgent * Candidates.Features(agents: factories.count).count * MemoryLayout<Float>.stride
        let cap = max(200, min(20_000, (256 << 20) / max(1, perUser)))
        if vUsers.count > cap { vUsers = stride(from: 0, to: vUsers.count, by: (vUsers.count + cap - 1) / cap).map { vUsers[$0] } }
        let vu = vUsers, trainSeen = train.userItems, relevantItems = relevant
        let seen: @Sendable (Int) -> ArraySlice<Int32> = { u in trainSeen.row(Int(vu[u])).cols }
        let relevantOf: @Sendable (Int) -> [Int32] = { u in relevantItems[vu[u]] ?? [] }

        // Automatic half-life: the popularity agent alone decides, by its own validation NDCG@10.
        if config.popularityHalfLifeSeconds == 0 {
            var best = -1.0
            for candidate in EngineConfig.halfLifeCandidates {
                let agent = try PopularityAgent.Factory(halfLifeSeconds: candidate).fit(train, FitContext(threads: threads, seed: p.seed))
                let ndcg = try popularityNDCG(agent, users: vu.count, itemCount: log.items.count, threads: threads, seen: seen, relevant: relevantOf)
                if ndcg > best + 1e-9 { best = ndcg; halfLife = candidate }
            }
            factories = self.factories(p, halfLife: halfLife, itemVectors: itemVectors, graph: graph, graphVectors: graphVectors)
            Log.emit(.info, "popularity half-life \(halfLife < 0 ? "none" : "\(halfLife / 86_400) days") (validation NDCG@10 of popularity alone \(best))")
        }

        var agents: [RecommenderAgent] = []
        for (a, f) in factories.enumerated() {
            let lo = 0.4 * Double(a) / Double(factories.count), hi = 0.4 * Double(a + 1) / Double(factories.count)
            agents.append(try f.fit(train, FitContext(threads: threads, seed: p.seed, progress: stage("validation", lo, hi))))
        }
        agents = Engine.withQueryAgent(agents)
        if let progress, progress("blend", 0.4) { throw .cancelled("fit cancelled by the progress callback") }
        let profileBox = SendableBox(profiles)
        // Validation queries: one per (user, scenario) with held-out items in that scenario.
        let chosenUsers = Set(vu)
        var byQuery: [Int: [Int32]] = [:]   // key: user * 65536 + scenario
        for r in 0..<log.count where held[r] && chosenUsers.contains(log.userIndex[r]) {
            byQuery[Int(log.userIndex[r]) << 16 | Int(log.scenarios[r]), default: []].append(log.itemIndex[r])
        }
        let keys = byQuery.keys.sorted()
        let queryUser = keys.map { Int32($0 >> 16) }, queryScenario = keys.map { $0 & 0xFFFF }
        let queryRelevant = keys.map { byQuery[$0]! }
        let counts = queryUser.map { trainSeen.row(Int($0)).cols.count }
        let warmth = Candidates.itemWarmth(trainSeen)
        let cache = try ValidationCandidates(
            agents: agents, itemCount: log.items.count, quota: p.candidatesPerAgent, threads: threads, users: keys.count,
            request: { q, body in
                let profile = profileBox.value[queryUser[q]] ?? []
                profile.withUnsafeBufferPointer { pb in body(AgentRequest(user: queryUser[q], profile: pb.isEmpty ? nil : pb)) }
            },
            seen: { q in trainSeen.row(Int(queryUser[q])).cols }, relevant: { q in queryRelevant[q] },
            activity: { q in Candidates.activity(historyLength: counts[q]) }, warmth: warmth,
            scenario: { q in queryScenario[q] })
        if let progress, progress("blend", 0.45) { throw .cancelled("fit cancelled by the progress callback") }
        let frozen = Set(agents.indices.filter { agents[$0].name == "query" })
        let coarse = Coordinator.fitLinear(cache, users: Array(0..<cache.users), k: 10, threads: threads, frozen: frozen, lastStep: 1.0 / 16)
        let chosen = Coordinator.choose(cache, k: 10, threads: threads, seed: p.seed, frozen: frozen, linearStart: coarse.weights,
                                        descriptions: scenarios.vectors)
        var report = chosen.report
        var queryWeight: Float = 0.5
        if let q = frozen.first, let content = agents.first(where: { $0.name == "content" }) as? ContentAgent {
            if let fitted = try fitQueryWeight(agents: agents, query: q, content: content, users: vu, relevant: relevant, train: train,
                                               profiles: profiles, warmth: warmth, threads: threads, quota: p.candidatesPerAgent,
                                               weights: chosen.weights, ranker: chosen.ranker) {
                queryWeight = fitted.weight
                report += "; query weight \(fitted.weight) (pseudo-query validation NDCG@10 \(Coordinator.formatted(fitted.ndcg)))"
            } else {
                report += "; query weight 0.5 (too few validation users with two held-out items with text to fit it)"
            }
        }
        Log.emit(.info, "coordinator: \(report); blend weights \(chosen.weights)")
        return (chosen.weights, chosen.ranker, halfLife, report, queryWeight)
    }

    /// Fits the query weight (`Coordinator.fitQueryWeight`) on validation users with at least two
    /// held-out items, one of which has a text: that item's text vector is the pseudo-query (and
    /// the item is masked), the other held-out items are relevant. At most 1,000 users, a
    /// deterministic spread. Nil when fewer than 20 such users exist.
    private func fitQueryWeight(agents: [RecommenderAgent], query q: Int, content: ContentAgent, users vu: [Int32],
                                relevant: [Int32: [Int32]], train: TrainingData, profiles: [Int32: [Float]], warmth: [Float], threads: Int,
                                quota: Int, weights: [Float], ranker: RankingMLP?) throws(ChorusError) -> (weight: Float, ndcg: Double)? {
        let d = content.dimension
        var picked: [(user: Int32, query: Int32, rest: [Int32])] = []
        for u in vu {
            let held = relevant[u] ?? []
            guard held.count >= 2, let qi = held.first(where: { i in (0..<d).contains { content.vectors.row(Int(i))[$0] != 0 } }) else { continue }
            picked.append((u, qi, held.filter { $0 != qi }))
        }
        guard picked.count >= 20 else { return nil }
        if picked.count > 1000 { picked = stride(from: 0, to: picked.count, by: (picked.count + 999) / 1000).map { picked[$0] } }
        let chosen = picked, trainSeen = train.userItems, profileBox = SendableBox(profiles), vectors = content.vectors
        let cache = try ValidationCandidates(
            agents: agents, itemCount: train.itemCount, quota: quota, threads: threads, users: chosen.count,
            request: { u, body in
                let profile = profileBox.value[chosen[u].user] ?? []
                let query = UnsafeBufferPointer(start: vectors.row(Int(chosen[u].query)), count: d)
                profile.withUnsafeBufferPointer { pb in
                    body(AgentRequest(user: chosen[u].user, profile: pb.isEmpty ? nil : pb, query: query))
                }
            },
            seen: { u in ArraySlice(Array(trainSeen.row(Int(chosen[u].user)).cols) + [chosen[u].query]) },
            relevant: { u in chosen[u].rest },
            activity: { u in Candidates.activity(historyLength: trainSeen.row(Int(chosen[u].user)).cols.count) },
            warmth: warmth)
        let w = weights
        return Coordinator.fitQueryWeight(cache, query: q, k: 10) { _, x in ranker?.score(x) ?? Coordinator.linear(w, x) }
    }

    /// The query agent rides on the content agent: appended right after it when there is one.
    static func withQueryAgent(_ agents: [RecommenderAgent]) -> [RecommenderAgent] {
        guard let content = agents.last(where: { $0.name == "content" }) as? ContentAgent else { return agents }
        return agents + [QueryAgent(content: content)]
    }

    /// Mean validation NDCG@10 of one popularity agent (the same list for everyone, seen items masked).
    private func popularityNDCG(_ agent: RecommenderAgent, users: Int, itemCount: Int, threads: Int,
                                seen: @escaping @Sendable (Int) -> ArraySlice<Int32>,
                                relevant: @escaping @Sendable (Int) -> [Int32]) throws(ChorusError) -> Double {
        let base = [Float](unsafeUninitializedCapacity: itemCount) { b, n in
            agent.score(AgentRequest(user: nil), into: b); n = itemCount
        }
        let parts = max(1, min(threads, users / 64 + 1))
        let sums = UnsafeSendableBox([Double](repeating: 0, count: parts))
        defer { sums.free() }
        Parallel.forEachChunk(count: users, threads: parts) { worker, range in
            var row = base
            var total = 0.0
            for u in range {
                for i in seen(u) { row[Int(i)] = -.infinity }
                let top = row.withUnsafeBufferPointer { TopK.select($0, k: 10) }
                for i in seen(u) { row[Int(i)] = base[Int(i)] }
                let rel = Set(relevant(u))
                var dcg = 0.0, ideal = 0.0
                for (pos, t) in top.enumerated() where rel.contains(t.index) { dcg += 1 / log2(Double(pos + 2)) }
                for pos in 0..<min(10, rel.count) { ideal += 1 / log2(Double(pos + 2)) }
                if ideal > 0 { total += dcg / ideal }
            }
            sums.pointer[worker] = total
        }
        return sums.pointer.reduce(0, +) / Double(max(1, users))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
