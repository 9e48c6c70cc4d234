import ChorusCore
import Synchronization

/// A knowledge graph a host builds and trains: triples by name, a trained embedding model, saved
/// and loaded as one snapshot file. The object behind the C API's `chorus_kg` and Python's
/// `chorus.KnowledgeGraph`. Thread-safe: one lock around the state; training works on a copy of
/// the triples and publishes the model when done (a cancelled training keeps the previous model).
public final class KnowledgeGraph: @unchecked Sendable {
    struct State {
        var store = TripleStore()
        var model: KnowledgeGraphModel?
        /// Triples in the store when the model was trained (the store only grows).
        var trainedTriples = 0
    }
    let state = Lock(State())
    /// Trainings run one at a time; one called from its own progress callback is an error.
    let trainings = SerialGate(call: "train")

    public init() {}

    public var counts: (entities: Int, relations: Int, triples: Int) {
        state.withLock { ($0.store.entityCount, $0.store.relationCount, $0.store.count) }
    }

    public var isTrained: Bool { state.withLock { $0.model != nil } }

    /// Whether the model was trained on every triple the graph holds now.
    public var isTrainedOnEveryTriple: Bool { state.withLock { $0.model != nil && $0.trainedTriples == $0.store.count } }

    /// The trained model and the names it was trained with (nil before training).
    public var trained: (store: TripleStore, model: KnowledgeGraphModel)? {
        state.withLock { s in s.model.map { (s.store, $0) } }
    }

    /// Adds triples by name; repeats are skipped. Validated whole: an empty or over-long name
    /// (`Limits.maxNameBytes`) adds nothing.
    /// - Returns: how many were new.
    @discardableResult
    public func add(heads: [String], relations: [String], tails: [String]) throws(ChorusError) -> Int {
        guard heads.count == relations.count, heads.count == tails.count else {
            throw .invalidArgument("\(heads.count) heads, \(relations.count) relations and \(tails.count) tails differ in length")
        }
        for i in heads.indices {
            try Limits.checkName(heads[i], "the head of triple \(i)")
            try Limits.checkName(relations[i], "the relation of triple \(i)")
            try Limits.checkName(tails[i], "the tail of triple \(i)")
        }
        return try state.withLock { (s) throws(ChorusError) -> Int in
            var store = s.store
            var added = 0
            for i in heads.indices where try store.add(head: heads[i], relation: relations[i], tail: tails[i]) { added += 1 }
            s.store = store
            return added
        }
    }

    /// Adds the triples of a tab-separated file (head, relation, tail per line; CRLF accepted).
    /// - Returns: how many were new. A malformed line is an error naming its line number.
    @discardableResult
    public func load(tsv path: String) throws(ChorusError) -> Int {
        let bytes = try FileIO.readAll(path: path)
        return try state.withLock { (s) throws(ChorusError) -> Int in
            var store = s.store
            let before = store.count
            try TripleFile.append(bytes: bytes, path: path, to: &store)
            s.store = store
            return store.count - before
        }
    }

    /// Trains a model on every triple (see `KGTrainer.fit`); `progress(fraction)` returns true to cancel.
    public func train(_ p: KGTrainingParameters, progress: ((Double) -> Bool)? = nil) throws(ChorusError) {
        try trainings.run { () throws(ChorusError) in
            let store = state.withLock { $0.store }
            let model = try KGTrainer.fit(store, parameters: p, progress: { r in
                progress?(Double(r.epoch + 1) / Double(max(1, r.epochs))) ?? false
            })
            state.withLock { $0.model = model; $0.trainedTriples = store.count }
        }
    }

    /// Filtered link prediction on the triples of a file (both directions; entities or relations
    /// unknown to the graph are skipped and counted).
    public func evaluate(tsv path: String, threads: Int = 0) throws(ChorusError) -> (result: LinkPrediction.Result, skipped: Int) {
        let (store, model) = state.withLock { ($0.store, $0.model) }
        guard let model else { throw .notFitted("the knowledge graph has no trained model yet: call train first") }
        let (all, report) = try TripleFile.loadSplit(path: path, against: store)
        // Names added after the last training are known to the graph but not to its model.
        let triples = all.filter { model.knows($0) }
        guard !triples.isEmpty else { throw .invalidArgument("'\(path)' has no triple whose entities and relation the trained model knows") }
        let result = try LinkPrediction.evaluate(model, triples: triples, known: KnownTriples(store: store, extra: [triples]), threads: threads)
        return (result, report.unknownEntity + report.unknownRelation + all.count - triples.count)
    }

