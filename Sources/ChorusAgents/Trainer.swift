import ChorusCore
import ChorusKnowledge

/// The fit pipeline, from a copy of the data store to a new immutable model:
///
/// 1. inputs: the agents' factories for this data (`AgentRegistry`), the items' text vectors,
///    knowledge-graph table and embeddings;
/// 2. validation: the agents trained on each user's earlier interactions, every validation
///    query's candidates built as serving builds them, the coordinator chosen on the later ones
///    (`fitBlend`: half-life, blend or network, query weight);
/// 3. final agents on all data (`trainAgents`), assembled with the coordinator into a `FittedModel`.
///
/// Sharded training: each shard runs this pipeline on its users' data, `ShardMerge` combines the
/// shard models, and a next round starts each shard's factor agents from the merged model
/// (`start`: its factors laid out by id in this fit's id space, `ShardMerge.initialAgents`).
/// Pure: it reads only its inputs, so the engine runs it with no lock held.
struct Trainer {
    let config: EngineConfig
    let parameters: FitParameters
    /// The model a round of sharded training continues from (nil: a fit from scratch).
    var start: FittedModel? = nil

    /// Trains every agent, fits the blend on a temporal validation hold-out, retrains on all data.
    /// - Parameter progress: `(stage, fraction)`; return true to cancel.
    /// - Throws: `.invalidArgument` for too little data, `.cancelled`.
    func fit(_ data: DataStore, progress: ((String, Double) -> Bool)? = nil) throws(ChorusError) -> FittedModel {
        let p = parameters
        let (log, texts, scenarios, facts, knowledgeGraph) = (data.log, data.texts, data.scenarios, data.facts, data.knowledgeGraph)
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
        var inputs = AgentRegistry.Inputs(parameters: p, halfLife: halfLife, itemVectors: itemVectors, graph: graph, graphVectors: graphVectors)
        let initial = try start.map { (m) throws(ChorusError) in try ShardMerge.initialAgents(from: m, users: log.users, items: log.items, parameters: p) } ?? [:]
        if let missing = AgentRegistry.missingInput(inputs) { throw .invalidArgument("fit cannot train the agents asked for: \(missing)") }
        // Users' profile texts, by user index, for the validation requests.
        var profiles: [Int32: [Float]] = [:]
        for (id, entry) in texts.users { if let u = log.users.index(of: id) { profiles[u] = entry.vector } }

        // 1-2. Validation: fit on each user's earlier interactions, choose the coordinator on the later ones.
        var chosen: CoordinatorModel? = nil
        var validationAgents: [RecommenderAgent] = []
        if let validated = try fitBlend(log: log, inputs: inputs, initial: initial, threads: threads, profiles: profiles, scenarios: scenarios,
                                        progress: progress, stage: stage) {
            chosen = validated.coordinator
            halfLife = validated.halfLife
            inputs.halfLife = halfLife
            inputs.bprEpochs = validated.bprEpochs
            // Only the factor agents' final fits continue from their validation twins; the other
            // twins (item-kNN's and session's tables: hundreds of MB each at 20M interactions) go now.
            validationAgents = validated.agents.filter { $0 is FactorAgent }
        }

        // 3. Final agents on all data.
        let all = TrainingData(userCount: log.users.count, itemCount: log.items.count, users: log.userIndex,
                               items: log.itemIndex, weights: log.weights, timestamps: log.timestamps)
        let agents = try trainAgents(AgentRegistry.factories(inputs), on: all, threads: threads, warmStart: &validationAgents, initial: initial) { a, count in
            stage("training", 0.5 + 0.5 * Double(a) / Double(count), 0.5 + 0.5 * Double(a + 1) / Double(count))
        }
        // Without a validation hold-out: equal weights over the blended agents (never the query agent).
        let blended = agents.filter { !$0.role.contains(.query) }.count
        let coordinator = chosen ?? CoordinatorModel(weights: agents.map { $0.role.contains(.query) ? 0 : 1 / Float(blended) }, ranker: nil,
                                                     queryWeight: 0.5, candidatesPerAgent: p.candidatesPerAgent,
                                                     report: "linear blend with uniform weights (no validation hold-out)")
        let model = FittedModel(users: log.users, items: log.items, trainedRows: log.count, seen: all.userItems,
                                agents: agents, coordinator: coordinator, parameters: p, popularityHalfLifeSeconds: halfLife,
                                privacy: start?.privacy)
        if let progress, progress("done", 1) { throw .cancelled("fit cancelled by the progress callback") }
        return model
    }

