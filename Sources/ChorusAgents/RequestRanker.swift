import ChorusCore

/// Ranks one request at a time with per-worker scratch: every agent that takes part scores the
/// catalogue (normalised, seen and blocked items masked), proposes its best items, and the
/// coordinator ranks the union (`Candidates`).
final class RequestRanker {
    let m: FittedModel
    /// Per-request buffers, from the model's pool and back to it when the ranker goes.
    private let buffers: RankerScratch
    var scratch: FloatMatrix { buffers.scores }
    var ranks: UnsafeMutablePointer<Int32> { buffers.ranks }
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
    /// With a learning coordinator: the last request's learner features (`SegmentModel`: one row of
    /// `learnedDimension` floats per candidate) and its ranking.
    var learnedZ: [Float] = []
    var learnedDimension = 0
    var learned: LearnedRanking? = nil
    /// The sampling stream of the learner's next request (Thompson, policy): serving seeds it per
    /// request (`ServingSnapshot`), so a logged request's slate follows from its id.
    var random = SeededRandom(seed: 0)
    /// Per agent, the next request's raw scores of the model's items when a batch computed them
    /// (`Serving`'s batch path); nil entries are scored by `rank` itself. Read by the next `rank`,
    /// then cleared.
    var prescored: [UnsafeMutablePointer<Float>?]

    /// The ranking network's scenario modulation for this ranker's requests.
    let modulation: [Float]

    /// The coordinator's network and query weight, read once per ranker (not per candidate).
    let network: RankingMLP?
    let queryWeight: Float

    /// The catalogue served: the model's items, then `extraItems` new ones (`OnlineState.NewItems`).
    let itemCount: Int
    /// Some agent proposes from a serving index (`FactorAgent.servingIndex`: a large catalogue).
    let servesFromIndexes: Bool

    init(model: FittedModel, modulation: [Float] = [], extraItems: Int = 0) throws(ChorusError) {
        m = model
        itemCount = model.itemCount + extraItems
        servesFromIndexes = model.agents.contains { ($0 as? FactorAgent)?.servingIndex != nil }
        network = model.coordinator.ranker
        queryWeight = model.coordinator.queryWeight
        self.modulation = modulation.isEmpty ? (model.coordinator.ranker?.modulation(scenario: 0, description: []) ?? []) : modulation
        buffers = try model.scratchPool.take(agents: model.agents.count, itemCount: itemCount)
        weights = [Float](repeating: 0, count: model.agents.count)
        participating = [Bool](repeating: false, count: model.agents.count)
        prescored = [UnsafeMutablePointer<Float>?](repeating: nil, count: model.agents.count)
    }

    deinit { m.scratchPool.give(buffers) }

