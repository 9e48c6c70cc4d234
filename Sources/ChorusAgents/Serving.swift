#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore
import ChorusText
import Synchronization

/// One consistent view of what a request reads: the published model, the texts, the scenarios and
/// the encoder, taken together under one acquisition of the engine's lock (`Engine.serving`).
/// Immutable values and shared immutable objects only: a request ranks from it with no lock held,
/// while fits, feedback and new data go on.
struct ServingSnapshot: Sendable {
    let model: FittedModel
    /// The publication this model came from (the engine counts them; the online state follows it).
    let generation: UInt64
    let texts: TextCatalogue
    let scenarios: ScenarioTable
    /// The sentence encoder when loaded (a request with a query loads it before taking the snapshot).
    let encoder: TextEncoders.Choice?
    /// The online overlay (`OnlineState.view`), taken right after the rest.
    var online: OnlineState.View = .empty
    /// The learning coordinator (nil: the fitted coordinator alone).
    var learner: CoordinatorLearner? = nil
    /// The overlay's owner, for the fold-ins a request computes (`onlineUser`).
    var onlineState: OnlineState? = nil

    /// A user's online overlay against this snapshot's model (fold-ins only when computed for it),
    /// the fold-in computed now when it predates the user's latest events (`OnlineState.freshFold`).
    func onlineUser(_ user: Int64) -> OnlineState.UserView? {
        guard var v = online.user(user, model: model, generation: generation) else { return nil }
        if v.stale, let state = onlineState, let vectors = state.freshFold(user, generation: generation) { v.folded = vectors; v.stale = false }
        return v
    }
    /// The popularity scores with the online counts, when the overlay belongs to this model.
    var onlinePopularity: [Float]? { online.generation == generation ? online.popularity : nil }
    /// The rows of the online pair tables one request reads (`OnlineState.pairRows`), when the
    /// overlay belongs to this model: the new items' transitions from `sequence` and co-occurrences
    /// of `items` (ids), the model items' from `history` (model indices).
    func onlinePairs(sequence: [Int64], items: Set<Int64>, history: [Int32]) -> OnlineState.PairRows {
        guard online.generation == generation, let state = onlineState else { return OnlineState.PairRows() }
        return state.pairRows(generation: generation, sequence: sequence, items: items, history: history)
    }
    /// The items unknown to the model that received positive events since it (when the overlay
    /// belongs to this model): served after the model's items, at index `model.itemCount + k`.
    var newItems: OnlineState.NewItems { online.generation == generation ? online.newItems : OnlineState.NewItems() }
    /// The served catalogue: the model's items and the new ones.
    var catalogueCount: Int { model.itemCount + newItems.count }
    /// The id of a served item index.
    func itemId(_ i: Int32) -> Int64 { Int(i) < model.itemCount ? model.items.ids[Int(i)] : newItems.ids[Int(i) - model.itemCount] }
}

/// Serving: requests -> agents' scores -> candidates (`Candidates.collect`) -> the coordinator's
/// ranking (`RequestRanker`) -> top k; and item-to-item similarity.
extension ServingSnapshot {
    /// Recommends into caller buffers (the C ABI's path): `outIds`/`outScores` hold users.count * k
    /// entries; `outShares` (optional) at least users.count * k * agentCount; `outFlags` (optional)
    /// users.count.
    /// - Throws: `.notFitted`, `.invalidArgument` for k out of range, `.notFound` for an unknown
    ///   agent, `.bufferTooSmall` for a shares buffer too small for this model's agents.
    /// - Returns: the agents of the model that served the call, in share order (a concurrent fit
    ///   may publish a model with other agents: these are the ones the shares refer to).
    @discardableResult
    func recommend(users: UnsafeBufferPointer<Int64>, k: Int, options: RecommendOptions,
                   outIds: UnsafeMutablePointer<Int64>, outScores: UnsafeMutablePointer<Float>,
                   outShares sharesBuffer: UnsafeMutableBufferPointer<Float>?, outFlags: UnsafeMutablePointer<UInt32>?) throws(ChorusError) -> [String] {
        try rank(users: users, k: k, options: options, outIds: outIds, outScores: outScores, outShares: sharesBuffer, outFlags: outFlags)
        return model.agentNames
    }