    /// An entity's (or relation's) trained vector.
    /// - Throws: `.notFitted`; `.notFound` for a name the graph does not know.
    public func vector(entity name: String) throws(ChorusError) -> [Float] {
        let (store, model) = state.withLock { ($0.store, $0.model) }
        guard let model else { throw .notFitted("the knowledge graph has no trained model yet: call train first") }
        guard let id = store.entities.id(of: name) else { throw .notFound("unknown entity '\(name)'") }
        guard Int(id) < model.entityCount else { throw .notFitted("entity '\(name)' was added after the last training: train again for its vector") }
        return try model.entityVector(id)
    }

    public func vector(relation name: String) throws(ChorusError) -> [Float] {
        let (store, model) = state.withLock { ($0.store, $0.model) }
        guard let model else { throw .notFitted("the knowledge graph has no trained model yet: call train first") }
        guard let id = store.relations.id(of: name) else { throw .notFound("unknown relation '\(name)'") }
        guard Int(id) < model.relationCount else { throw .notFitted("relation '\(name)' was added after the last training: train again for its vector") }
        return try model.relationVector(id)
    }

    // MARK: - Snapshot: "KGST" (triples, names), "KGEM" (the model, when trained), "KGTR" (the
    // number of triples it was trained on). The same sections live inside an engine snapshot.

    public func snapshotBytes() -> [UInt8] { Snapshot.encode(sections()) }

    /// The graph's snapshot sections, for a container that holds other sections too.
    public func sections() -> [Snapshot.Section] {
        let (store, model, trained) = state.withLock { ($0.store, $0.model, $0.trainedTriples) }
        var w = ByteWriter()
        store.encode(into: &w)
        var sections = [Snapshot.Section(tag: "KGST", payload: w.bytes)]
        if let model {
            sections.append(Snapshot.Section(tag: "KGEM", payload: model.encoded()))
            var t = ByteWriter()
            t.write(UInt64(trained))
            sections.append(Snapshot.Section(tag: "KGTR", payload: t.bytes))
        }
        return sections
    }

    public func save(path: String) throws(ChorusError) { try FileIO.writeAtomically(path: path, bytes: snapshotBytes()) }

    public static func load(path: String) throws(ChorusError) -> KnowledgeGraph {
        try load(bytes: try FileIO.readAll(path: path))
    }

    public static func load(bytes: [UInt8]) throws(ChorusError) -> KnowledgeGraph {
        let sections = try Snapshot.decode(bytes)
        guard sections["KGST"] != nil else { throw .format("not a knowledge-graph snapshot (no 'KGST' section)") }
        return try load(sections: sections, of: bytes)
    }

    /// Reads the graph from the "KG.." sections of a decoded snapshot (see `sections()`).
    public static func load(sections: [String: Range<Int>], of bytes: [UInt8]) throws(ChorusError) -> KnowledgeGraph {
        guard let ts = sections["KGST"] else { throw .format("the snapshot has no knowledge-graph section 'KGST'") }
        var r = ByteReader(bytes, range: ts, context: "knowledge-graph triples")
        let store = try TripleStore.decode(from: &r)
        guard r.isAtEnd else { throw .format("knowledge-graph triples have trailing bytes") }
        var model: KnowledgeGraphModel? = nil
        if let md = sections["KGEM"] {
            model = try KnowledgeGraphModel.decode(Array(bytes[md]))
            // Names are interned in order, so the model (trained before any later additions)
            // covers a prefix of the graph's entities and relations.
            guard model!.entityCount <= store.entityCount, model!.relationCount <= store.relationCount else {
                throw .format("the saved model has \(model!.entityCount) entities and \(model!.relationCount) relations; its graph \(store.entityCount) and \(store.relationCount)")
            }
        }
        var trained = model == nil ? 0 : store.count
        if model != nil, let tr = sections["KGTR"] {
            var r = ByteReader(bytes, range: tr, context: "knowledge-graph training count")
            let n = try r.read(UInt64.self)
            guard n <= UInt64(store.count), r.isAtEnd else { throw .format("the knowledge-graph training count \(n) exceeds its \(store.count) triples") }
            trained = Int(n)
        }
        let kg = KnowledgeGraph()
        kg.state.withLock { $0.store = store; $0.model = model; $0.trainedTriples = trained }
        return kg
    }
}