    /// Each factory's agent on `data`, in order, completed by the derived agents (query).
    /// `warmStart`: agents fitted on the validation split, offered by name to their final fit and
    /// released after it (so a twin and its successor are held together only while one trains).
    private func trainAgents(_ factories: [AgentFactory], on data: TrainingData, threads: Int, validation: ValidationProbe? = nil,
                             warmStart: inout [RecommenderAgent], initial: [String: RecommenderAgent] = [:],
                             stage: (Int, Int) -> (@Sendable (Double) -> Bool)) throws(ChorusError) -> [RecommenderAgent] {
        // Each agent's fit depends only on the data and the seed, so the order they train in is
        // free: against a probe, those that keep a copy of their best check go first (their copy
        // is then held beside no other model; `AgentFactory.keepsBestCheck`).
        let order = validation == nil ? Array(factories.indices)
            : factories.indices.filter { factories[$0].keepsBestCheck } + factories.indices.filter { !factories[$0].keepsBestCheck }
        var fitted = [RecommenderAgent?](repeating: nil, count: factories.count)
        for (position, a) in order.enumerated() {
            let f = factories[a], watch = Stopwatch()
            let twin = warmStart.firstIndex { $0.name == f.name }.map { warmStart.remove(at: $0) }
            fitted[a] = try f.fit(data, FitContext(threads: threads, seed: parameters.seed, progress: stage(position, factories.count),
                                                   validation: validation, warmStart: twin, initial: initial[f.name]))
            // Where a fit's time goes, agent by agent (the host sees it through the log callback).
            Log.emit(.info, "\(validation == nil ? "training" : "validation"): \(f.name) took \(watch.milliseconds) ms")
        }
        return AgentRegistry.completed(fitted.compactMap { $0 })
    }