    /// Swift-friendly recommend.
    func recommend(users: [Int64], k: Int, options: RecommendOptions) throws(ChorusError) -> [RecommendationList] {
        let nA = model.agents.count
        // k is checked before the buffers are sized from it.
        guard k >= 1, k <= catalogueCount else { throw .invalidArgument("k = \(k) is not in 1...\(catalogueCount) (the catalogue)") }
        var ids = [Int64](repeating: -1, count: users.count * k)
        var scores = [Float](repeating: 0, count: users.count * k)
        var shares = [Float](repeating: 0, count: users.count * k * nA)
        var flags = [UInt32](repeating: 0, count: users.count)
        try users.withUnsafeBufferPointer { (u) throws(ChorusError) in
            try ids.withUnsafeMutableBufferPointer { (i) throws(ChorusError) in
                try scores.withUnsafeMutableBufferPointer { (s) throws(ChorusError) in
                    try shares.withUnsafeMutableBufferPointer { (sh) throws(ChorusError) in
                        try flags.withUnsafeMutableBufferPointer { (f) throws(ChorusError) in
                            try rank(users: u, k: k, options: options, outIds: i.baseAddress!, outScores: s.baseAddress!,
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

    /// `inspect(u, ranker)`: called after user u is ranked, while the ranker holds that request's
    /// candidates (`CandidateExport`).
    func rank(users: UnsafeBufferPointer<Int64>, k: Int, options: RecommendOptions,
              outIds: UnsafeMutablePointer<Int64>, outScores: UnsafeMutablePointer<Float>,
              outShares sharesBuffer: UnsafeMutableBufferPointer<Float>?, outFlags: UnsafeMutablePointer<UInt32>?,
              inspect: ((Int, RequestRanker) -> Void)? = nil) throws(ChorusError) {
        let m = model
        let newItems = self.newItems
        let nItems = m.itemCount + newItems.count
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
        let queryVector = try encodeQuery(options.query)
        guard options.diversity.isFinite, options.diversity >= 0, options.diversity <= 1 else {
            throw .invalidArgument("diversity must be in [0, 1], got \(options.diversity)")
        }
        let diversity = options.diversity
        if let ids = options.requestIds {
            guard ids.count == users.count else { throw .invalidArgument("request_ids has \(ids.count) entries for \(users.count) users") }
            if let bad = ids.first(where: { $0 == -1 }) { throw .invalidArgument("request id \(bad) is reserved (no request)") }
        }
        let requestIds = options.requestIds
        let scenarioIndex = try scenarios.resolve(options.scenario)
        let learner = only == nil ? self.learner : nil
        let agentNames = m.agentNames
        let learningSeed = learner?.options.seed ?? 0
        let modulation = try scenarioModulation(options.scenario)
        // New items' warmth after the model's (log(1 + their online users) / 8).
        let warmth = newItems.count == 0 ? m.itemWarmth : m.itemWarmth + newItems.userCounts.map { Float(log1p(Double($0)) / 8) }
        let context = SendableBox((m, only, blockedItems(allow: options.allow, deny: options.deny, newItems: newItems), options.includeSeen, texts.users,
                                   history, queryVector, self))
        let out = SendableBox((users, outIds, outScores, sharesBuffer?.baseAddress, outFlags, inspect))
        let threads = users.count >= 64 ? Parallel.cpuCount : 1
        let scratchError = Lock<ChorusError?>(nil)
        Parallel.forEachChunk(count: users.count, threads: threads) { _, range in
            let (m, only, blocked, includeSeen, userTexts, history, queryVector, snapshot) = context.value
            let popularity = snapshot.onlinePopularity
            let (users, outIds, outScores, outShares, outFlags, inspect) = out.value
            guard let ranker = try? RequestRanker(model: m, modulation: modulation, extraItems: newItems.count) else {
                scratchError.withLock { $0 = .outOfMemory("cannot allocate recommend scratch buffers") }
                return
            }
            // Agents that score in batches (dot products with every item vector) score `batch` users
            // per pass over their item vectors, over the model's items; the ranker reads their rows
            // (`prescored`) and adds the new items' scores itself.
            let nModel = m.itemCount
            let batchable = m.agents.indices.filter { m.agents[$0].scoresInBatches && (only == nil || only == $0) }
            let batch = range.count > 1 && !batchable.isEmpty ? Self.batchSize(items: nModel, agents: batchable.count) : 1
            let buffer = batch > 1 ? try? FloatMatrix(rows: batch * batchable.count, cols: nModel, zeroed: false) : nil
            queryVector.withUnsafeBufferPointer { query in
                var start = range.lowerBound
                while start < range.upperBound {
                    let part = start..<min(range.upperBound, start + (buffer == nil ? 1 : batch))
                    start = part.upperBound
                    // The users' profile vectors, copied into one buffer the batch's requests point into.
                    let profiles = part.map { userTexts[users[$0]]?.vector ?? [] }
                    let uidx = part.map { m.users.index(of: users[$0]) }
                    // Online feedback since the model: the user's streamed items join the request's
                    // history (before it: the request's own items are the latest), their fold-ins.
                    let overlays = part.map { snapshot.onlineUser(users[$0]) }
                    let flat = Array(profiles.joined())
                    flat.withUnsafeBufferPointer { flat in
                        var requests: [AgentRequest] = []
                        // Per request: the user's latest online items (ids) and the host's history, the items
                        // item-kNN pairs the new items with (the latest online ones, as `OnlineState.pairLimit`
                        // counts them, and the host's), and the rows of the online pair tables it reads.
                        var online: [(sequence: [Int64], mine: Set<Int64>, pairs: OnlineState.PairRows)] = []
                        var offset = 0
                        for j in 0..<part.count {
                            let p = profiles[j].count
                            let profile = p == 0 ? nil : UnsafeBufferPointer(rebasing: flat[offset..<(offset + p)])
                            offset += p
                            var request = AgentRequest(user: uidx[j], history: (overlays[j]?.recent ?? []) + history, profile: profile,
                                                       query: query.isEmpty ? nil : query)
                            request.folded = overlays[j]?.folded ?? [:]
                            request.popularity = popularity
                            let sequence = (overlays[j]?.sequence ?? []) + options.history
                            var mine = Set<Int64>()
                            if newItems.count > 0 {
                                mine = Set((overlays[j]?.sequence ?? []).suffix(OnlineState.pairLimit))
                                mine.formUnion(options.history)
                            }
                            var pairs = OnlineState.PairRows()
                            if !request.history.isEmpty || !sequence.isEmpty {
                                pairs = snapshot.onlinePairs(sequence: newItems.count > 0 ? Array(sequence.suffix(20)) : [], items: mine,
                                                             history: request.history)
                            }
                            request.transitions = pairs.model.isEmpty ? nil : pairs.model
                            online.append((sequence, mine, pairs))
                            requests.append(request)
                        }
                        if let buffer, requests.count > 1 {
                            for (b, a) in batchable.enumerated() {
                                m.agents[a].scoreBatch(requests, into: requests.indices.map { buffer.row(b * batch + $0) }, itemCount: nModel)
                            }
                        }
                        for (j, u) in part.enumerated() {
                            let overlay = overlays[j], uid = uidx[j]
                            // The new items' scores for this user (popularity, session, item-kNN).
                            var newScores: [String: [Float]] = [:]
                            if newItems.count > 0 {
                                // The user's vector per factor agent (fold-in, else the model's row): the new items' dot products.
                                var vectors: [String: [Float]] = overlay?.folded ?? [:]
                                if let uid {
                                    for case let f as FactorAgent in m.agents where vectors[f.name] == nil && Int(uid) < f.userFactors.rows {
                                        vectors[f.name] = Array(UnsafeBufferPointer(start: f.userFactors.row(Int(uid)), count: f.userFactors.cols))
                                    }
                                }
                                newScores = snapshot.online.newItemScores(model: m, sequence: online[j].sequence, items: online[j].mine,
                                                                          pairs: online[j].pairs, userVectors: vectors)
                            }
                            if let buffer, requests.count > 1 {
                                for (b, a) in batchable.enumerated() { ranker.prescored[a] = buffer.row(b * batch + j) }
                            }
                            let seen = (uid.map { m.seen.row(Int($0)).cols }).flatMap { includeSeen ? nil : $0 }
                            // The learning coordinator's segment: what kind of request this is (`SegmentModel`).
                            let segment = learner == nil ? 0 : LearningSegment.of(known: uid != nil, online: overlay?.hasEvents ?? false,
                                                                                   personal: requests[j].profile != nil || !requests[j].history.isEmpty,
                                                                                   query: requests[j].query != nil, scenario: scenarioIndex)
                            let learning = learner?.ranking(segment: segment, agents: agentNames)
                            let requestId = requestIds?[u]
                            if learning != nil {
                                ranker.random = SeededRandom(seed: learningSeed ^ (requestId.map { UInt64(bitPattern: $0) &* 0x9E37_79B9_7F4A_7C15 }
                                                                                  ?? LearningSegment.nextDraw()))
                            }
                            let result = warmth.withUnsafeBufferPointer { warmth in
                                ranker.rank(requests[j], k: k, only: only, seen: seen, maskHistory: !includeSeen, blocked: blocked,
                                            diversity: diversity, online: overlay, newItemScores: newScores, warmth: warmth.baseAddress!,
                                            learning: learning)
                            }
                            if let learner, let learning, let requestId, !result.isEmpty {
                                learner.open(requestId, LearningSegment.pending(ranker: ranker, learning: learning, user: users[u], segment: segment,
                                                                                 ids: result.map { snapshot.itemId($0.item) }),
                                             agents: agentNames)
                            }
                            inspect?(u, ranker)
                            let nA = m.agents.count
                            for slot in 0..<k {
                                let o = u * k + slot
                                if slot < result.count {
                                    outIds[o] = snapshot.itemId(result[slot].item)
                                    outScores[o] = result[slot].score
                                    if let outShares { ranker.shares(of: slot, into: outShares + o * nA) }
                                } else {
                                    outIds[o] = -1
                                    outScores[o] = -.infinity
                                    if let outShares { for a in 0..<nA { outShares[o * nA + a] = 0 } }
                                }
                            }
                            outFlags?[u] = uid == nil && !(overlay?.hasEvents ?? false) ? 1 : 0
                        }
                    }
                }
            }
        }
        if let e = scratchError.withLock({ $0 }) { throw e }
    }

    /// Users per batch of `scoreBatch`: up to 32, as many as keep the batch's score rows (one per
    /// user and batch-scoring agent) within 4M floats (16 MiB) per worker; 1 (no batching) for
    /// catalogues too large for two rows.
    static func batchSize(items: Int, agents: Int) -> Int {
        max(1, min(32, (4 << 20) / max(1, items * agents)))
    }

    /// The k items most similar to each given item (cosine of the model's similarity vectors).
    func similarItems(items: UnsafeBufferPointer<Int64>, k: Int, allow: Set<Int64>?, deny: Set<Int64>,
                      outIds: UnsafeMutablePointer<Int64>, outScores: UnsafeMutablePointer<Float>) throws(ChorusError) {
        let m = model
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
        let blocked = blockedItems(allow: allow, deny: deny)
        var scores = [Float](repeating: 0, count: nItems)
        for (q, qi) in query.enumerated() {
            scores.withUnsafeMutableBufferPointer { s in
                Kernels.rowDots(vectors.base, m: nItems, k: vectors.cols, vectors.row(qi), into: s.baseAddress!)
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

    /// The ranking network's modulation for a request's scenario (empty without a network).
    /// - Throws: `.notFound` for an undefined scenario.
    func scenarioModulation(_ name: String?) throws(ChorusError) -> [Float] {
        let s = try scenarios.resolve(name)
        guard let net = model.coordinator.ranker else { return [] }
        return net.modulation(scenario: s, description: scenarios.vectors[s])
    }

    /// Items blocked by allow/deny lists, as a dense flag array over the model's items and then
    /// `newItems` (nil when nothing is blocked).
    func blockedItems(allow: Set<Int64>?, deny: Set<Int64>, newItems: OnlineState.NewItems = OnlineState.NewItems()) -> [Bool]? {
        if allow == nil && deny.isEmpty { return nil }
        let n = model.itemCount
        func index(_ id: Int64) -> Int? { model.items.index(of: id).map { Int($0) } ?? newItems.index[id].map { n + Int($0) } }
        var blocked = [Bool](repeating: allow != nil, count: n + newItems.count)
        if let allow { for id in allow { if let i = index(id) { blocked[i] = false } } }
        for id in deny { if let i = index(id) { blocked[i] = true } }
        return blocked
    }

    /// A request's query as an encoder vector (empty for no query).
    func encodeQuery(_ query: String?) throws(ChorusError) -> [Float] {
        guard let q = query, !q.isEmpty else { return [] }
        guard model.queryIndex != nil else {
            throw .invalidArgument("a query needs item texts: set them with set_item_texts and fit again")
        }
        guard let enc = encoder?.encoder else { throw .internalError("the encoder was not loaded before the request's snapshot") }
        guard enc.name == texts.encoderName || texts.encoderName.isEmpty else {
            throw .invalidArgument("the item texts were encoded by '\(texts.encoderName)', but the encoder now loaded is '\(enc.name)': a query cannot be compared with them")
        }
        return try enc.encode([q], threads: 1)
    }
}
