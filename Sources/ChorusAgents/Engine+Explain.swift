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

extension Engine {
    /// Explains `item` for `user` under `options` (its query and history count; `agent` and
    /// `diversity` do not).
    /// - Throws: `.notFitted`; `.notFound` for an item the model does not know.
    public func explain(user: Int64, item: Int64, options: RecommendOptions = RecommendOptions()) throws(ChorusError) -> Explanation {
        let (m, texts) = try publishedModelAndTexts()
        guard let target = m.items.index(of: item) else { throw .notFound("item \(item) is not in the fitted model") }
        let uidx = m.users.index(of: user)
        let history = options.history.compactMap { m.items.index(of: $0) }
        let queryVector = try encodeQuery(options.query, model: m, texts: texts)
        let profile = texts.users[user]?.vector ?? []
        let ranker = try RequestRanker(model: m, modulation: try scenarioModulation(options.scenario, model: m))
        let (score, shares): (Float, [Float]) = profile.withUnsafeBufferPointer { pb in
            queryVector.withUnsafeBufferPointer { qb in
                let request = AgentRequest(user: uidx, history: history, profile: pb.isEmpty ? nil : pb, query: qb.isEmpty ? nil : qb)
                return ranker.explain(request, item: target)
            }
        }
        // The most similar item of the user's history (training items, then the request's).
        var because: (item: Int32, similarity: Float)? = nil
        if let vectors = m.diversityVectors {
            var mine: [Int32] = uidx.map { Array(m.seen.row(Int($0)).cols) } ?? []
            mine += history
            for j in mine where j != target {
                let s = Kernels.dot(vectors.row(Int(j)), vectors.row(Int(target)), vectors.cols)
                if s > (because?.similarity ?? 0) { because = (j, s) }
            }
        }
        var matched: [String] = []
        if let q = options.query, let text = texts.items[item]?.text {
            let words = Set(Self.words(text))
            for w in Self.words(q) where words.contains(w) && !Self.stopWords.contains(w) && !matched.contains(w) { matched.append(w) }
        }
        let names = m.agents.map(\.name)
        // Each agent's reason, asked with the whole history in the request (training items first).
        var allHistory: [Int32] = uidx.map { Array(m.seen.row(Int($0)).cols) } ?? []
        allHistory += history
        let reasonsRaw: [AgentReason?] = profile.withUnsafeBufferPointer { pb in
            queryVector.withUnsafeBufferPointer { qb in
                let r = AgentRequest(user: nil, history: allHistory, profile: pb.isEmpty ? nil : pb, query: qb.isEmpty ? nil : qb)
                return m.agents.indices.map { shares[$0] > 0 ? m.agents[$0].reason(r, item: target) : nil }
            }
        }
        func label(_ id: Int64) -> String {
            guard let text = texts.items[id]?.text else { return "item \(id)" }
            let cut = text.split(separator: ".", maxSplits: 1).first.map(String.init) ?? text
            return "\"\(cut.count > 60 ? String(cut.prefix(57)) + "..." : cut)\""
        }
        var parts: [String] = []
        let ranked = shares.indices.filter { shares[$0] >= 0.05 }.sorted { shares[$0] > shares[$1] }
        let agentsText = ranked.prefix(3).map { "\(names[$0]) (\(Int((shares[$0] * 100).rounded()))%)" }.joined(separator: ", ")
        parts.append("\(label(item)) is recommended" + (agentsText.isEmpty ? "" : " by " + agentsText))
        func phrase(_ r: AgentReason) -> String {
            guard let j = r.becauseItem else { return r.phrase }
            return r.phrase.replacingFirst("%@", with: label(m.items.ids[Int(j)]))
        }
        // The leading agents' own reasons (at most two), then the most similar history item.
        let told = ranked.compactMap { reasonsRaw[$0] }.prefix(2)
        for r in told { parts.append(phrase(r)) }
        if told.isEmpty, let b = because { parts.append("it is similar to \(label(m.items.ids[Int(b.item)])), which you interacted with") }
        if !matched.isEmpty { parts.append("it matches your request for " + matched.map { "\"\($0)\"" }.joined(separator: ", ")) }
        return Explanation(item: item, score: score, shares: shares, agents: names, becauseItem: because.map { m.items.ids[Int($0.item)] },
                           becauseSimilarity: because?.similarity ?? 0, matchedTerms: matched,
                           reasons: reasonsRaw.map { $0.map(phrase) ?? "" },
                           reasonItems: reasonsRaw.map { $0?.becauseItem.map { m.items.ids[Int($0)] } },
                           sentence: parts.joined(separator: "; ") + ".")
    }

    /// A request's query as an encoder vector (empty for no query).
    func encodeQuery(_ query: String?, model m: FittedModel, texts: TextCatalogue) throws(ChorusError) -> [Float] {
        guard let q = query, !q.isEmpty else { return [] }
        guard m.agents.contains(where: { $0.name == "query" }) else {
            throw .invalidArgument("a query needs item texts: set them with set_item_texts and fit again")
        }
        let enc = try encoder().encoder
        guard enc.name == texts.encoderName || texts.encoderName.isEmpty else {
            throw .invalidArgument("the item texts were encoded by '\(texts.encoderName)', but the encoder now loaded is '\(enc.name)': a query cannot be compared with them")
        }
        return try enc.encode([q], threads: 1)
    }

    /// Lower-cased runs of letters and digits.
    static func words(_ text: String) -> [String] {
        var out: [String] = [], current = ""
        for ch in text.lowercased() {
            if ch.isLetter || ch.isNumber { current.append(ch) } else if !current.isEmpty { out.append(current); current = "" }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// English function words that never count as a match.
    static let stopWords: Set<String> = [
        "a", "an", "the", "and", "or", "of", "for", "to", "in", "on", "with", "at", "by", "from", "is", "it", "i",
        "me", "my", "we", "you", "your", "that", "this", "some", "something", "want", "like", "about", "as", "be",
    ]
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

extension String {
    /// `self` with the first occurrence of `target` replaced (Foundation-free).
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let r = range(of: target) else { return self }
        return self[..<r.lowerBound] + replacement + self[r.upperBound...]
    }

    /// The range of the first occurrence of `target`, comparing Unicode scalars.
    func range(of target: String) -> Range<String.Index>? {
        guard !target.isEmpty else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(target) { return i..<index(i, offsetBy: target.count) }
            i = index(after: i)
        }
        return nil
    }
}
