import ChorusCore
import ChorusCollaborative
import ChorusText
import ChorusKnowledge
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
        var scenarios = ScenarioTable()
        var facts = ItemFacts()
        /// The engine's knowledge graph: the item facts as triples ("item:<id>", relation, entity)
        /// plus whatever the host adds, and its trained embeddings (the "kge" agent's vectors).
        var knowledgeGraph = KnowledgeGraph()
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
            let graph = (s.facts.isEmpty ? [] : ["kg"]) + (s.knowledgeGraph.isTrained ? ["kge"] : [])
            return (Self.collaborativeAgents + graph + (s.texts.items.isEmpty ? [] : ["content", "query"])).map { ($0, 0) }
        }
    }

    /// What ranks the candidates: the linear blend or the ranking network, and the validation
    /// figures that chose it ("not fitted" before the first fit).
    public var coordinatorDescription: String {
        state.withLock { s in
            guard let m = s.model else { return "not fitted" }
            if !m.coordinatorReport.isEmpty { return m.coordinatorReport }
            return m.ranker == nil ? "linear blend" : "ranking network"
        }
    }

    /// Intra-list diversity of a list of item ids: mean 1 − cos over pairs, with the item vectors
    /// diversity re-ranking uses; nil before fit or without item vectors. Unknown ids are skipped.
    public func intraListDiversity(_ items: [Int64]) -> Double? {
        guard let m = state.withLock({ $0.model }), let vectors = m.diversityVectors else { return nil }
        return Diversity.intraList(items.compactMap { m.items.index(of: $0) }, vectors: vectors)
    }

    /// The coordinator's weights per agent (0 before the first fit).
    public var blendWeights: [Float] { state.withLock { $0.model?.weights } ?? [Float](repeating: 0, count: agentNames.count) }

    /// Distinct items added so far.
    public var itemCount: Int { state.withLock { $0.log.items.count } }

    /// The agents' factories for one fit, popularity first (`halfLife` < 0: no decay); the content
    /// agent joins when `itemVectors` (the text vectors of the fit's items) is given.
    func factories(_ p: FitParameters, halfLife: Int64, itemVectors: FloatMatrix?, graph: KnowledgeGraphTable? = nil,
                   graphVectors: FloatMatrix? = nil) -> [AgentFactory] {
        var als = ALSParameters()
        als.factors = p.factors; als.regularization = p.regularization; als.alpha = p.alpha
        als.iterations = p.iterations; als.threads = p.threads; als.seed = p.seed
        var neighbours = ItemNeighbours.Parameters()
        neighbours.threads = p.threads
        var list: [AgentFactory] = [PopularityAgent.Factory(halfLifeSeconds: halfLife), ALSAgent.Factory(parameters: als),
                                    BPRAgent.Factory(parameters: BPRParameters()),
                                    ItemKNNAgent.Factory(parameters: neighbours), SessionAgent.Factory(parameters: neighbours)]
        if let graph { list.append(KnowledgeAgent.Factory(graph: graph)) }
        if let graphVectors { list.append(KnowledgeEmbeddingAgent.Factory(vectors: graphVectors)) }
        if let itemVectors { list.append(ContentAgent.Factory(itemVectors: itemVectors)) }
        return list
    }

    /// The factory that restores a snapshot's agent `name`.
    func decoder(named name: String, _ p: FitParameters, halfLife: Int64) -> AgentFactory? {
        factories(p, halfLife: halfLife, itemVectors: nil).first { $0.name == name }
            ?? (name == "content" ? ContentAgent.Factory(itemVectors: nil) : name == "query" ? QueryAgent.Factory()
                : name == "kg" ? KnowledgeAgent.Factory(graph: nil) : name == "kge" ? KnowledgeEmbeddingAgent.Factory(vectors: nil) : nil)
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

    // MARK: - Item facts (knowledge graph)

    /// Adds facts about items: (item, relation, entity), e.g. (1, "director", "John Lasseter").
    /// The knowledge-graph agent recommends through shared entities and names the path. Items
    /// with facts join the catalogue at the next fit. Repeated facts are skipped.
    /// - Returns: how many facts were new.
    /// - Throws: `.invalidArgument` for mismatched lengths or an empty relation/entity (nothing added).
    @discardableResult
    public func addItemFacts(items: [Int64], relations: [String], entities: [String]) throws(ChorusError) -> Int {
        try state.withLock { (s) throws(ChorusError) -> Int in
            let added = try s.facts.add(items: items, relations: relations, entities: entities)
            s.log.register(items: items)
            try s.knowledgeGraph.add(heads: items.map(KnowledgeEmbeddingAgent.entityName), relations: relations, tails: entities)
            return added
        }
    }

    /// The engine's knowledge graph (shared, not a copy): the item facts as triples
    /// ("item:<id>", relation, entity), and any triple the host adds, such as facts about the
    /// entities themselves. Once the host trains it (`KnowledgeGraph.train`), the next fit gives
    /// the items that are entities of its model the "kge" agent (embedding similarity). It is
    /// saved inside the engine snapshot, with its model.
    public var knowledgeGraph: KnowledgeGraph { state.withLock { $0.knowledgeGraph } }

    // MARK: - Scenarios

    /// Defines (or redefines) a scenario by name with a text description ("the home feed: a
    /// relaxed browse of what is new and what suits the user"), encoded now. Interactions and
    /// requests then name it; the next fit learns how it modulates the coordinator.
    /// - Throws: `.invalidArgument` for a bad name; encoder errors.
    public func defineScenario(_ name: String, description: String) throws(ChorusError) {
        let enc = try encoder().encoder
        let vector = description.isEmpty ? [Float](repeating: 0, count: enc.dimension) : try enc.encode([description], threads: 1)
        try state.withLock { (s) throws(ChorusError) in try s.scenarios.define(name, description: description, vector: vector) }
    }

    /// The scenarios defined so far (without the default), in definition order.
    public var scenarioNames: [String] { state.withLock { Array($0.scenarios.names.dropFirst()) } }

    /// The text set for an item or user, if any.
    public func text(_ kind: TextCatalogue.Kind, id: Int64) -> String? {
        state.withLock { kind == .item ? $0.texts.items[id]?.text : $0.texts.users[id]?.text }
    }

    // MARK: - Data

    /// Appends a batch; validated whole first, so on error nothing is added.
    /// - Parameter scenario: the scenario the interactions happened in (defined with
    ///   `defineScenario`); nil = the default scenario.
    /// - Throws: `.notFound` for an undefined scenario, and what `InteractionLog.append` throws.
    public func add(users: UnsafeBufferPointer<Int64>, items: UnsafeBufferPointer<Int64>,
                    weights: UnsafeBufferPointer<Float>?, timestamps: UnsafeBufferPointer<Int64>?, scenario: String? = nil) throws(ChorusError) {
        try state.withLock { (s) throws(ChorusError) in
            let sc = try s.scenarios.resolve(scenario)
            try s.log.append(users: users, items: items, weights: weights, timestamps: timestamps, scenario: UInt16(sc))
        }
    }

    public func add(_ batch: [Interaction], scenario: String? = nil) throws(ChorusError) {
        try state.withLock { (s) throws(ChorusError) in
            let sc = try s.scenarios.resolve(scenario)
            try s.log.append(batch, scenario: UInt16(sc))
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
        let (log, texts, model, facts) = state.withLock { ($0.log, $0.texts, $0.model, $0.facts) }
        let alloc = Allocator.stats()
        return EngineStats(fitted: model != nil, users: log.users.count, items: log.items.count, interactions: log.count,
                           modelUsers: model?.users.count ?? 0, modelItems: model?.items.count ?? 0,
                           modelBytes: model?.modelBytes ?? 0, popularityHalfLifeSeconds: model?.popularityHalfLifeSeconds ?? 0,
                           itemTexts: texts.items.count, userTexts: texts.users.count, itemFacts: facts.count,
                           allocatedBytes: alloc.allocated, residentBytes: alloc.resident)
    }
}