    /// The top `k` (item index, score) of a request; `only` = one agent alone (its raw scores).
    /// `diversity` > 0 re-ranks the coordinator's candidates by maximal marginal relevance.
    /// `online`: the user's overlay (`OnlineState.UserView`): consumed items masked like seen ones,
    /// dismissed items masked, skipped ones demoted.
    /// `newItemScores`: the new items' scores by agent name (the agents that know them); the others
    /// give them their row's minimum. `warmth`: `itemCount` warmths (nil: the model's).
    func rank(_ request: AgentRequest, k: Int, only: Int?, seen: ArraySlice<Int32>?, maskHistory: Bool, blocked: [Bool]?,
              diversity: Float, online: OnlineState.UserView? = nil, newItemScores: [String: [Float]] = [:],
              warmth: UnsafePointer<Float>? = nil, learning: LearnedRanking? = nil) -> [(item: Int32, score: Float)] {
        let n = itemCount, nA = m.agents.count, nModel = m.itemCount
        let prescored = self.prescored
        defer { for a in 0..<nA { self.prescored[a] = nil } }
        /// Agent `a`'s raw scores of the whole catalogue served: the model's items (from the batch's
        /// rows when it computed them), then the new items (`extend`).
        func score(_ a: Int, _ row: UnsafeMutableBufferPointer<Float>) {
            if let p = prescored[a] { row.baseAddress!.update(from: p, count: nModel) } else { m.agents[a].score(request, into: row) }
            extend(a, row)
        }
        func extend(_ a: Int, _ row: UnsafeMutableBufferPointer<Float>) {
            guard n > nModel else { return }
            // The agent's scores of the new items where it has them (NaN: it has none for that item),
            // else its row's minimum: they rank last for it.
            var lo = Float.infinity
            for i in 0..<nModel where row[i].isFinite { lo = min(lo, row[i]) }
            if !lo.isFinite { lo = 0 }
            if let s = newItemScores[m.agents[a].name], s.count == n - nModel {
                for k in 0..<s.count { row[nModel + k] = s[k].isNaN ? lo : s[k] }
            } else {
                for i in nModel..<n { row[i] = lo }
            }
        }
        func mask(_ row: UnsafeMutableBufferPointer<Float>) {
            if let seen { for i in seen { row[Int(i)] = -.infinity } }
            if maskHistory { for i in request.history where i >= 0 && Int(i) < n { row[Int(i)] = -.infinity } }
            if let blocked { for i in 0..<n where blocked[i] { row[i] = -.infinity } }
            if let online {
                if maskHistory { for i in online.consumed where i >= 0 && Int(i) < n { row[Int(i)] = -.infinity } }
                for i in online.excluded where i >= 0 && Int(i) < n { row[Int(i)] = -.infinity }
                for d in online.demoted where d.item >= 0 && Int(d.item) < n && row[Int(d.item)].isFinite {
                    let s = row[Int(d.item)]
                    row[Int(d.item)] = s >= 0 ? s * d.factor : s / d.factor
                }
            }
        }
        // Agents with a serving index (a large catalogue) propose from it; `mask` then applies item
        // by item (`maskValue`: the same rules on one normalised score).
        var indexed: ((Int) -> IndexedProposals?)? = nil
        var maskValue: ((Int32, Float) -> Float)? = nil
        if servesFromIndexes && only == nil {
            var excluded = Swift.Set<Int32>()
            if let seen { excluded.formUnion(seen) }
            if maskHistory { excluded.formUnion(request.history) }
            var factors: [Int32: Float] = [:]
            if let online {
                if maskHistory { excluded.formUnion(online.consumed) }
                excluded.formUnion(online.excluded)
                for d in online.demoted { factors[d.item, default: 1] *= d.factor }
            }
            maskValue = { item, s in
                guard item >= 0, Int(item) < n, !excluded.contains(item), blocked.map({ !$0[Int(item)] }) ?? true else { return -.infinity }
                guard let f = factors[item], s.isFinite else { return s }
                return s >= 0 ? s * f : s / f
            }
            let want = max(m.coordinator.candidatesPerAgent, k) + excluded.count
            indexed = { a in
                guard var p = self.m.agents[a].indexedProposals(request, k: want) else { return nil }
                // Online new items (past the model's): the agent's score of them where it has one, else its lowest.
                let modelScore = p.score, lo = p.lo, extra = newItemScores[self.m.agents[a].name]
                p.score = { item in
                    if Int(item) < nModel { return modelScore(item) }
                    guard let extra, Int(item) - nModel < extra.count, !extra[Int(item) - nModel].isNaN else { return lo }
                    return extra[Int(item) - nModel]
                }
                return p
            }
        }
        order.removeAll(keepingCapacity: true)
        queryShare.removeAll(keepingCapacity: true)
        for a in 0..<nA { participating[a] = false; weights[a] = 0 }
        // One agent alone (asked for, or popularity when it cannot score the request): its own ranking.
        if let only {
            let a = m.agents[only].canScore(request) ? only : m.fallbackIndex
            single = a
            let row = UnsafeMutableBufferPointer(start: scratch.row(a), count: n)
            score(a, row)
            mask(row)
            return TopK.select(UnsafeBufferPointer(row), k: k).map { (item: $0.index, score: $0.score) }
        }
        single = nil
        // Every agent that can score the request proposes and is scored, as on the validation users
        // the coordinator was fitted on (agents with a zero linear weight still propose).
        let history = (request.user.map { m.seen.row(Int($0)).cols.count } ?? 0) + max(request.history.count, online?.consumed.count ?? 0)
        let used = m.itemWarmth.withUnsafeBufferPointer { modelWarmth in
            Candidates.collect(agents: m.agents, request: request, fallback: m.fallbackIndex, itemCount: n,
                               quota: max(m.coordinator.candidatesPerAgent, k), activity: Candidates.activity(historyLength: history),
                               warmth: n > nModel ? warmth! : modelWarmth.baseAddress!, scratch: scratch, rankScratch: ranks,
                               score: score, mask: mask, indexed: indexed, maskValue: maskValue, into: &candidates)
        }
        let query = used.first { $0 == m.queryIndex }
        let personal = used.filter { $0 != query }
        // A cold request (a session, a profile text) has its own mix when the fit found one on validation.
        let blend = ColdRequest.of(request).flatMap { m.coordinator.coldWeights[$0] } ?? m.coordinator.weights
        let total = personal.reduce(Float(0)) { $0 + blend[$1] }
        for a in used { participating[a] = true }
        for a in personal { weights[a] = total > 0 ? blend[a] / total : 1 / Float(personal.count) }
        // The network ranks users the model knows; the linear blend everyone else. A query's
        // features are taken out first (the coordinator never saw any) and mixed back by weight.
        usesNetwork = request.user != nil && network != nil
        let f = m.layout.count, c = candidates.items.count
        var scores = [Float](repeating: 0, count: c)
        let net = usesNetwork ? network : nil
        candidates.features.withUnsafeMutableBufferPointer { feats in
            for j in 0..<c {
                let x = feats.baseAddress! + j * f
                if let query {
                    queryShare.append(x[m.layout.score(query)])
                    x[m.layout.score(query)] = 0; x[m.layout.rank(query)] = 0
                }
                scores[j] = net?.score(x, modulation: modulation) ?? Coordinator.linear(weights, x)
            }
        }
        queryIndex = query
        if query != nil {
            var lo = Float.infinity, hi = -Float.infinity
            for v in scores { lo = min(lo, v); hi = max(hi, v) }
            personalLo = lo; personalSpan = hi > lo ? hi - lo : 0
            for j in 0..<c { scores[j] = personalSpan > 0 ? (scores[j] - lo) / personalSpan : 0 }
            personalScore = scores
            for j in 0..<c { scores[j] = (1 - queryWeight) * scores[j] + queryWeight * queryShare[j] }
        }
        finalScores = scores
        learned = learning
        learnedZ.removeAll(keepingCapacity: true)
        // The learning coordinator decides on the coordinator's score and the candidates' features;
        // its decision score (what the slate is the top of) is the score reported, so rows stay sorted.
        var decision = scores
        if let learning, c > 0, learning.model.dimension == m.layout.count + 2 {
            learnedDimension = learning.model.dimension
            learnedZ = learnedFeatures(scores: scores, count: c, dimension: learnedDimension)
            learnedZ.withUnsafeBufferPointer { z in decision = learning.decide(z.baseAddress!, count: c, random: &random) }
        }
        if diversity > 0, let vectors = m.similarityVectors {
            order = Diversity.mmr(scores: decision, items: candidates.items, vectors: vectors, k: k, lambda: min(1, diversity))
        } else {
            order = decision.withUnsafeBufferPointer { TopK.select($0, k: k) }.map { Int($0.index) }
        }
        return order.map { (item: candidates.items[$0], score: decision[$0]) }
    }

