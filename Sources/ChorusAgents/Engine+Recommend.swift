import ChorusCore
import Synchronization

/// Serving: requests -> agents' scores -> candidates -> the coordinator's ranking -> top k.
extension Engine {
    func publishedModel() throws(ChorusError) -> FittedModel {
        try publishedModelAndTexts().0
    }

    func publishedModelAndTexts() throws(ChorusError) -> (FittedModel, TextCatalogue) {
        let (model, texts) = state.withLock { ($0.model, $0.texts) }
        guard let model else { throw .notFitted("the engine has no model yet: add interactions and call fit first") }
        return (model, texts)
    }

    /// The ranking network's modulation for a request's scenario (empty without a network).
    /// - Throws: `.notFound` for an undefined scenario.
    func scenarioModulation(_ name: String?, model m: FittedModel) throws(ChorusError) -> [Float] {
        let table = state.withLock { $0.scenarios }
        let s = try table.resolve(name)
        guard let net = m.ranker else { return [] }
        return net.modulation(scenario: s, description: table.vectors[s])
    }

    /// Items blocked by allow/deny lists, as a dense flag array (nil when nothing is blocked).
    func blockedItems(_ m: FittedModel, allow: Set<Int64>?, deny: Set<Int64>) -> [Bool]? {
        if allow == nil && deny.isEmpty { return nil }
        var blocked = [Bool](repeating: allow != nil, count: m.itemCount)
        if let allow { for id in allow { if let i = m.items.index(of: id) { blocked[Int(i)] = false } } }
        for id in deny { if let i = m.items.index(of: id) { blocked[Int(i)] = true } }
        return blocked
    }

    /// Recommends into caller buffers (the C ABI's path): `outIds`/`outScores` hold users.count * k
    /// entries; `outShares` (optional) at least users.count * k * agentCount; `outFlags` (optional)
    /// users.count.
    /// - Throws: `.notFitted`, `.invalidArgument` for k out of range, `.notFound` for an unknown
    ///   agent, `.bufferTooSmall` for a shares buffer too small for this model's agents.
    /// - Returns: the agents of the model that served the call, in share order (a concurrent fit
    ///   may publish a model with other agents: these are the ones the shares refer to).
    @discardableResult
    public func recommend(users: UnsafeBufferPointer<Int64>, k: Int, options: RecommendOptions,
                          outIds: UnsafeMutablePointer<Int64>, outScores: UnsafeMutablePointer<Float>,
                          outShares sharesBuffer: UnsafeMutableBufferPointer<Float>?, outFlags: UnsafeMutablePointer<UInt32>?) throws(ChorusError) -> [String] {
        let (m, texts) = try publishedModelAndTexts()
        try recommend(m, texts, users: users, k: k, options: options, outIds: outIds, outScores: outScores,
                      outShares: sharesBuffer, outFlags: outFlags)
        return m.agents.map(\.name)
    }

