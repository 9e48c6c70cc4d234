import ChorusCore
import ChorusCollaborative
import ChorusText
import Synchronization

/// The recommendation engine: an interaction log, a set of agents, and a coordinator that blends
/// them. This is the pure-Swift core behind the C ABI.
///
/// Thread safety: every method may be called from any thread. Reads (recommend, similar items,
/// stats, save) work on an immutable published model; `add` appends under a lock; `fit` trains a
/// new model outside the lock and publishes it when done (fits are serialised among themselves).
public final class Engine: @unchecked Sendable {
    public let config: EngineConfig
    struct State {
        var log = InteractionLog()
        var texts = TextCatalogue()
        var model: FittedModel?
        var lastParameters = FitParameters()
    }
    let state = Mutex(State())
    let fitLock = Mutex(())
    /// The sentence encoder, loaded on first use (see `encoder()`).
    let encoderChoice = Mutex<TextEncoders.Choice?>(nil)

    public init(config: EngineConfig = EngineConfig()) { self.config = config }

    /// The agents every fit trains, in blend order (popularity first: the cold-start fallback).
    static let collaborativeAgents = ["popularity", "als", "bpr", "itemknn", "session"]

    /// The agents, in blend order: the collaborative ones, and content when items have texts.
    /// Before the first fit: the agents the next fit would train.
    public var agentNames: [String] { agents.map(\.name) }

    /// The agents with their blend weights, read together from one model (0 before the first fit).
    public var agents: [(name: String, weight: Float)] {
        state.withLock { s in
            if let m = s.model { return m.agents.indices.map { (m.agents[$0].name, m.weights[$0]) } }
            return (Self.collaborativeAgents + (s.texts.items.isEmpty ? [] : ["content"])).map { ($0, 0) }
        }
    }

    /// The coordinator's weights per agent (0 before the first fit).
    public var blendWeights: [Float] { state.withLock { $0.model?.weights } ?? [Float](repeating: 0, count: agentNames.count) }

    /// Distinct items added so far.
    public var itemCount: Int { state.withLock { $0.log.items.count } }

    /// The agents' factories for one fit, popularity first (`halfLife` < 0: no decay); the content
    /// agent joins when `itemVectors` (the text vectors of the fit's items) is given.
    func factories(_ p: FitParameters, halfLife: Int64, itemVectors: FloatMatrix?) -> [AgentFactory] {
        var als = ALSParameters()
        als.factors = p.factors; als.regularization = p.regularization; als.alpha = p.alpha
        als.iterations = p.iterations; als.threads = p.threads; als.seed = p.seed
        var neighbours = ItemNeighbours.Parameters()
        neighbours.threads = p.threads
        var list: [AgentFactory] = [PopularityAgent.Factory(halfLifeSeconds: halfLife), ALSAgent.Factory(parameters: als),
                                    BPRAgent.Factory(parameters: BPRParameters()),
                                    ItemKNNAgent.Factory(parameters: neighbours), SessionAgent.Factory(parameters: neighbours)]
        if let itemVectors { list.append(ContentAgent.Factory(itemVectors: itemVectors)) }
        return list
    }

    /// The factory that restores a snapshot's agent `name`.
    func decoder(named name: String, _ p: FitParameters, halfLife: Int64) -> AgentFactory? {
        factories(p, halfLife: halfLife, itemVectors: nil).first { $0.name == name }
            ?? (name == "content" ? ContentAgent.Factory(itemVectors: nil) : nil)
    }

    // MARK: - Text

    /// The sentence encoder, loaded on first call (the transformer when its weights are found, else
    /// the hashing fallback; see `EngineConfig.encoderPath`).
    /// - Throws: loading errors, only when the config names a path or requires the model.
    public func encoder() throws(ChorusError) -> TextEncoders.Choice {
        try encoderChoice.withLock { (c) throws(ChorusError) -> TextEncoders.Choice in
            if let c { return c }
            let loaded = config.hashingEncoder
                ? TextEncoders.Choice(encoder: HashingEncoder(), reason: "hashing encoder, as the engine's configuration asks")
                : try TextEncoders.load(path: config.encoderPath, requireModel: config.requireEncoder)
            Log.emit(loaded.isFallback ? .warning : .info, "text encoder: \(loaded.reason)")
            c = loaded
            return loaded
        }
    }

    /// Which encoder the engine uses and why (loads it if needed).
    public var encoderDescription: String {
        do { return try encoder().reason } catch { return "no encoder: \(error.message)" }
    }

    /// Sets the texts of items (title, description, tags: one string) or users (a profile), encoding
    /// them now, so fits and recommendations reuse the vectors. An empty text removes the entry.
    /// An item with a text joins the catalogue at the next fit, interactions or not.
    /// - Throws: `.invalidArgument` for mismatched lengths, an id twice in one call, or texts
    ///   already encoded by a different encoder; encoder errors. On error nothing changes.
    public func setTexts(_ kind: TextCatalogue.Kind, ids: [Int64], texts: [String], threads: Int = 0) throws(ChorusError) {
        guard ids.count == texts.count else { throw .invalidArgument("\(ids.count) ids but \(texts.count) texts") }
        var distinct = Set<Int64>()
        for id in ids where !distinct.insert(id).inserted {
            throw .invalidArgument("\(kind == .item ? "item" : "user") id \(id) appears twice in one call")
        }
        let enc = try encoder().encoder
        let filled = texts.filter { !$0.isEmpty }
        let vectors = filled.isEmpty ? [] : try enc.encode(filled, threads: threads > 0 ? threads : Parallel.cpuCount)
        try state.withLock { (s) throws(ChorusError) in
            try s.texts.set(kind, ids: ids, texts: texts, vectors: vectors, encoderName: enc.name, dimension: enc.dimension)
            if kind == .item { s.log.register(items: zip(ids, texts).filter { !$0.1.isEmpty }.map(\.0)) }
        }
    }

