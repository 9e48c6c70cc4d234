import ChorusCore

/// Fitting: the validation phase that chooses the blend, then the final agents on all data.
extension Engine {
    /// Trains every agent, fits the blend on a temporal validation hold-out, retrains on all data,
    /// and publishes the new model.
    /// - Parameter progress: `(stage, fraction)`; return true to cancel (the previous model stays).
    /// - Throws: `.invalidArgument` for bad parameters or too little data, `.cancelled`.
    public func fit(_ p: FitParameters, progress: ((String, Double) -> Bool)? = nil) throws(ChorusError) {
        try p.validate()
        try fitLock.withLock { (_) throws(ChorusError) in
            let (log, texts) = state.withLock { ($0.log, $0.texts) }
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
            var factories = self.factories(p, halfLife: halfLife, itemVectors: itemVectors)
            // Users' profile texts, by user index, for the validation requests.
            var profiles: [Int32: [Float]] = [:]
            for (id, entry) in texts.users { if let u = log.users.index(of: id) { profiles[u] = entry.vector } }

            // 1. Validation: fit on each user's earlier interactions, choose the blend on the later ones.
            var weights = [Float](repeating: 1 / Float(factories.count), count: factories.count)
            if let chosen = try fitBlend(log: log, parameters: p, threads: threads, halfLife: halfLife, itemVectors: itemVectors,
                                         profiles: profiles, progress: progress, stage: stage) {
                weights = chosen.weights
                halfLife = chosen.halfLife
                factories = self.factories(p, halfLife: halfLife, itemVectors: itemVectors)
            }

            // 2. Final agents on all data.
            let all = TrainingData(userCount: log.users.count, itemCount: log.items.count, users: log.userIndex,
                                   items: log.itemIndex, weights: log.weights, timestamps: log.timestamps)
            var agents: [RecommenderAgent] = []
            for (a, f) in factories.enumerated() {
                let lo = 0.5 + 0.5 * Double(a) / Double(factories.count), hi = 0.5 + 0.5 * Double(a + 1) / Double(factories.count)
                agents.append(try f.fit(all, FitContext(threads: threads, seed: p.seed, progress: stage("training", lo, hi))))
            }
            let model = FittedModel(users: log.users, items: log.items, trainedRows: log.count, seen: all.userItems,
                                    agents: agents, weights: weights, parameters: p, popularityHalfLifeSeconds: halfLife)
            if let progress, progress("done", 1) { throw .cancelled("fit cancelled by the progress callback") }
            state.withLock { $0.model = model; $0.lastParameters = p }
        }
    }

    /// The validation phase of a fit: holds out each user's latest interactions, trains the agents
    /// on the rest, and chooses the blend weights (and, when automatic, the popularity half-life)
    /// that score best on the held-out part. Returns nil when nothing can be held out.
    private func fitBlend(log: InteractionLog, parameters p: FitParameters, threads: Int, halfLife: Int64,
                          itemVectors: FloatMatrix?, profiles: [Int32: [Float]],
                          progress: ((String, Double) -> Bool)?,
                          stage: (String, Double, Double) -> (@Sendable (Double) -> Bool)) throws(ChorusError) -> (weights: [Float], halfLife: Int64)? {
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
        let factories = self.factories(p, halfLife: halfLife, itemVectors: itemVectors)

        // The validation scores cache holds users x agents x items floats: at most 2,000 users
        // (a deterministic spread) and at most 256 MB keep this step fast and small on big data.
        var vUsers = relevant.keys.sorted()
        let budget = max(100, (256 << 20) / max(1, factories.count * log.items.count * MemoryLayout<Float>.stride))
        let cap = min(2000, budget)
        if vUsers.count > cap { vUsers = stride(from: 0, to: vUsers.count, by: (vUsers.count + cap - 1) / cap).map { vUsers[$0] } }
        let vu = vUsers, trainSeen = train.userItems, relevantItems = relevant

        var agents: [RecommenderAgent] = []
        for (a, f) in factories.enumerated() {
            let lo = 0.45 * Double(a) / Double(factories.count), hi = 0.45 * Double(a + 1) / Double(factories.count)
            agents.append(try f.fit(train, FitContext(threads: threads, seed: p.seed, progress: stage("validation", lo, hi))))
        }
        if let progress, progress("blend", 0.45) { throw .cancelled("fit cancelled by the progress callback") }
        let scores = try ValidationScores(users: vu.count, agentCount: agents.count, itemCount: log.items.count)
        let profileBox = SendableBox(profiles)
        for (a, agent) in agents.enumerated() {
            scores.fill(agent: a, threads: threads) { u, out in
                let profile = profileBox.value[vu[u]] ?? []
                profile.withUnsafeBufferPointer { pb in
                    agent.score(AgentRequest(user: vu[u], profile: pb.isEmpty ? nil : pb), into: out)
                }
            }
        }
        let seen: @Sendable (Int) -> ArraySlice<Int32> = { u in trainSeen.row(Int(vu[u])).cols }
        let relevantOf: @Sendable (Int) -> [Int32] = { u in relevantItems[vu[u]] ?? [] }

        guard config.popularityHalfLifeSeconds == 0 else {
            let best = try Coordinator.fitWeights(scores, k: 10, threads: threads, seen: seen, relevant: relevantOf)
            Log.emit(.info, "blend weights \(best.weights) (validation NDCG@10 \(best.ndcg))")
            return (best.weights, halfLife)
        }
        // Automatic half-life: choose it by what it adds to the blend, with a coarse weight search per
        // candidate (only the cached popularity rows change), then refine the winner's weights.
        let pop = factories.firstIndex { $0.name == "popularity" }!
        var best = try Coordinator.fitWeights(scores, k: 10, threads: threads, lastStep: 1.0 / 16, seen: seen, relevant: relevantOf)
        var chosen = halfLife, chosenAgent = agents[pop]
        for candidate in EngineConfig.halfLifeCandidates where candidate != halfLife {
            let agent = try PopularityAgent.Factory(halfLifeSeconds: candidate).fit(train, FitContext(threads: threads, seed: p.seed))
            scores.fill(agent: pop, threads: threads) { u, out in agent.score(user: vu[u], into: out) }
            let fitted = try Coordinator.fitWeights(scores, k: 10, threads: threads, lastStep: 1.0 / 16, seen: seen, relevant: relevantOf)
            if fitted.ndcg > best.ndcg + 1e-9 { best = fitted; chosen = candidate; chosenAgent = agent }
        }
        let winner = chosenAgent
        scores.fill(agent: pop, threads: threads) { u, out in winner.score(user: vu[u], into: out) }
        best = try Coordinator.fitWeights(scores, k: 10, threads: threads, start: best.weights, firstStep: 1.0 / 32,
                                          seen: seen, relevant: relevantOf)
        Log.emit(.info, "popularity half-life \(chosen < 0 ? "none" : "\(chosen / 86_400) days"), blend weights \(best.weights) (validation NDCG@10 \(best.ndcg))")
        return (best.weights, chosen)
    }
}
