import ChorusCore
import ChorusKnowledge

/// What the host has given the engine: interactions, item and user texts (with their vectors),
/// item facts, scenarios and the knowledge graph. A value: the engine keeps one behind its lock, a
/// fit trains on a copy (copy-on-write, so copying is cheap), a snapshot encodes one.
///
/// Every mutation validates its whole input first: on error nothing changes.
struct DataStore: Sendable {
    var log = InteractionLog()
    var texts = TextCatalogue()
    var scenarios = ScenarioTable()
    var facts = ItemFacts()
    /// The engine's knowledge graph: the item facts as triples ("item:<id>", relation, entity)
    /// plus whatever the host adds, and its trained embeddings (the "kge" agent's vectors). A
    /// shared object with its own lock: the host trains it through its own handle.
    var knowledgeGraph = KnowledgeGraph()
    /// The host's named byte strings (`HostMetadata`), saved in the snapshot.
    var metadata = HostMetadata()
    /// What live feedback left besides its log rows: which rows it appended, the negative rewards
    /// per (user, item), the count of each event type (`FeedbackRecord`).
    var feedback = FeedbackRecord()

    /// Appends a batch of interactions in `scenario` (nil = the default).
    /// - Throws: `.notFound` for an undefined scenario, and what `InteractionLog.append` throws.
    mutating func add(users: UnsafeBufferPointer<Int64>, items: UnsafeBufferPointer<Int64>, weights: UnsafeBufferPointer<Float>?,
                      timestamps: UnsafeBufferPointer<Int64>?, scenario: String?) throws(ChorusError) {
        let s = try scenarios.resolve(scenario)
        try log.append(users: users, items: items, weights: weights, timestamps: timestamps, scenario: UInt16(s))
    }

    mutating func add(_ batch: [Interaction], scenario: String?) throws(ChorusError) {
        let s = try scenarios.resolve(scenario)
        try log.append(batch, scenario: UInt16(s))
    }

    /// Appends a validated feedback batch: its positive events to the log (weight = reward, in
    /// `scenario`), its negative ones and its counts to the feedback record. On error nothing changes.
    /// - Returns: the log row of the batch's first positive event.
    mutating func addFeedback(_ batch: FeedbackBatch, scenario: String?) throws(ChorusError) -> Int {
        let s = try scenarios.resolve(scenario)
        let first = log.count
        if !batch.users.isEmpty {
            try batch.users.withUnsafeBufferPointer { (u) throws(ChorusError) in
                try batch.items.withUnsafeBufferPointer { (i) throws(ChorusError) in
                    try batch.weights.withUnsafeBufferPointer { (w) throws(ChorusError) in
                        try batch.timestamps.withUnsafeBufferPointer { (t) throws(ChorusError) in
                            try log.append(users: u, items: i, weights: w, timestamps: t, scenario: UInt16(s))
                        }
                    }
                }
            }
        }
        feedback.record(batch, firstRow: first)
        return first
    }

    /// Sets or removes (empty text) texts with their vectors (one row per non-empty text); items
    /// with a text join the catalogue.
    mutating func setTexts(_ kind: TextCatalogue.Kind, ids: [Int64], texts newTexts: [String], vectors: [Float],
                           encoderName: String, dimension: Int) throws(ChorusError) {
        if kind == .item { try InteractionLog.checkRoom(0, log.items.count, adding: ids.count) }  // before any change
        try texts.set(kind, ids: ids, texts: newTexts, vectors: vectors, encoderName: encoderName, dimension: dimension)
        if kind == .item { try log.register(items: zip(ids, newTexts).filter { !$0.1.isEmpty }.map(\.0)) }
    }

    /// Adds facts about items (and the same triples to the knowledge graph); returns how many were new.
    mutating func addItemFacts(items: [Int64], relations: [String], entities: [String]) throws(ChorusError) -> Int {
        try InteractionLog.validate(itemIds: items)
        try InteractionLog.checkRoom(0, log.items.count, adding: items.count)  // before any change
        var updated = facts
        let added = try updated.add(items: items, relations: relations, entities: entities)
        try knowledgeGraph.add(heads: items.map(KnowledgeEmbeddingAgent.entityName), relations: relations, tails: entities)
        facts = updated
        try log.register(items: items)
        return added
    }

    mutating func defineScenario(_ name: String, description: String, vector: [Float]) throws(ChorusError) {
        try scenarios.define(name, description: description, vector: vector)
    }

    /// The agents the next fit would train, in blend order.
    var plannedAgents: [String] { AgentRegistry.planned(self) }
}