    /// Swift-friendly recommend.
    public func recommend(users: [Int64], k: Int, options: RecommendOptions = RecommendOptions()) throws(ChorusError) -> [RecommendationList] {
        let (m, texts) = try publishedModelAndTexts()
        let nA = m.agents.count
        var ids = [Int64](repeating: -1, count: users.count * k)
        var scores = [Float](repeating: 0, count: users.count * k)
        var shares = [Float](repeating: 0, count: users.count * k * nA)
        var flags = [UInt32](repeating: 0, count: users.count)
        try users.withUnsafeBufferPointer { (u) throws(ChorusError) in
            try ids.withUnsafeMutableBufferPointer { (i) throws(ChorusError) in
                try scores.withUnsafeMutableBufferPointer { (s) throws(ChorusError) in
                    try shares.withUnsafeMutableBufferPointer { (sh) throws(ChorusError) in
                        try flags.withUnsafeMutableBufferPointer { (f) throws(ChorusError) in
                            try recommend(m, texts, users: u, k: k, options: options, outIds: i.baseAddress!, outScores: s.baseAddress!,
                                          outShares: sh, outFlags: f.baseAddress!)
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

    private func recommend(_ m: FittedModel, _ texts: TextCatalogue, users: UnsafeBufferPointer<Int64>, k: Int, options: RecommendOptions,
                           outIds: UnsafeMutablePointer<Int64>, outScores: UnsafeMutablePointer<Float>,
                           outShares sharesBuffer: UnsafeMutableBufferPointer<Float>?, outFlags: UnsafeMutablePointer<UInt32>?) throws(ChorusError) {
        let nItems = m.itemCount
        guard k >= 1 else { throw .invalidArgument("k must be at least 1") }
        guard k <= nItems else { throw .invalidArgument("k = \(k) is larger than the catalogue (\(nItems) items)") }
        if let sharesBuffer {
            let (a, o1) = users.count.multipliedReportingOverflow(by: k)
            let (need, o2) = a.multipliedReportingOverflow(by: m.agents.count)
            guard !o1, !o2, sharesBuffer.count >= need else {
                throw .bufferTooSmall("shares_capacity \(sharesBuffer.count) < n_users * k * agent_count = \(users.count) * \(k) * \(m.agents.count)")
            }
        }
        var only: Int? = nil
        if let name = options.agent {
            guard let a = m.agents.firstIndex(where: { $0.name == name }) else {
                throw .notFound("unknown agent '\(name)'; this engine's agents are: \(m.agents.map(\.name).joined(separator: ", "))")
            }
            only = a
        }
        // The request's own parts, the same for every user of the call: its history and query.
        let history = options.history.compactMap { m.items.index(of: $0) }
        let queryVector = try encodeQuery(options.query, model: m, texts: texts)
        guard options.diversity.isFinite, options.diversity >= 0, options.diversity <= 1 else {
            throw .invalidArgument("diversity must be in [0, 1], got \(options.diversity)")
        }
        let diversity = options.diversity
        let modulation = try scenarioModulation(options.scenario, model: m)
        let context = SendableBox((m, only, blockedItems(m, allow: options.allow, deny: options.deny), options.includeSeen, texts.users,
                                   history, queryVector))
        let out = SendableBox((users, outIds, outScores, sharesBuffer?.baseAddress, outFlags))
        let threads = users.count >= 64 ? Parallel.cpuCount : 1
        let scratchError = Mutex<ChorusError?>(nil)
        Parallel.forEachChunk(count: users.count, threads: threads) { _, range in
            let (m, only, blocked, includeSeen, userTexts, history, queryVector) = context.value
            let (users, outIds, outScores, outShares, outFlags) = out.value
            guard let ranker = try? RequestRanker(model: m, modulation: modulation) else {
                scratchError.withLock { $0 = .outOfMemory("cannot allocate recommend scratch buffers") }
                return
            }
            for u in range {
                let uidx = m.users.index(of: users[u])
                let profile = userTexts[users[u]]?.vector ?? []
                profile.withUnsafeBufferPointer { profile in queryVector.withUnsafeBufferPointer { query in
                    let request = AgentRequest(user: uidx, history: history, profile: profile.isEmpty ? nil : profile,
                                               query: query.isEmpty ? nil : query)
                    let seen = (uidx.map { m.seen.row(Int($0)).cols }).flatMap { includeSeen ? nil : $0 }
                    let result = ranker.rank(request, k: k, only: only, seen: seen, maskHistory: !includeSeen, blocked: blocked,
                                             diversity: diversity)
                    let nA = m.agents.count
                    for slot in 0..<k {
                        let o = u * k + slot
                        if slot < result.count {
                            outIds[o] = m.items.ids[Int(result[slot].item)]
                            outScores[o] = result[slot].score
                            if let outShares { ranker.shares(of: slot, into: outShares + o * nA) }
                        } else {
                            outIds[o] = -1
                            outScores[o] = -.infinity
                            if let outShares { for a in 0..<nA { outShares[o * nA + a] = 0 } }
                        }
                    }
                } }
                outFlags?[u] = uidx == nil ? 1 : 0
            }
        }
        if let e = scratchError.withLock({ $0 }) { throw e }
    }
}

/// Ranks one request at a time with per-worker scratch: every agent that takes part scores the
/// catalogue (normalised, seen and blocked items masked), proposes its best items, and the
/// coordinator ranks the union (`Candidates`).
final class RequestRanker {
    let m: FittedModel
    let scratch: FloatMatrix
    let ranks: UnsafeMutablePointer<Int32>
    var candidates = Candidates.Set()
    /// The last request's agents, their linear weights (renormalised), and its ranked slots
    /// (candidate index per output slot).
    var weights: [Float]
    var participating: [Bool]
    var order: [Int] = []
    var single: Int? = nil
    var usesNetwork = false
    /// With a query: each candidate's query score, and its normalised personal score.
    var queryShare: [Float] = []
    var personalScore: [Float] = []
    var queryIndex: Int? = nil
    var personalLo: Float = 0, personalSpan: Float = 0
    /// The last request's final score per candidate.
    var finalScores: [Float] = []

    /// The ranking network's scenario modulation for this ranker's requests.
    let modulation: [Float]

    init(model: FittedModel, modulation: [Float] = []) throws(ChorusError) {
        m = model
        self.modulation = modulation.isEmpty ? (model.ranker?.modulation(scenario: 0, description: []) ?? []) : modulation
        scratch = try FloatMatrix(rows: model.agents.count, cols: model.itemCount, zeroed: false)
        ranks = .allocate(capacity: model.itemCount)
        ranks.initialize(repeating: -1, count: model.itemCount)
        weights = [Float](repeating: 0, count: model.agents.count)
        participating = [Bool](repeating: false, count: model.agents.count)
    }

    deinit { ranks.deallocate() }

    /// The top `k` (item index, score) of a request; `only` = one agent alone (its raw scores).
    /// `diversity` > 0 re-ranks the coordinator's candidates by maximal marginal relevance.
    func rank(_ request: AgentRequest, k: Int, only: Int?, seen: ArraySlice<Int32>?, maskHistory: Bool, blocked: [Bool]?,
              diversity: Float) -> [(item: Int32, score: Float)] {
        let n = m.itemCount, nA = m.agents.count
        func mask(_ row: UnsafeMutableBufferPointer<Float>) {
            if let seen { for i in seen { row[Int(i)] = -.infinity } }
            if maskHistory { for i in request.history where i >= 0 && Int(i) < n { row[Int(i)] = -.infinity } }
            if let blocked { for i in 0..<n where blocked[i] { row[i] = -.infinity } }
        }
        order.removeAll(keepingCapacity: true)
        queryShare.removeAll(keepingCapacity: true)
        for a in 0..<nA { participating[a] = false; weights[a] = 0 }
        // One agent alone (asked for, or popularity when it cannot score the request): its own ranking.
        if let only {
            let a = m.agents[only].canScore(request) ? only : m.popularityIndex
            single = a
            let row = UnsafeMutableBufferPointer(start: scratch.row(a), count: n)
            m.agents[a].score(request, into: row)
            mask(row)
            return TopK.select(UnsafeBufferPointer(row), k: k).map { (item: $0.index, score: $0.score) }
        }
        single = nil
        // Every agent that can score the request proposes and is scored, as on the validation users
        // the coordinator was fitted on (agents with a zero linear weight still propose).
        var used: [Int] = (0..<nA).filter { m.agents[$0].canScore(request) }
        if used.isEmpty { used = [m.popularityIndex] }
        let query = used.first { m.agents[$0].name == "query" }
        let personal = used.filter { $0 != query }
        let total = personal.reduce(Float(0)) { $0 + m.weights[$1] }
        for a in used { participating[a] = true }
        for a in personal { weights[a] = total > 0 ? m.weights[a] / total : 1 / Float(personal.count) }
        var rows = [UnsafeMutablePointer<Float>?](repeating: nil, count: nA)
        for a in used {
            let row = UnsafeMutableBufferPointer(start: scratch.row(a), count: n)
            m.agents[a].score(request, into: row)
            Coordinator.normalize(row)
            mask(row)
            rows[a] = row.baseAddress
        }
        let history = (request.user.map { m.seen.row(Int($0)).cols.count } ?? 0) + request.history.count
        m.itemWarmth.withUnsafeBufferPointer { warmth in
            Candidates.build(rows: rows, itemCount: n, quota: max(m.candidatesPerAgent, k),
                             activity: Candidates.activity(historyLength: history), warmth: warmth.baseAddress!,
                             rankScratch: ranks, into: &candidates)
        }
        // The network ranks users the model knows; the linear blend everyone else. A query's
        // features are taken out first (the coordinator never saw any) and mixed back by weight.
        usesNetwork = request.user != nil && m.ranker != nil
        let f = m.layout.count, c = candidates.items.count
        var scores = [Float](repeating: 0, count: c)
        candidates.features.withUnsafeMutableBufferPointer { feats in
            for j in 0..<c {
                let x = feats.baseAddress! + j * f
                if let query {
                    queryShare.append(x[m.layout.score(query)])
                    x[m.layout.score(query)] = 0; x[m.layout.rank(query)] = 0
                }
                scores[j] = usesNetwork ? m.ranker!.score(x, modulation: modulation) : Coordinator.linear(weights, x)
            }
        }
        queryIndex = query
        if query != nil {
            var lo = Float.infinity, hi = -Float.infinity
            for v in scores { lo = min(lo, v); hi = max(hi, v) }
            personalLo = lo; personalSpan = hi > lo ? hi - lo : 0
            for j in 0..<c { scores[j] = personalSpan > 0 ? (scores[j] - lo) / personalSpan : 0 }
            personalScore = scores
            for j in 0..<c { scores[j] = (1 - m.queryWeight) * scores[j] + m.queryWeight * queryShare[j] }
        }
        finalScores = scores
        if diversity > 0, let vectors = m.diversityVectors {
            order = Diversity.mmr(scores: scores, items: candidates.items, vectors: vectors, k: k, lambda: min(1, diversity))
        } else {
            order = scores.withUnsafeBufferPointer { TopK.select($0, k: k) }.map { Int($0.index) }
        }
        return order.map { (item: candidates.items[$0], score: scores[$0]) }
    }

    /// The final score of candidate `c` of the last `rank`, scoring it (as `rank` does) when it was
    /// appended afterwards.
    func rescore(candidate c: Int) -> Float {
        if c < finalScores.count { return finalScores[c] }
        let f = m.layout.count
        var qs: Float = 0
        if let q = queryIndex {
            qs = candidates.features[c * f + m.layout.score(q)]
            candidates.features[c * f + m.layout.score(q)] = 0
            candidates.features[c * f + m.layout.rank(q)] = 0
            queryShare.append(qs)
        }
        let raw = candidates.features.withUnsafeBufferPointer { feats in
            let x = feats.baseAddress! + c * f
            return usesNetwork ? m.ranker!.score(x, modulation: modulation) : Coordinator.linear(weights, x)
        }
        guard queryIndex != nil else { finalScores.append(raw); return raw }
        let p = personalSpan > 0 ? (raw - personalLo) / personalSpan : 0
        personalScore.append(p)
        let final = (1 - m.queryWeight) * p + m.queryWeight * qs
        finalScores.append(final)
        return final
    }

    /// Each agent's share of the score of output slot `slot` of the last `rank`, into `out`
    /// (agent count entries, summing to 1). Linear blend: w_a s_a / Σ_b w_b s_b. Network: how much
    /// the score drops when the agent's features are removed (occlusion), positive parts
    /// normalised; when no agent's removal lowers the score, the linear shares.
    func shares(of slot: Int, into out: UnsafeMutablePointer<Float>) {
        let nA = m.agents.count
        for a in 0..<nA { out[a] = 0 }
        if let single { out[single] = 1; return }
        let f = m.layout.count
        let c = order[slot]
        defer {
            // With a query: personal shares scaled by the personal part of the final score.
            if let q = (0..<nA).first(where: { participating[$0] && m.agents[$0].name == "query" }), c < queryShare.count {
                let personalPart = (1 - m.queryWeight) * personalScore[c], queryPart = m.queryWeight * queryShare[c]
                let final = personalPart + queryPart
                if final > 0 {
                    for a in 0..<nA where a != q { out[a] *= personalPart / final }
                    out[q] = queryPart / final
                } else {
                    for a in 0..<nA where a != q { out[a] *= 1 - m.queryWeight }
                    out[q] = m.queryWeight
                }
            }
        }
        candidates.features.withUnsafeBufferPointer { feats in
            let x = feats.baseAddress! + c * f
            if usesNetwork, let net = m.ranker {
                var copy = Array(UnsafeBufferPointer(start: x, count: f))
                let full = net.score(x, modulation: modulation)
                var sum: Float = 0
                for a in 0..<nA where participating[a] {
                    let (s, r) = (copy[m.layout.score(a)], copy[m.layout.rank(a)])
                    copy[m.layout.score(a)] = 0; copy[m.layout.rank(a)] = 0
                    let drop = max(0, full - copy.withUnsafeBufferPointer { net.score($0.baseAddress!, modulation: modulation) })
                    copy[m.layout.score(a)] = s; copy[m.layout.rank(a)] = r
                    out[a] = drop; sum += drop
                }
                if sum > 0 { for a in 0..<nA { out[a] /= sum }; return }
                for a in 0..<nA { out[a] = 0 }
            }
            var total: Float = 0
            for a in 0..<nA where participating[a] { total += weights[a] * x[m.layout.score(a)] }
            for a in 0..<nA where participating[a] { out[a] = total > 0 ? weights[a] * x[m.layout.score(a)] / total : weights[a] }
            if total <= 0 {
                let sum = (0..<nA).reduce(Float(0)) { $0 + out[$1] }
                if sum > 0 { for a in 0..<nA { out[a] /= sum } }
            }
        }
    }
}
