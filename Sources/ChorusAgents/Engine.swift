import ChorusCore
import ChorusCollaborative
import ChorusText
import ChorusKnowledge
import Synchronization

/// The recommendation engine, a small façade over its parts:
/// - a `DataStore` (interactions, texts, facts, scenarios, the knowledge graph) and the published
///   `FittedModel`, together behind one lock (`state`);
/// - the `Trainer` (fit pipeline), run on a copy of the data with no lock held;
/// - serving (`ServingSnapshot`, `RequestRanker`) and the `Explainer`, which read one snapshot;
/// - the snapshot format (`EngineSnapshotCodec`);
/// - `OnlineState`, what is learned between fits.
/// This is the pure-Swift core behind the C ABI.
///
/// Thread safety: every method may be called from any thread. The lock is exclusive and held only
/// to copy a snapshot or to apply a change (never while encoding, training or ranking): a request
/// copies model, texts, scenarios and encoder in one acquisition and ranks without a lock; data
/// changes apply whole; a fit trains on a copy and publishes its model in one step at the end
/// (fits are serialised among themselves by a `SerialGate`).
public final class Engine: Sendable {
    public let config: EngineConfig
    private struct State {
        var data = DataStore()
        var model: FittedModel?
        /// Counts publications (fits and loads that bring a model); the online state follows it.
        var generation: UInt64 = 0
        var lastParameters = FitParameters()
        /// The sentence encoder once loaded (see `encoder()`).
        var encoder: TextEncoders.Choice?
        /// Loaded from a snapshot saved without its interactions: fits are refused, saves withhold them.
        var interactionsWithheld = false
    }
    private let state = Lock(State())
    /// Serialises encoder loading (slow, done once), outside the state lock.
    private let encoderLoading = Lock(())
    private let fits = SerialGate(call: "fit")
    /// What the engine learns between fits: the overlay of live feedback (`OnlineState`).
    public let online = OnlineState()
    /// The learning coordinator: what the engine learns about ranking from feedback on served slates.
    public let learner: CoordinatorLearner

    public init(config: EngineConfig = EngineConfig()) { self.config = config; learner = CoordinatorLearner() }

    init(restoring contents: EngineSnapshotCodec.Contents) {
        config = contents.config
        let hasModel = contents.model != nil
        learner = contents.learning ?? CoordinatorLearner()
        if let m = contents.model { learner.adopt(agents: m.agentNames) }
        state.withLock {
            $0.data = contents.data; $0.model = contents.model; $0.lastParameters = contents.parameters
            $0.generation = hasModel ? 1 : 0
            $0.interactionsWithheld = contents.interactionsWithheld
        }
        // The overlay is derived from the data: rebuilt from the feedback rows the model has not seen
        // (those received while learning was private reach only their users' overlays).
        online.setPrivateRows(learner.privateRows)
        let foldIn = Self.foldIn(for: contents.model)
        online.restore(generation: hasModel ? 1 : 0, model: contents.model, foldIn: foldIn, log: contents.data.log,
                       record: contents.data.feedback)?.run(into: online)
    }

    /// The fold-in of a model's factor agents (nil without a model, or when it cannot be allocated:
    /// then feedback still counts, only the factor agents keep the model's vectors).
    private static func foldIn(for model: FittedModel?) -> FoldIn? {
        guard let model else { return nil }
        do { return try FoldIn(model: model) } catch {
            Log.emit(.warning, "online fold-in disabled for this model: \(error.message)")
            return nil
        }
    }

    /// The agents, in blend order: the collaborative ones, and content when items have texts.
    /// Before the first fit: the agents the next fit would train.
    public var agentNames: [String] { agents.map(\.name) }

    /// The agents with their blend weights, read together from one model (0 before the first fit).
    public var agents: [(name: String, weight: Float)] {
        state.withLock { s in
            if let m = s.model { return m.agents.indices.map { (m.agents[$0].name, m.coordinator.weights[$0]) } }
            return s.data.plannedAgents.map { ($0, 0) }
        }
    }

    /// What ranks the candidates: the linear blend or the ranking network, and the validation
    /// figures that chose it ("not fitted" before the first fit).
    public var coordinatorDescription: String {
        guard let m = state.withLock({ $0.model }) else { return "not fitted" }
        if !m.coordinator.report.isEmpty { return m.coordinator.report }
        return m.coordinator.ranker == nil ? "linear blend" : "ranking network"
    }