    /// The text set for an item or user, if any.
    public func text(_ kind: TextCatalogue.Kind, id: Int64) -> String? {
        state.withLock { kind == .item ? $0.texts.items[id]?.text : $0.texts.users[id]?.text }
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

    // MARK: - Recommend

    private func publishedModel() throws(ChorusError) -> FittedModel {
        try publishedModelAndTexts().0
    }

    func publishedModelAndTexts() throws(ChorusError) -> (FittedModel, TextCatalogue) {
        let (model, texts) = state.withLock { ($0.model, $0.texts) }
        guard let model else { throw .notFitted("the engine has no model yet: add interactions and call fit first") }
        return (model, texts)
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
    /// entries; `outShares` (optional) at least users.count * k * agentCount; `outFlags` (optional)
    /// users.count.
    /// - Throws: `.notFitted`, `.invalidArgument` for k out of range, `.notFound` for an unknown
    ///   agent, `.bufferTooSmall` for a shares buffer too small for this model's agents.
    public func recommend(users: UnsafeBufferPointer<Int64>, k: Int, options: RecommendOptions,
                          outIds: UnsafeMutablePointer<Int64>, outScores: UnsafeMutablePointer<Float>,
                          outShares sharesBuffer: UnsafeMutableBufferPointer<Float>?, outFlags: UnsafeMutablePointer<UInt32>?) throws(ChorusError) {
        let (m, texts) = try publishedModelAndTexts()
        try recommend(m, texts, users: users, k: k, options: options, outIds: outIds, outScores: outScores,
                      outShares: sharesBuffer, outFlags: outFlags)
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
        let outShares = sharesBuffer?.baseAddress
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
        let userTexts = SendableBox(texts.users)
        // Scratch per worker: one buffer per agent plus the blend.
        let scratchError = Mutex<ChorusError?>(nil)
        Parallel.forEachChunk(count: users.count, threads: threads) { _, range in
            let (users, outIds, outScores, outShares, outFlags) = out.value
            guard let scratch = try? FloatMatrix(rows: nAgents + 1, cols: nItems, zeroed: false) else {
                scratchError.withLock { $0 = .outOfMemory("cannot allocate recommend scratch buffers") }
                return
            }
            let final = UnsafeMutableBufferPointer(start: scratch.row(nAgents), count: nItems)
            var weights = [Float](repeating: 0, count: nAgents)
            for u in range {
                let uidx = m.users.index(of: users[u])
                let cold = uidx == nil
                let profile = userTexts.value[users[u]]?.vector ?? []
                profile.withUnsafeBufferPointer { profile in
                    let request = AgentRequest(user: uidx, profile: profile.isEmpty ? nil : profile)
                    // The agents that take part and their weights: one agent alone when asked (or
                    // popularity when it cannot score this user), else the fitted blend over the
                    // agents that can score the request, renormalised (all of them for a known user).
                    var used: [Int] = []
                    if let only {
                        used = [m.agents[only].canScore(request) ? only : m.popularityIndex]
                    } else {
                        used = (0..<nAgents).filter { m.weights[$0] > 0 && m.agents[$0].canScore(request) }
                        if used.isEmpty { used = [m.popularityIndex] }
                    }
                    let total = used.reduce(Float(0)) { $0 + m.weights[$1] }
                    for a in 0..<nAgents { weights[a] = 0 }
                    for a in used { weights[a] = used.count == 1 ? 1 : m.weights[a] / total }
                    if used.count == 1 {
                        m.agents[used[0]].score(request, into: final)
                    } else {
                        for i in 0..<nItems { final[i] = 0 }
                        for a in used {
                            let buf = UnsafeMutableBufferPointer(start: scratch.row(a), count: nItems)
                            m.agents[a].score(request, into: buf)
                            Coordinator.normalize(buf)
                            Kernels.axpy(weights[a], buf.baseAddress!, final.baseAddress!, nItems)
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
                                    for a in used { sh[a] = total > 0 ? weights[a] * scratch.row(a)[i] / total : weights[a] }
                                }
                            }
                        } else {
                            outIds[o] = -1
                            outScores[o] = -.infinity
                            if let outShares { for a in 0..<nAgents { outShares[o * nAgents + a] = 0 } }
                        }
                    }
                }
                outFlags?[u] = cold ? 1 : 0
            }
        }
        if let e = scratchError.withLock({ $0 }) { throw e }
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

    // MARK: - Snapshot support

    func stateSnapshot() -> (InteractionLog, TextCatalogue, FittedModel?, FitParameters) {
        state.withLock { ($0.log, $0.texts, $0.model, $0.lastParameters) }
    }

    func restore(log: InteractionLog, texts: TextCatalogue, model: FittedModel?, parameters: FitParameters) {
        state.withLock { $0.log = log; $0.texts = texts; $0.model = model; $0.lastParameters = parameters }
    }

    // MARK: - Stats

    public func stats() -> EngineStats {
        let (log, texts, model) = state.withLock { ($0.log, $0.texts, $0.model) }
        let alloc = Allocator.stats()
        return EngineStats(fitted: model != nil, users: log.users.count, items: log.items.count, interactions: log.count,
                           modelUsers: model?.users.count ?? 0, modelItems: model?.items.count ?? 0,
                           modelBytes: model?.modelBytes ?? 0, popularityHalfLifeSeconds: model?.popularityHalfLifeSeconds ?? 0,
                           itemTexts: texts.items.count, userTexts: texts.users.count,
                           allocatedBytes: alloc.allocated, residentBytes: alloc.resident)
    }
}
