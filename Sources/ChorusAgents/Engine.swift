import ChorusCore
import ChorusCollaborative
import Synchronization

/// The recommendation engine: an interaction log, a set of agents, and a coordinator that blends
/// them. This is the pure-Swift core behind the C ABI.
///
/// Thread safety: every method may be called from any thread. Reads (recommend, similar items,
/// stats, save) work on an immutable published model; `add` appends under a lock; `fit` trains a
/// new model outside the lock and publishes it when done (fits are serialised among themselves).
public final class Engine: @unchecked Sendable {
    public let config: EngineConfig
    private struct State {
        var log = InteractionLog()
        var model: FittedModel?
        var lastParameters = FitParameters()
    }
    private let state = Mutex(State())
    private let fitLock = Mutex(())

    public init(config: EngineConfig = EngineConfig()) { self.config = config }

    /// The agents, in blend order. The popularity agent is first and is the cold-start fallback.
    public static let agentOrder = ["popularity", "als"]
    public var agentNames: [String] { Self.agentOrder }

    /// The coordinator's weights per agent (0 before the first fit).
    public var blendWeights: [Float] { state.withLock { $0.model?.weights } ?? [Float](repeating: 0, count: agentNames.count) }

    /// Distinct items added so far.
    public var itemCount: Int { state.withLock { $0.log.items.count } }

    /// The agents' factories for one fit, popularity first (`halfLife` < 0: no decay).
    func factories(_ p: FitParameters, halfLife: Int64) -> [AgentFactory] {
        var als = ALSParameters()
        als.factors = p.factors; als.regularization = p.regularization; als.alpha = p.alpha
        als.iterations = p.iterations; als.threads = p.threads; als.seed = p.seed
        return [PopularityAgent.Factory(halfLifeSeconds: halfLife), ALSAgent.Factory(parameters: als)]
    }

    // MARK: - Data

    /// Appends a batch; validated whole first, so on error nothing is added.
    public func add(users: UnsafeBufferPointer<Int64>, items: UnsafeBufferPointer<Int64>,
                    weights: UnsafeBufferPointer<Float>?, timestamps: UnsafeBufferPointer<Int64>?) throws(ChorusError) {
        try state.withLock { (s) throws(ChorusError) in
            try s.log.append(users: users, items: items, weights: weights, timestamps: timestamps)
        }
    }

    public func add(_ batch: [Interaction]) throws(ChorusError) {
        try state.withLock { (s) throws(ChorusError) in try s.log.append(batch) }
    }

    // MARK: - Fit