    /// The learner's features of the last request's candidates: [the coordinator's score min-max
    /// normalised over them, the candidate's features, 1] (`SegmentModel`).
    private func learnedFeatures(scores: [Float], count c: Int, dimension d: Int) -> [Float] {
        let f = m.layout.count
        var lo = Float.infinity, hi = -Float.infinity
        for v in scores where v.isFinite { lo = min(lo, v); hi = max(hi, v) }
        let span = hi > lo ? hi - lo : 0
        var z = [Float](repeating: 0, count: c * d)
        candidates.features.withUnsafeBufferPointer { x in
            for j in 0..<c {
                z[j * d] = span > 0 && scores[j].isFinite ? (scores[j] - lo) / span : 0
                for i in 0..<f { z[j * d + 1 + i] = x[j * f + i] }
                z[j * d + d - 1] = 1
            }
        }
        return z
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
            return usesNetwork ? network!.score(x, modulation: modulation) : Coordinator.linear(weights, x)
        }
        guard queryIndex != nil else { finalScores.append(raw); return raw }
        let p = personalSpan > 0 ? (raw - personalLo) / personalSpan : 0
        personalScore.append(p)
        let final = (1 - queryWeight) * p + queryWeight * qs
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
            if let q = m.queryIndex, participating[q], c < queryShare.count {
                let personalPart = (1 - queryWeight) * personalScore[c], queryPart = queryWeight * queryShare[c]
                let final = personalPart + queryPart
                if final > 0 {
                    for a in 0..<nA where a != q { out[a] *= personalPart / final }
                    out[q] = queryPart / final
                } else {
                    for a in 0..<nA where a != q { out[a] *= 1 - queryWeight }
                    out[q] = queryWeight
                }
            }
        }
        candidates.features.withUnsafeBufferPointer { feats in
            let x = feats.baseAddress! + c * f
            if usesNetwork, let net = network {
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

/// A ranker's buffers: agents x items scores and the items' candidate slots (all -1 between uses).
final class RankerScratch: @unchecked Sendable {
    let scores: FloatMatrix
    let ranks: UnsafeMutablePointer<Int32>
    let agents: Int, itemCount: Int

    init(agents: Int, itemCount: Int) throws(ChorusError) {
        scores = try FloatMatrix(rows: agents, cols: itemCount, zeroed: false)
        ranks = .allocate(capacity: itemCount)
        ranks.initialize(repeating: -1, count: itemCount)
        self.agents = agents; self.itemCount = itemCount
    }

    deinit { ranks.deallocate() }
}

/// Rankers' buffers kept between calls, per model: at 1M items a ranker's are 24 MiB, and fresh
/// ones per call were faulted in page by page every time (the allocator returns pages that large
/// to the system as it decays them), a third of a request's time. At most two per CPU are kept.
final class RankerScratchPool: Sendable {
    private let spare = Lock<[RankerScratch]>([])

    func take(agents: Int, itemCount: Int) throws(ChorusError) -> RankerScratch {
        let kept = spare.withLock { pool -> RankerScratch? in
            guard let i = pool.lastIndex(where: { $0.agents == agents && $0.itemCount == itemCount }) else { return nil }
            return pool.remove(at: i)
        }
        if let kept { return kept }
        return try RankerScratch(agents: agents, itemCount: itemCount)
    }

    func give(_ buffers: RankerScratch) {
        spare.withLock { pool in
            // Buffers for another catalogue size (online new items came) make room for this one.
            if pool.count >= 2 * Parallel.cpuCount { pool.removeFirst() }
            pool.append(buffers)
        }
    }
}