    /// Intra-list diversity of a list of item ids: mean 1 − cos over pairs, with the item vectors
    /// diversity re-ranking uses; nil before fit or without item vectors. Unknown ids are skipped.
    public func intraListDiversity(_ items: [Int64]) -> Double? {
        guard let m = state.withLock({ $0.model }), let vectors = m.similarityVectors else { return nil }
        return Diversity.intraList(items.compactMap { m.items.index(of: $0) }, vectors: vectors)
    }

    /// The coordinator's weights per agent (0 before the first fit).
    public var blendWeights: [Float] { agents.map(\.weight) }

    /// Distinct items added so far.
    public var itemCount: Int { state.withLock { $0.data.log.items.count } }

    // MARK: - Text

    /// The sentence encoder, loaded on first call (the transformer when its weights are found, else
    /// the hashing fallback; see `EngineConfig.encoderPath`).
    /// - Throws: loading errors, only when the config names a path or requires the model.
    public func encoder() throws(ChorusError) -> TextEncoders.Choice {
        if let loaded = state.withLock({ $0.encoder }) { return loaded }
        return try encoderLoading.withLock { (_) throws(ChorusError) -> TextEncoders.Choice in
            if let loaded = state.withLock({ $0.encoder }) { return loaded }
            let loaded = config.hashingEncoder
                ? TextEncoders.Choice(encoder: HashingEncoder(), reason: "hashing encoder, as the engine's configuration asks")
                : try TextEncoders.load(path: config.encoderPath, requireModel: config.requireEncoder)
            Log.emit(loaded.isFallback ? .warning : .info, "text encoder: \(loaded.reason)")
            state.withLock { $0.encoder = loaded }
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
    /// - Throws: `.invalidArgument` for mismatched lengths, an id twice in one call, a text over
    ///   `Limits.maxTextBytes`, or texts already encoded by a different encoder; encoder errors.
    ///   On error nothing changes.
    public func setTexts(_ kind: TextCatalogue.Kind, ids: [Int64], texts: [String], threads: Int = 0,
                         progress: ((Double) -> Bool)? = nil) throws(ChorusError) {
        guard ids.count == texts.count else { throw .invalidArgument("\(ids.count) ids but \(texts.count) texts") }
        var distinct = Set<Int64>()
        for id in ids where !distinct.insert(id).inserted {
            throw .invalidArgument("\(kind == .item ? "item" : "user") id \(id) appears twice in one call")
        }
        // Before the encoder's work: ids and lengths.
        if kind == .item { try InteractionLog.validate(itemIds: ids) }
        for (i, text) in texts.enumerated() { try Limits.checkText(text, "texts[\(i)]") }
        let enc = try encoder().encoder
        let filled = texts.filter { !$0.isEmpty }
        let threads = threads > 0 ? threads : Parallel.cpuCount
        let vectors: [Float]
        if let progress { vectors = try Self.encode(filled, enc, threads: threads, progress: progress) }
        else { vectors = filled.isEmpty ? [] : try enc.encode(filled, threads: threads) }
        try state.withLock { (s) throws(ChorusError) in
            try s.data.setTexts(kind, ids: ids, texts: texts, vectors: vectors, encoderName: enc.name, dimension: enc.dimension)
        }
    }

    /// Texts to encode per progress report: each text is encoded on its own, so chunks give the
    /// same vectors as one call; 512 keeps every thread busy and a report about every second with
    /// all-MiniLM-L6-v2 on two cores.
    static let textChunk = 512

    /// `enc.encode(texts)` in chunks, reporting the fraction encoded before the first and after each
    /// (the last report is 1); a report returning true cancels (`.cancelled`: nothing is applied).
    static func encode(_ texts: [String], _ enc: any SentenceEncoder, threads: Int,
                       progress: (Double) -> Bool) throws(ChorusError) -> [Float] {
        let cancelled = ChorusError.cancelled("text encoding cancelled by the progress callback; no text was changed")
        if progress(0) { throw cancelled }
        var vectors: [Float] = []
        vectors.reserveCapacity(texts.count * enc.dimension)
        var start = 0
        while start < texts.count {
            let end = min(start + textChunk, texts.count)
            vectors += try enc.encode(Array(texts[start..<end]), threads: threads)
            start = end
            if end < texts.count, progress(Double(end) / Double(texts.count)) { throw cancelled }
        }
        if progress(1) { throw cancelled }
        return vectors
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
            try s.data.addItemFacts(items: items, relations: relations, entities: entities)
        }
    }

    /// The engine's knowledge graph (shared, not a copy): the item facts as triples
    /// ("item:<id>", relation, entity), and any triple the host adds, such as facts about the
    /// entities themselves. Once the host trains it (`KnowledgeGraph.train`), the next fit gives
    /// the items that are entities of its model the "kge" agent (embedding similarity). It is
    /// saved inside the engine snapshot, with its model.
    public var knowledgeGraph: KnowledgeGraph { state.withLock { $0.data.knowledgeGraph } }

    // MARK: - Scenarios

    /// Defines (or redefines) a scenario by name with a text description ("the home feed: a
    /// relaxed browse of what is new and what suits the user"), encoded now. Interactions and
    /// requests then name it; the next fit learns how it modulates the coordinator.
    /// - Throws: `.invalidArgument` for a bad name or a description over `Limits.maxTextBytes`;
    ///   encoder errors.
    public func defineScenario(_ name: String, description: String) throws(ChorusError) {
        try ScenarioTable.checkName(name)  // before the encoder's work
        try Limits.checkText(description, "the description of scenario '\(name)'")
        let enc = try encoder().encoder
        let vector = description.isEmpty ? [Float](repeating: 0, count: enc.dimension) : try enc.encode([description], threads: 1)
        try state.withLock { (s) throws(ChorusError) in try s.data.defineScenario(name, description: description, vector: vector) }
    }

    /// The scenarios defined so far (without the default), in definition order.
    public var scenarioNames: [String] { state.withLock { Array($0.data.scenarios.names.dropFirst()) } }

    /// The text set for an item or user, if any.
    public func text(_ kind: TextCatalogue.Kind, id: Int64) -> String? {
        state.withLock { kind == .item ? $0.data.texts.items[id]?.text : $0.data.texts.users[id]?.text }
    }

    // MARK: - Host metadata

    /// Sets (or, with an empty value, removes) a named byte string kept with the engine and in its
    /// snapshot, opaque to the engine (`HostMetadata`).
    /// - Throws: `.invalidArgument` for a bad key or past the limits; nothing changes then.
    public func setMetadata(_ key: String, _ value: [UInt8]) throws(ChorusError) {
        try state.withLock { (s) throws(ChorusError) in try s.data.metadata.set(key, value) }
    }

    /// The value stored under `key`, nil if none.
    public func metadata(_ key: String) -> [UInt8]? { state.withLock { $0.data.metadata[key] } }

    // MARK: - Data

    /// Appends a batch; validated whole first, so on error nothing is added.
    /// - Parameter scenario: the scenario the interactions happened in (defined with
    ///   `defineScenario`); nil = the default scenario.
    /// - Throws: `.notFound` for an undefined scenario, and what `InteractionLog.append` throws.
    public func add(users: UnsafeBufferPointer<Int64>, items: UnsafeBufferPointer<Int64>,
                    weights: UnsafeBufferPointer<Float>?, timestamps: UnsafeBufferPointer<Int64>?, scenario: String? = nil) throws(ChorusError) {
        try state.withLock { (s) throws(ChorusError) in
            try s.data.add(users: users, items: items, weights: weights, timestamps: timestamps, scenario: scenario)
        }
    }

    public func add(_ batch: [Interaction], scenario: String? = nil) throws(ChorusError) {
        try state.withLock { (s) throws(ChorusError) in try s.data.add(batch, scenario: scenario) }
    }

    // MARK: - Feedback

    /// Records live feedback: event i is (users[i], items[i], events[i]) with an optional value
    /// (default 1), timestamp (default now) and request id. Its reward is its type's reward times
    /// its value (`FeedbackRewards`). Positive rewards are appended to the interaction log (weight =
    /// reward, in `scenario`), so the next fit learns from them, and reach the online overlay at
    /// once: the user's consumed items and recent history, the items' popularity, and the user's
    /// folded-in ALS/BPR vectors (computed here, so recommend stays cheap). Negative rewards demote
    /// (a skip) or drop (a dismissal) the item from that user's lists. Unknown users and items
    /// become new ones; before the first fit events are only accumulated. Out-of-order timestamps
    /// are accepted as given (the overlay orders events by arrival). An event with a request
    /// id (not -1) adds its reward to that item of the slate served under the id (`CoordinatorLearner`).
    /// - Throws: `.invalidArgument` (see `FeedbackBatch`), `.notFound` for an undefined scenario;
    ///   on error nothing changes.
    public func feedback(users: [Int64], items: [Int64], events: [Int32], values: [Float]? = nil, timestamps: [Int64]? = nil,
                         scenario: String? = nil, requestIds: [Int64]? = nil, rewards: FeedbackRewards = FeedbackRewards()) throws(ChorusError) {
        let batch = try FeedbackBatch(users: users, items: items, events: events, values: values, timestamps: timestamps,
                                      requestIds: requestIds, rewards: rewards, now: FeedbackBatch.now)
        let first = try state.withLock { (s) throws(ChorusError) -> Int in try s.data.addFeedback(batch, scenario: scenario) }
        online.record(batch, firstRow: first)?.run(into: online)
        learner.credit(batch.answers)
    }

    public func feedback(users: [Int64], items: [Int64], events: [FeedbackEvent], values: [Float]? = nil, timestamps: [Int64]? = nil,
                         scenario: String? = nil, rewards: FeedbackRewards = FeedbackRewards()) throws(ChorusError) {
        try feedback(users: users, items: items, events: events.map(\.rawValue), values: values, timestamps: timestamps,
                     scenario: scenario, rewards: rewards)
    }

    /// Events recorded so far, by type (`FeedbackEvent` raw value order).
    public var feedbackCounts: [UInt64] { state.withLock { $0.data.feedback.counts } }

    // MARK: - Fit

    /// Trains every agent, fits the coordinator on a temporal validation hold-out, retrains on all
    /// data (`Trainer`), and publishes the new model.
    /// - Parameter progress: `(stage, fraction)`; return true to cancel (the previous model stays).
    /// - Throws: `.invalidArgument` for bad parameters, too little data, or a fit called from
    ///   inside a fit's progress callback; `.cancelled`.
    /// - Parameter startingFrom: a fitted engine whose factor agents (ALS, BPR) this fit starts from
    ///   instead of a random start, by user and item id (a round of sharded training: each shard
    ///   continues from the merged model, `Engine.merge`); the model then carries that engine's
    ///   privacy ledger. It may be this engine. `.notFitted` when it has no model,
    ///   `.invalidArgument` when its factor count differs from `p.factors`.
    public func fit(_ p: FitParameters, startingFrom: Engine? = nil, progress: ((String, Double) -> Bool)? = nil) throws(ChorusError) {
        try p.validate()
        var start: FittedModel? = nil
        if let startingFrom {
            guard let m = startingFrom.state.withLock({ $0.model }) else {
                throw .notFitted("the engine to start the fit from has no model: fit or merge it first")
            }
            start = m
        }
        try fits.run { () throws(ChorusError) in
            let (data, withheld) = state.withLock { ($0.data, $0.interactionsWithheld) }
            if withheld {
                throw .invalidArgument("this engine was loaded from a snapshot saved without its interactions: its model serves, "
                    + "but a fit needs the data; build an engine from the interactions again to refit")
            }
            let model = try Trainer(config: config, parameters: p, start: start).fit(data, progress: progress)
            let foldIn = Self.foldIn(for: model)
            let generation = state.withLock { s in
                s.model = model; s.lastParameters = p; s.generation += 1
                return s.generation
            }
            learner.adopt(agents: model.agentNames)
            // A fresh overlay: the feedback that arrived while the model trained is kept and folded in again.
            online.rebase(to: generation, model: model, foldIn: foldIn)?.run(into: online)
        }
    }

    // MARK: - Serving

    /// One consistent view for one request, taken in one acquisition of the lock. A request with a
    /// query needs the encoder: loaded first when the model can take a query (once per engine).
    func serving(query: String? = nil) throws(ChorusError) -> ServingSnapshot {
        func take() -> ServingSnapshot? {
            state.withLock { s in
                s.model.map { ServingSnapshot(model: $0, generation: s.generation, texts: s.data.texts, scenarios: s.data.scenarios, encoder: s.encoder) }
            }
        }
        guard var snapshot = take() else { throw .notFitted("the engine has no model yet: add interactions and call fit first") }
        if let query, !query.isEmpty, snapshot.model.queryIndex != nil, snapshot.encoder == nil {
            _ = try encoder()
            guard let again = take() else { throw .notFitted("the engine has no model yet: add interactions and call fit first") }
            snapshot = again
        }
        // The online overlay, from its own lock (never held with the state lock). One rebased for a
        // newer model than the snapshot's has dropped the events that model saw: take the model again.
        var view = online.view()
        var tries = 0
        while view.generation > snapshot.generation, tries < 8, let again = take() {
            snapshot = again
            view = online.view()
            tries += 1
        }
        snapshot.online = view
        snapshot.learner = learner
        snapshot.onlineState = online
        return snapshot
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
                          outShares: UnsafeMutableBufferPointer<Float>?, outFlags: UnsafeMutablePointer<UInt32>?) throws(ChorusError) -> [String] {
        try serving(query: options.query).recommend(users: users, k: k, options: options, outIds: outIds, outScores: outScores,
                                                    outShares: outShares, outFlags: outFlags)
    }

    /// Swift-friendly recommend.
    public func recommend(users: [Int64], k: Int, options: RecommendOptions = RecommendOptions()) throws(ChorusError) -> [RecommendationList] {
        try serving(query: options.query).recommend(users: users, k: k, options: options)
    }

    /// The k items most similar to each given item (cosine of the first agent with item vectors).
    public func similarItems(items: UnsafeBufferPointer<Int64>, k: Int, allow: Set<Int64>?, deny: Set<Int64>,
                             outIds: UnsafeMutablePointer<Int64>, outScores: UnsafeMutablePointer<Float>) throws(ChorusError) {
        try serving().similarItems(items: items, k: k, allow: allow, deny: deny, outIds: outIds, outScores: outScores)
    }

    /// The k users most similar to each given user (cosine of the first factor agent's user vectors;
    /// `ServingSnapshot.similarUsers`).
    public func similarUsers(users: UnsafeBufferPointer<Int64>, k: Int, allow: Set<Int64>?, deny: Set<Int64>,
                             outIds: UnsafeMutablePointer<Int64>, outScores: UnsafeMutablePointer<Float>) throws(ChorusError) {
        try serving().similarUsers(users: users, k: k, allow: allow, deny: deny, outIds: outIds, outScores: outScores)
    }

    /// Explains `item` for `user` under `options` (its query, history and scenario count; `agent`
    /// and `diversity` do not): each agent's share, its reason, a sentence (`Explainer`).
    /// - Throws: `.notFitted`; `.notFound` for an item the model does not know.
    public func explain(user: Int64, item: Int64, options: RecommendOptions = RecommendOptions()) throws(ChorusError) -> Explanation {
        try Explainer(snapshot: serving(query: options.query)).explain(user: user, item: item, options: options)
    }

    // MARK: - Learning coordinator

    /// Chooses how the coordinator keeps learning from feedback on served slates (`LearningOptions`):
    /// off (the fitted coordinator alone), LinUCB, linear Thompson sampling, or a policy trained by
    /// policy gradient. Statistics learned so far are kept across modes; a fit keeps them when its
    /// model has the same agents.
    ///
    /// Private learning (`clipNorm` > 0, `PrivateLearning`) applies to the feedback recorded after
    /// the call (events recorded while it runs may be learned either way): the learner learns in
    /// clipped, noisy releases, and the overlay's shared statistics no longer learn from feedback.
    /// - Throws: `.invalidArgument` naming the option.
    public func setLearning(_ options: LearningOptions) throws(ChorusError) {
        let rows = state.withLock { $0.data.log.count }
        online.setPrivateRows(try learner.configure(options, logRows: rows))
    }

    /// The privacy spent by learning from feedback (`PrivateLearning`): ε at δ over the learner's
    /// private releases; infinite once a slate was learned from without privacy.
    public var learningPrivacySpent: CoordinatorLearner.PrivacySpent { learner.privacySpent }

    /// Closes every open slate (their rewards so far become final and are learned from and logged).
    public func closeSlates() { learner.closeAll() }

    /// The slate log's rows, oldest first (`SlateLogRow`); `drain` empties it.
    public func slateLog(drain: Bool = false) -> [SlateLogRow] { learner.readLog(limit: Int.max, drain: drain).rows }

    /// The oldest `limit` rows of the slate log and how many it holds; `drain` removes the rows returned.
    public func slateLog(limit: Int, drain: Bool) -> (rows: [SlateLogRow], total: Int) { learner.readLog(limit: limit, drain: drain) }

    // MARK: - Snapshots

    /// Writes the engine to `path` atomically (see `FileIO.writeAtomically`).
    /// - Parameter withoutInteractions: keep the interactions out of the file (no log rows, no
    ///   feedback record): the model still serves from it (its seen items are kept, to mask them),
    ///   but an engine loaded from it refuses to fit and withholds them from its own saves too.
    ///   `.invalidArgument` for an engine without a model.
    public func save(path: String, withoutInteractions: Bool = false) throws(ChorusError) {
        try FileIO.writeAtomically(path: path, bytes: snapshotBytes(withoutInteractions: withoutInteractions))
    }

    /// Reads an engine written by `save`, verifying everything it reads.
    public static func load(path: String) throws(ChorusError) -> Engine {
        try load(bytes: FileIO.readAll(path: path))
    }

    func snapshotBytes() -> [UInt8] {
        let contents = state.withLock { s in
            EngineSnapshotCodec.Contents(config: config, data: s.data, model: s.model, parameters: s.model?.parameters ?? s.lastParameters,
                                         interactionsWithheld: s.interactionsWithheld)
        }
        return snapshotBytes(contents, withoutInteractions: false)
    }

    /// The snapshot, with the interactions kept out when asked (`.invalidArgument` without a model).
    func snapshotBytes(withoutInteractions: Bool) throws(ChorusError) -> [UInt8] {
        let contents = state.withLock { s in
            EngineSnapshotCodec.Contents(config: config, data: s.data, model: s.model, parameters: s.model?.parameters ?? s.lastParameters,
                                         interactionsWithheld: s.interactionsWithheld)
        }
        if withoutInteractions, contents.model == nil {
            throw .invalidArgument("a save without interactions keeps the model only, and this engine has none: fit it first")
        }
        return snapshotBytes(contents, withoutInteractions: withoutInteractions)
    }

    private func snapshotBytes(_ contents: EngineSnapshotCodec.Contents, withoutInteractions: Bool) -> [UInt8] {
        // The learner's statistics, taken right after under its own lock.
        var learning = ByteWriter()
        learner.encode(into: &learning)
        return EngineSnapshotCodec.encode(contents, learning: learner.isDefault ? nil : learning.bytes, withoutInteractions: withoutInteractions)
    }

    static func load(bytes: [UInt8]) throws(ChorusError) -> Engine {
        Engine(restoring: try EngineSnapshotCodec.decode(bytes))
    }

    /// The data store and model, read together (a merge reads its shards through this).
    var dataAndModel: (data: DataStore, model: FittedModel?) { state.withLock { ($0.data, $0.model) } }

    /// Whether the engine was loaded from a snapshot saved without its interactions.
    public var interactionsWithheld: Bool { state.withLock { $0.interactionsWithheld } }

    // MARK: - Stats

    public func stats() -> EngineStats {
        let (log, texts, model, facts) = state.withLock { ($0.data.log, $0.data.texts, $0.model, $0.data.facts) }
        let alloc = Allocator.stats()
        return EngineStats(fitted: model != nil, users: log.users.count, items: log.items.count, interactions: log.count,
                           modelUsers: model?.users.count ?? 0, modelItems: model?.items.count ?? 0,
                           modelBytes: model?.modelBytes ?? 0, popularityHalfLifeSeconds: model?.popularityHalfLifeSeconds ?? 0,
                           itemTexts: texts.items.count, userTexts: texts.users.count, itemFacts: facts.count,
                           allocatedBytes: alloc.allocated, residentBytes: alloc.resident)
    }
}
