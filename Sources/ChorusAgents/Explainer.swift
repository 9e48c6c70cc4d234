import ChorusCore

/// Why an item is recommended to a user, as data and as a sentence.
public struct Explanation: Sendable, Equatable {
    public var item: Int64
    /// The item's score for the request (as recommend reports it).
    public var score: Float
    /// Each agent's share of the score (agent order as `Engine.agentNames`), summing to 1.
    public var shares: [Float]
    /// The agents of the model that explained, in the order of `shares` and `reasons`.
    public var agents: [String]
    /// The item of the user's history most similar to this one (cosine of item vectors), if any.
    public var becauseItem: Int64?
    public var becauseSimilarity: Float
    /// Words of the request's query that the item's text contains, in query order.
    public var matchedTerms: [String]
    /// Each agent's own reason, where it gives one (agent order as `shares`; "" when none), with
    /// the item of the user's history it rests on (nil when none).
    public var reasons: [String]
    public var reasonItems: [Int64?]
    /// The explanation in one sentence.
    public var sentence: String
}

/// Explains a recommendation from one serving snapshot: each agent's share of the score (computed
/// as `recommend` computes it), each agent's own reason, the most similar item of the user's
/// history and the query words the item's text contains. The words of the sentence are built by
/// `ExplanationSentence`.
struct Explainer {
    let snapshot: ServingSnapshot

    /// Explains `item` for `user` under `options` (its query, history and scenario count; `agent`
    /// and `diversity` do not).
    /// - Throws: `.notFound` for an item the model does not know or an unknown scenario.
    func explain(user: Int64, item: Int64, options: RecommendOptions) throws(ChorusError) -> Explanation {
        let m = snapshot.model, texts = snapshot.texts
        guard let target = m.items.index(of: item) else { throw .notFound("item \(item) is not in the fitted model") }
        let uidx = m.users.index(of: user)
        let overlay = snapshot.onlineUser(user)
        let history = (overlay?.recent ?? []) + options.history.compactMap { m.items.index(of: $0) }
        let queryVector = try snapshot.encodeQuery(options.query)
        let profile = texts.users[user]?.vector ?? []
        let ranker = try RequestRanker(model: m, modulation: try snapshot.scenarioModulation(options.scenario))
        let (score, shares): (Float, [Float]) = profile.withUnsafeBufferPointer { pb in
            queryVector.withUnsafeBufferPointer { qb in
                var request = AgentRequest(user: uidx, history: history, profile: pb.isEmpty ? nil : pb, query: qb.isEmpty ? nil : qb)
                request.folded = overlay?.folded ?? [:]
                request.popularity = snapshot.onlinePopularity
                let pairs = snapshot.onlinePairs(sequence: [], items: [], history: history).model
                request.transitions = pairs.isEmpty ? nil : pairs
                return ranker.explain(request, item: target)
            }
        }
        // The most similar item of the user's history (training items, then the request's).
        var because: (item: Int32, similarity: Float)? = nil
        if let vectors = m.similarityVectors {
            var mine: [Int32] = uidx.map { Array(m.seen.row(Int($0)).cols) } ?? []
            mine += history
            for j in mine where j != target {
                let s = Kernels.dot(vectors.row(Int(j)), vectors.row(Int(target)), vectors.cols)
                if s > (because?.similarity ?? 0) { because = (j, s) }
            }
        }
        let matched = options.query.map { ExplanationSentence.matchedTerms(query: $0, text: texts.items[item]?.text ?? "") } ?? []
        // Each agent's reason, asked with the whole history in the request (training items first).
        var allHistory: [Int32] = uidx.map { Array(m.seen.row(Int($0)).cols) } ?? []
        allHistory += history
        let reasons: [AgentReason?] = profile.withUnsafeBufferPointer { pb in
            queryVector.withUnsafeBufferPointer { qb in
                let r = AgentRequest(user: nil, history: allHistory, profile: pb.isEmpty ? nil : pb, query: qb.isEmpty ? nil : qb)
                return m.agents.indices.map { shares[$0] > 0 ? m.agents[$0].reason(r, item: target) : nil }
            }
        }
        let sentence = ExplanationSentence(agents: m.agentNames, label: { id in texts.items[id]?.text }, itemId: { m.items.ids[Int($0)] })
        return Explanation(item: item, score: score, shares: shares, agents: m.agentNames,
                           becauseItem: because.map { m.items.ids[Int($0.item)] },
                           becauseSimilarity: because?.similarity ?? 0, matchedTerms: matched,
                           reasons: reasons.map { $0.map(sentence.phrase) ?? "" },
                           reasonItems: reasons.map { $0?.becauseItem.map { m.items.ids[Int($0)] } },
                           sentence: sentence.sentence(item: item, shares: shares, reasons: reasons,
                                                       because: because.map { m.items.ids[Int($0.item)] }, matched: matched))
    }
}

extension RequestRanker {
    /// The score and agent shares `item` gets for `request`, computed as `rank` computes them (the
    /// item joins the candidates if no agent proposed it; nothing is masked).
    func explain(_ request: AgentRequest, item: Int32) -> (Float, [Float]) {
        _ = rank(request, k: 1, only: nil, seen: nil, maskHistory: false, blocked: nil, diversity: 0)
        var slot = candidates.items.firstIndex(of: item)
        if slot == nil {
            // Not proposed: its features from the agents' rows (still in scratch), no rank signal.
            let f = m.layout.count
            var row = [Float](repeating: 0, count: f)
            for a in 0..<m.agents.count where participating[a] {
                let s = scratch.row(a)[Int(item)]
                row[m.layout.score(a)] = s.isFinite ? s : 0
            }
            row[m.layout.activity] = candidates.features.count >= f ? candidates.features[m.layout.activity] : 0
            row[m.layout.warmth] = m.itemWarmth[Int(item)]
            candidates.items.append(item)
            candidates.features += row
            slot = candidates.items.count - 1
        }
        let c = slot!
        let score = rescore(candidate: c)
        order = [c]
        var shares = [Float](repeating: 0, count: m.agents.count)
        shares.withUnsafeMutableBufferPointer { self.shares(of: 0, into: $0.baseAddress!) }
        return (score, shares)
    }
}