    /// Trains every agent, fits the blend on a temporal validation hold-out, retrains on all data,
    /// and publishes the new model.
    /// - Parameter progress: `(stage, fraction)`; return true to cancel (the previous model stays).
    /// - Throws: `.invalidArgument` for bad parameters or too little data, `.cancelled`.
    public func fit(_ p: FitParameters, progress: ((String, Double) -> Bool)? = nil) throws(ChorusError) {
        try p.validate()
        try fitLock.withLock { (_) throws(ChorusError) in
            let log = state.withLock { $0.log }
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
            var factories = self.factories(p, halfLife: halfLife)
            let all = TrainingData(userCount: log.users.count, itemCount: log.items.count, users: log.userIndex,
                                   items: log.itemIndex, weights: log.weights, timestamps: log.timestamps)

            // 1. Validation: fit on each user's earlier interactions, choose blend weights on the later ones.
            let held = p.validationFraction > 0
                ? TemporalHoldOut.split(users: log.userIndex, timestamps: log.timestamps, fraction: Double(p.validationFraction))
                : [Bool](repeating: false, count: log.count)
            var weights = [Float](repeating: 1 / Float(factories.count), count: factories.count)
            if held.contains(true) {
                var tu = [Int32](), ti = [Int32](), tw = [Float](), tt = [Int64]()
                var relevant: [Int32: [Int32]] = [:]
                for r in 0..<log.count {
                    if held[r] { relevant[log.userIndex[r], default: []].append(log.itemIndex[r]) }
                    else { tu.append(log.userIndex[r]); ti.append(log.itemIndex[r]); tw.append(log.weights[r]); tt.append(log.timestamps[r]) }
                }
                let train = TrainingData(userCount: log.users.count, itemCount: log.items.count, users: tu, items: ti, weights: tw, timestamps: tt)
                // The validation scores cache holds users x agents x items floats: at most 2,000 users
                // (a deterministic spread) and at most 256 MB keep this step fast and small on big data.
                var vUsers = relevant.keys.sorted()
                let budget = max(100, (256 << 20) / max(1, factories.count * log.items.count * MemoryLayout<Float>.stride))
                let cap = min(2000, budget)
                if vUsers.count > cap { vUsers = stride(from: 0, to: vUsers.count, by: (vUsers.count + cap - 1) / cap).map { vUsers[$0] } }
                let vu = vUsers, rel = relevant, trainSeen = train.userItems, itemCount = log.items.count
                var agents: [RecommenderAgent] = []
                for (a, f) in factories.enumerated() {
                    let lo = 0.45 * Double(a) / Double(factories.count), hi = 0.45 * Double(a + 1) / Double(factories.count)
                    agents.append(try f.fit(train, FitContext(threads: threads, seed: p.seed, progress: stage("validation", lo, hi))))
                }
                if let progress, progress("blend", 0.45) { throw .cancelled("fit cancelled by the progress callback") }
                let scores = try ValidationScores(users: vu.count, agentCount: agents.count, itemCount: itemCount)
                for (a, agent) in agents.enumerated() {
                    scores.fill(agent: a, threads: threads) { u, out in agent.score(user: vu[u], into: out) }
                }
                let seen: @Sendable (Int) -> ArraySlice<Int32> = { u in trainSeen.row(Int(vu[u])).cols }
                let relevantOf: @Sendable (Int) -> [Int32] = { u in rel[vu[u]] ?? [] }
                var best: (weights: [Float], ndcg: Double)
                if config.popularityHalfLifeSeconds == 0 {
                    // Choose the half-life by what it adds to the blend, with a coarse weight search per
                    // candidate (only the popularity rows change), then refine the winner's weights.
                    let pop = factories.firstIndex { $0.name == "popularity" }!
                    best = try Coordinator.fitWeights(scores, k: 10, threads: threads, lastStep: 1.0 / 16, seen: seen, relevant: relevantOf)
                    var bestAgent = agents[pop]
                    for candidate in EngineConfig.halfLifeCandidates where candidate != halfLife {
                        let agent = try PopularityAgent.Factory(halfLifeSeconds: candidate).fit(train, FitContext(threads: threads, seed: p.seed))
                        scores.fill(agent: pop, threads: threads) { u, out in agent.score(user: vu[u], into: out) }
                        let fitted = try Coordinator.fitWeights(scores, k: 10, threads: threads, lastStep: 1.0 / 16, seen: seen, relevant: relevantOf)
                        if fitted.ndcg > best.ndcg + 1e-9 { best = fitted; halfLife = candidate; bestAgent = agent }
                    }
                    let winner = bestAgent
                    scores.fill(agent: pop, threads: threads) { u, out in winner.score(user: vu[u], into: out) }
                    best = try Coordinator.fitWeights(scores, k: 10, threads: threads, start: best.weights, firstStep: 1.0 / 32,
                                                      seen: seen, relevant: relevantOf)
                    factories = self.factories(p, halfLife: halfLife)
                    Log.emit(.info, "popularity half-life \(halfLife < 0 ? "none" : "\(halfLife / 86_400) days")")
                } else {
                    best = try Coordinator.fitWeights(scores, k: 10, threads: threads, seen: seen, relevant: relevantOf)
                }
                weights = best.weights
                Log.emit(.info, "blend weights \(zip(factories.map(\.name), weights).map { "\($0)=\($1)" }.joined(separator: " ")) (validation NDCG@10 \(best.ndcg))")
            }

            // 2. Final agents on all data.
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

    // MARK: - Recommend

    private func publishedModel() throws(ChorusError) -> FittedModel {
        guard let m = state.withLock({ $0.model }) else {
            throw .notFitted("the engine has no model yet: add interactions and call fit first")
        }
        return m
    }

    /// Items blocked by allow/deny lists, as a dense flag array (nil when nothing is blocked).
    private func blockedItems(_ m: FittedModel, allow: Set<Int64>?, deny: Set<Int64>) -> [Bool]? {
        if allow == nil && deny.isEmpty { return nil }
        var blocked = [Bool](repeating: allow != nil, count: m.itemCount)
        if let allow { for id in allow { if let i = m.items.index(of: id) { blocked[Int(i)] = false } } }
        for id in deny { if let i = m.items.index(of: id) { blocked[Int(i)] = true } }
        return blocked
    }

    /// Recommends into caller buffers (the C ABI's path): `outIds`/`outScores` hold users.count * k
    /// entries; `outShares` (optional) users.count * k * agentCount; `outFlags` (optional) users.count.
    /// - Throws: `.notFitted`, `.invalidArgument` for k out of range, `.notFound` for an unknown agent.
    public func recommend(users: UnsafeBufferPointer<Int64>, k: Int, options: RecommendOptions,
                          outIds: UnsafeMutablePointer<Int64>, outScores: UnsafeMutablePointer<Float>,
                          outShares: UnsafeMutablePointer<Float>?, outFlags: UnsafeMutablePointer<UInt32>?) throws(ChorusError) {
        let m = try publishedModel()
        let nItems = m.itemCount
        guard k >= 1 else { throw .invalidArgument("k must be at least 1") }
        guard k <= nItems else { throw .invalidArgument("k = \(k) is larger than the catalogue (\(nItems) items)") }
        var selected: Int? = nil
        if let name = options.agent {
            guard let a = m.agents.firstIndex(where: { $0.name == name }) else {
                throw .notFound("unknown agent '\(name)'; this engine's agents are: \(m.agents.map(\.name).joined(separator: ", "))")
            }
            selected = a
        }
        let only = selected
        let blocked = SendableBox(blockedItems(m, allow: options.allow, deny: options.deny))
        let nAgents = m.agents.count
        let out = SendableBox((users, outIds, outScores, outShares, outFlags))
        let includeSeen = options.includeSeen
        let threads = users.count >= 64 ? Parallel.cpuCount : 1
        // Scratch per worker: one buffer per agent plus the blend.
        let scratchError = Mutex<ChorusError?>(nil)
        Parallel.forEachChunk(count: users.count, threads: threads) { _, range in
            let (users, outIds, outScores, outShares, outFlags) = out.value
            guard let scratch = try? FloatMatrix(rows: nAgents + 1, cols: nItems, zeroed: false) else {
                scratchError.withLock { $0 = .outOfMemory("cannot allocate recommend scratch buffers") }
                return
            }
            let final = UnsafeMutableBufferPointer(start: scratch.row(nAgents), count: nItems)
            for u in range {
                let uidx = m.users.index(of: users[u])
                let cold = uidx == nil
                var used: [Int] = []
                if cold || only != nil {
                    let a = cold && !(m.agents[only ?? m.popularityIndex].scoresUnknownUsers) ? m.popularityIndex : (only ?? m.popularityIndex)
                    m.agents[a].score(user: uidx, into: final)
                    used = [a]
                } else {
                    for i in 0..<nItems { final[i] = 0 }
                    for a in 0..<nAgents where m.weights[a] > 0 {
                        let buf = UnsafeMutableBufferPointer(start: scratch.row(a), count: nItems)
                        m.agents[a].score(user: uidx, into: buf)
                        Coordinator.normalize(buf)
                        Kernels.axpy(m.weights[a], buf.baseAddress!, final.baseAddress!, nItems)
                        used.append(a)
                    }
                }
                if let uidx, !includeSeen { for i in m.seen.row(Int(uidx)).cols { final[Int(i)] = -.infinity } }
                if let b = blocked.value { for i in 0..<nItems where b[i] { final[i] = -.infinity } }
                let top = TopK.select(UnsafeBufferPointer(final), k: k)
                for slot in 0..<k {
                    let o = u * k + slot
                    if slot < top.count {
                        let i = Int(top[slot].index)
                        outIds[o] = m.items.ids[i]
                        outScores[o] = top[slot].score
                        if let outShares {
                            let sh = outShares + o * nAgents
                            for a in 0..<nAgents { sh[a] = 0 }
                            if used.count == 1 {
                                sh[used[0]] = 1
                            } else {
                                let total = final[i]
                                for a in used {
                                    sh[a] = total > 0 ? m.weights[a] * scratch.row(a)[i] / total : m.weights[a]
                                }
                            }
                        }
                    } else {
                        outIds[o] = -1
                        outScores[o] = -.infinity
                        if let outShares { for a in 0..<nAgents { outShares[o * nAgents + a] = 0 } }
                    }
                }
                outFlags?[u] = cold ? 1 : 0
            }
        }
        if let e = scratchError.withLock({ $0 }) { throw e }
    }

    /// Swift-friendly recommend.
    public func recommend(users: [Int64], k: Int, options: RecommendOptions = RecommendOptions()) throws(ChorusError) -> [RecommendationList] {
        let nA = agentNames.count
        var ids = [Int64](repeating: -1, count: users.count * k)
        var scores = [Float](repeating: 0, count: users.count * k)
        var shares = [Float](repeating: 0, count: users.count * k * nA)
        var flags = [UInt32](repeating: 0, count: users.count)
        try users.withUnsafeBufferPointer { (u) throws(ChorusError) in
            try ids.withUnsafeMutableBufferPointer { (i) throws(ChorusError) in
                try scores.withUnsafeMutableBufferPointer { (s) throws(ChorusError) in
                    try shares.withUnsafeMutableBufferPointer { (sh) throws(ChorusError) in
                        try flags.withUnsafeMutableBufferPointer { (f) throws(ChorusError) in
                            try recommend(users: u, k: k, options: options, outIds: i.baseAddress!, outScores: s.baseAddress!,
                                          outShares: sh.baseAddress!, outFlags: f.baseAddress!)
                        }
                    }
                }
            }
        }
        return users.indices.map { u in
            let filled = (0..<k).filter { ids[u * k + $0] != -1 }
            return RecommendationList(user: users[u], coldFallback: flags[u] != 0,
                                      items: filled.map { ids[u * k + $0] }, scores: filled.map { scores[u * k + $0] },
                                      shares: filled.map { Array(shares[((u * k + $0) * nA)..<((u * k + $0 + 1) * nA)]) })
        }
    }

    // MARK: - Similar items

    /// The k items most similar to each given item (cosine of the first agent with item vectors).
    public func similarItems(items: UnsafeBufferPointer<Int64>, k: Int, allow: Set<Int64>?, deny: Set<Int64>,
                             outIds: UnsafeMutablePointer<Int64>, outScores: UnsafeMutablePointer<Float>) throws(ChorusError) {
        let m = try publishedModel()
        let nItems = m.itemCount
        guard k >= 1 else { throw .invalidArgument("k must be at least 1") }
        guard k <= nItems else { throw .invalidArgument("k = \(k) is larger than the catalogue (\(nItems) items)") }
        guard let vectors = m.agents.lazy.compactMap({ $0.itemVectors }).first else {
            throw .internalError("no agent provides item vectors")
        }
        var query = [Int](repeating: 0, count: items.count)
        for (q, id) in items.enumerated() {
            guard let i = m.items.index(of: id) else { throw .notFound("item \(id) is not in the fitted model") }
            query[q] = Int(i)
        }
        let blocked = blockedItems(m, allow: allow, deny: deny)
        let f = vectors.cols
        var norms = [Float](repeating: 0, count: nItems)
        for i in 0..<nItems { norms[i] = Kernels.dot(vectors.row(i), vectors.row(i), f).squareRoot() }
        var scores = [Float](repeating: 0, count: nItems)
        for (q, qi) in query.enumerated() {
            let qn = norms[qi]
            for i in 0..<nItems {
                let d = norms[i] * qn
                scores[i] = d > 0 ? Kernels.dot(vectors.row(qi), vectors.row(i), f) / d : 0
            }
            scores[qi] = -.infinity
            if let blocked { for i in 0..<nItems where blocked[i] { scores[i] = -.infinity } }
            let top = scores.withUnsafeBufferPointer { TopK.select($0, k: k) }
            for slot in 0..<k {
                let o = q * k + slot
                if slot < top.count { outIds[o] = m.items.ids[Int(top[slot].index)]; outScores[o] = top[slot].score }
                else { outIds[o] = -1; outScores[o] = -.infinity }
            }
        }
    }

    // MARK: - Snapshot support

    func stateSnapshot() -> (InteractionLog, FittedModel?, FitParameters) {
        state.withLock { ($0.log, $0.model, $0.lastParameters) }
    }

    func restore(log: InteractionLog, model: FittedModel?, parameters: FitParameters) {
        state.withLock { $0.log = log; $0.model = model; $0.lastParameters = parameters }
    }

    // MARK: - Stats

    public func stats() -> EngineStats {
        let (log, model) = state.withLock { ($0.log, $0.model) }
        let alloc = Allocator.stats()
        return EngineStats(fitted: model != nil, users: log.users.count, items: log.items.count, interactions: log.count,
                           modelUsers: model?.users.count ?? 0, modelItems: model?.items.count ?? 0,
                           modelBytes: model?.modelBytes ?? 0, popularityHalfLifeSeconds: model?.popularityHalfLifeSeconds ?? 0,
                           allocatedBytes: alloc.allocated, residentBytes: alloc.resident)
    }
}