    /// The validation phase of a fit: holds out each user's latest interactions, trains the agents
    /// on the rest, builds every validation user's candidates, and fits the coordinator on what was
    /// held out (`Coordinator.choose`). With an automatic popularity half-life, each candidate
    /// half-life is scored first by the popularity agent's own validation NDCG@10. Returns nil when
    /// nothing can be held out.
    private func fitBlend(log: InteractionLog, inputs: AgentRegistry.Inputs, initial: [String: RecommenderAgent], threads: Int, profiles: [Int32: [Float]], scenarios: ScenarioTable,
                          progress: ((String, Double) -> Bool)?,
                          stage: (String, Double, Double) -> (@Sendable (Double) -> Bool)) throws(ChorusError)
        -> (coordinator: CoordinatorModel, halfLife: Int64, bprEpochs: Int?, agents: [RecommenderAgent])? {
        let p = parameters
        guard p.validationFraction > 0 else { return nil }
        let held = TemporalHoldOut.split(users: log.userIndex, timestamps: log.timestamps, fraction: Double(p.validationFraction))
        guard held.contains(true) else { return nil }
        var relevant: [Int32: [Int32]] = [:]
        relevant.reserveCapacity(log.users.count)
        for r in 0..<log.count where held[r] { relevant[log.userIndex[r], default: []].append(log.itemIndex[r]) }
        // The log without its held-out rows (the log's columns, not a copy of its rows).
        let train = TrainingData(userCount: log.users.count, itemCount: log.items.count, users: log.userIndex, items: log.itemIndex,
                                 weights: log.weights, timestamps: log.timestamps, excluding: held)
        let trainSeen = train.userItems
        var inputs = inputs
        var factories = AgentRegistry.factories(inputs)

        // Validation users: every user with a held-out item, thinned to a deterministic spread of
        // at most 5,000 (fewer when their candidate features would pass 256 MB). The coordinator
        // has a few hundred parameters; 20,000 users made its fit the costliest stage at 1M
        // interactions (16 s of a 33 s ALS-only fit, bench/scale) for no change in its choice,
        // and both MovieLens sets have fewer users, so their fits are unchanged.
        var vUsers = relevant.keys.sorted()
        let perUser = factories.count * p.candidatesPerAgent * Candidates.Features(agents: factories.count).count * MemoryLayout<Float>.stride
        let cap = max(200, min(5_000, (256 << 20) / max(1, perUser)))
        if vUsers.count > cap { vUsers = stride(from: 0, to: vUsers.count, by: (vUsers.count + cap - 1) / cap).map { vUsers[$0] } }
        let vu = vUsers, relevantItems = relevant
        let seen: @Sendable (Int) -> ArraySlice<Int32> = { u in trainSeen.row(Int(vu[u])).cols }
        let relevantOf: @Sendable (Int) -> [Int32] = { u in relevantItems[vu[u]] ?? [] }

        // Automatic half-life: the popularity agent alone decides, by its own validation NDCG@10.
        if config.popularityHalfLifeSeconds == 0 {
            var best = -1.0, halfLife = inputs.halfLife
            for candidate in EngineConfig.halfLifeCandidates {
                let agent = try PopularityAgent.Factory(halfLifeSeconds: candidate).fit(train, FitContext(threads: threads, seed: p.seed))
                let ndcg = try popularityNDCG(agent, users: vu.count, itemCount: log.items.count, threads: threads, seen: seen, relevant: relevantOf)
                if ndcg > best + 1e-9 { best = ndcg; halfLife = candidate }
            }
            inputs.halfLife = halfLife
            factories = AgentRegistry.factories(inputs)
            Log.emit(.info, "popularity half-life \(halfLife < 0 ? "none" : "\(halfLife / 86_400) days") (validation NDCG@10 of popularity alone \(best))")
        }

        // Iterative agents with an automatic budget stop by the hold-out (the probe) and record it.
        let probe = ValidationProbe(users: vu, seen: { u in trainSeen.row(Int(u)).cols }, relevant: { relevant[$0] ?? [] }, threads: threads)
        var noTwins: [RecommenderAgent] = []
        let agents = try trainAgents(factories, on: train, threads: threads, validation: probe, warmStart: &noTwins, initial: initial) { a, count in
            stage("validation", 0.4 * Double(a) / Double(count), 0.4 * Double(a + 1) / Double(count))
        }
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
        var watch = Stopwatch()
        let cache = try ValidationCandidates(
            agents: agents, itemCount: log.items.count, quota: p.candidatesPerAgent, threads: threads, users: keys.count,
            request: { q, body in
                let profile = profileBox.value[queryUser[q]] ?? []
                profile.withUnsafeBufferPointer { pb in body(AgentRequest(user: queryUser[q], profile: pb.isEmpty ? nil : pb)) }
            },
            seen: { q in trainSeen.row(Int(queryUser[q])).cols }, relevant: { q in queryRelevant[q] },
            activity: { q in Candidates.activity(historyLength: counts[q]) }, warmth: warmth,
            scenario: { q in queryScenario[q] })
        Log.emit(.info, "blend: candidates of \(keys.count) validation queries took \(watch.milliseconds) ms")
        watch = Stopwatch()
        if let progress, progress("blend", 0.45) { throw .cancelled("fit cancelled by the progress callback") }
        let frozen = Set(agents.indices.filter { agents[$0].role.contains(.query) })
        let coarse = Coordinator.fitLinear(cache, users: Array(0..<cache.users), k: 10, threads: threads, frozen: frozen, lastStep: 1.0 / 16)
        let chosen = Coordinator.choose(cache, k: 10, threads: threads, seed: p.seed, frozen: frozen, linearStart: coarse.weights,
                                        descriptions: scenarios.vectors)
        var report = chosen.report
        var queryWeight: Float = 0.5
        if let q = frozen.first, let content = agents.first(where: { $0.role.contains(.itemDescriptions) }) as? ContentAgent {
            if let fitted = try fitQueryWeight(agents: agents, query: q, content: content, users: vu, relevant: relevant, train: train,
                                               profiles: profiles, warmth: warmth, threads: threads, quota: p.candidatesPerAgent,
                                               weights: chosen.weights, ranker: chosen.ranker) {
                queryWeight = fitted.weight
                report += "; query weight \(fitted.weight) (pseudo-query validation NDCG@10 \(Coordinator.formatted(fitted.ndcg)))"
            } else {
                report += "; query weight 0.5 (too few validation users with two held-out items with text to fit it)"
            }
        }
        var cold: [ColdRequest: [Float]] = [:]
        for kind in ColdRequest.allCases {
            if let fitted = try fitColdWeights(kind, agents: agents, users: vu, relevant: relevant, train: train, profiles: profiles,
                                               warmth: warmth, threads: threads, quota: p.candidatesPerAgent, frozen: frozen, warm: chosen.weights) {
                cold[kind] = fitted.weights
                report += "; \(kind.rawValue) requests of unknown users: \(fitted.report)"
                continue
            }
            let taking = Self.coldAgents(kind, agents: agents, frozen: frozen)
            if taking.count >= 2 {
                // Too few validation users to fit this kind's blend: equal weights over the agents
                // that can score it, as a fit without validation gives. The warm blend, chosen on known
                // users, may give all of its weight to agents that cannot score an unknown user (the
                // factor agents); renormalised over the rest it can leave popularity alone, ignoring
                // the request's items.
                cold[kind] = agents.indices.map { taking.contains($0) ? 1 / Float(taking.count) : 0 }
                report += "; \(kind.rawValue) requests of unknown users: equal weights over "
                    + taking.sorted().map { agents[$0].name }.joined(separator: ", ") + " (too few validation users to fit their blend)"
            }
        }
        Log.emit(.info, "coordinator: \(report); blend weights \(chosen.weights) (took \(watch.milliseconds) ms)")
        return (CoordinatorModel(weights: chosen.weights, ranker: chosen.ranker, queryWeight: queryWeight,
                                 candidatesPerAgent: p.candidatesPerAgent, report: report, coldWeights: cold),
                inputs.halfLife, probe.budget("bpr"), agents)
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

    /// The blend for requests of users the model does not know (`ColdRequest`), fitted on validation
    /// users served as such a request: `.history`, their latest 20 training items as the request's
    /// history; `.profile`, their profile text, or else the direction of their training items' text
    /// vectors (needs the content agent). Training items are masked, the held-out ones relevant.
    /// Starts from the warm weights renormalised over the agents that can score the request (what
    /// serves them otherwise) and keeps a move only when validation NDCG@10 rises. At most 1,000 users
    /// (a deterministic spread); nil with fewer than 50, or when fewer than two agents take part.
    private func fitColdWeights(_ kind: ColdRequest, agents: [RecommenderAgent], users vu: [Int32], relevant: [Int32: [Int32]],
                                train: TrainingData, profiles: [Int32: [Float]], warmth: [Float], threads: Int, quota: Int,
                                frozen: Set<Int>, warm: [Float]) throws(ChorusError) -> (weights: [Float], report: String)? {
        var picked = vu.filter { !(relevant[$0] ?? []).isEmpty && train.userItems.row(Int($0)).cols.count > 0 }
        if picked.count > 1000 { picked = stride(from: 0, to: picked.count, by: (picked.count + 999) / 1000).map { picked[$0] } }
        guard picked.count >= 50 else { return nil }
        // Each picked user's request: a history (time order) or a profile vector.
        var histories: [[Int32]] = [], vectors: [[Float]] = []
        switch kind {
        case .history:
            let index = Dictionary(uniqueKeysWithValues: picked.enumerated().map { ($1, $0) })
            var rows = [[(Int64, Int32)]](repeating: [], count: picked.count)
            train.forEachRow { r in if let k = index[train.users[r]] { rows[k].append((train.timestamps[r], train.items[r])) } }
            histories = rows.map { $0.sorted { $0.0 < $1.0 }.suffix(20).map(\.1) }
        case .profile:
            guard let content = agents.first(where: { $0.role.contains(.itemDescriptions) }) as? ContentAgent else { return nil }
            let d = content.dimension
            for u in picked {
                var v = profiles[u] ?? [Float](repeating: 0, count: d)
                if profiles[u] == nil {
                    for i in train.userItems.row(Int(u)).cols { let row = content.vectors.row(Int(i)); for j in 0..<d { v[j] += row[j] } }
                }
                let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
                vectors.append(norm > 0 && norm.isFinite ? v.map { $0 / norm } : [])
            }
        }
        let taking = Self.coldAgents(kind, agents: agents, frozen: frozen)
        guard taking.count >= 2 else { return nil }
        let chosen = picked, trainSeen = train.userItems, hs = histories, vs = vectors
        let cache = try ValidationCandidates(
            agents: agents, itemCount: train.itemCount, quota: quota, threads: threads, users: chosen.count,
            request: { u, body in
                if kind == .history { body(AgentRequest(user: nil, history: hs[u])); return }
                vs[u].withUnsafeBufferPointer { pb in body(AgentRequest(user: nil, profile: pb.isEmpty ? nil : pb)) }
            },
            seen: { u in trainSeen.row(Int(chosen[u])).cols }, relevant: { u in relevant[chosen[u]] ?? [] },
            activity: { u in Candidates.activity(historyLength: kind == .history ? hs[u].count : 0) }, warmth: warmth)
        let total = taking.reduce(Float(0)) { $0 + warm[$1] }
        let start = agents.indices.map { taking.contains($0) ? (total > 0 ? warm[$0] / total : 1 / Float(taking.count)) : 0 }
        let others = Set(agents.indices).subtracting(taking)
        let before = Coordinator.meanNDCG(cache, users: Array(0..<cache.users), k: 10, threads: threads, weights: start)
        let fitted = Coordinator.fitLinear(cache, users: Array(0..<cache.users), k: 10, threads: threads, frozen: others, start: start,
                                           firstStep: 1.0 / 8)
        let mix = taking.sorted().map { "\(agents[$0].name) \(Coordinator.formatted(Double(fitted.weights[$0])))" }.joined(separator: ", ")
        return (fitted.weights, "\(mix) (validation NDCG@10 \(Coordinator.formatted(fitted.ndcg)) vs \(Coordinator.formatted(before)) "
                + "with the warm weights, \(chosen.count) users)")
    }

    /// The agents (outside `frozen`) that can score a request of `kind` from a user the model does
    /// not know (a probe request: one history item, or a profile vector of the content agent's width).
    private static func coldAgents(_ kind: ColdRequest, agents: [RecommenderAgent], frozen: Set<Int>) -> Set<Int> {
        let width = (agents.first { $0.role.contains(.itemDescriptions) } as? ContentAgent)?.dimension ?? 1
        let dummy = [Float](repeating: 0, count: max(1, width))
        return dummy.withUnsafeBufferPointer { pb in
            let probe = kind == .history ? AgentRequest(user: nil, history: [0]) : AgentRequest(user: nil, profile: pb)
            return Set(agents.indices.filter { !frozen.contains($0) && agents[$0].canScore(probe) })
        }
    }

    /// Mean validation NDCG@10 of one popularity agent (the same list for everyone, seen items masked).
    /// The catalogue is ordered once (score descending, ties by the lower index, as `TopK.select`);
    /// each user's top 10 is then the first 10 of that order they have not seen: a walk of at most
    /// 10 + |seen| items instead of a scan of the catalogue per user.
    private func popularityNDCG(_ agent: RecommenderAgent, users: Int, itemCount: Int, threads: Int,
                                seen: @escaping @Sendable (Int) -> ArraySlice<Int32>,
                                relevant: @escaping @Sendable (Int) -> [Int32]) throws(ChorusError) -> Double {
        let base = [Float](unsafeUninitializedCapacity: itemCount) { b, n in
            agent.score(AgentRequest(user: nil), into: b); n = itemCount
        }
        let order = (0..<itemCount).filter { !base[$0].isNaN && base[$0] != -.infinity }
            .sorted { base[$0] != base[$1] ? base[$0] > base[$1] : $0 < $1 }
        let parts = max(1, min(threads, users / 64 + 1))
        let sums = UnsafeSendableBox([Double](repeating: 0, count: parts))
        defer { sums.free() }
        Parallel.forEachChunk(count: users, threads: parts) { worker, range in
            var masked = [Bool](repeating: false, count: itemCount)
            var top: [Int32] = []
            var total = 0.0
            for u in range {
                for i in seen(u) where i >= 0 && Int(i) < itemCount { masked[Int(i)] = true }
                top.removeAll(keepingCapacity: true)
                for i in order where !masked[i] {
                    top.append(Int32(i))
                    if top.count == 10 { break }
                }
                for i in seen(u) where i >= 0 && Int(i) < itemCount { masked[Int(i)] = false }
                total += RankingMetrics.ndcg(top, relevant: Set(relevant(u)), k: 10)
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
