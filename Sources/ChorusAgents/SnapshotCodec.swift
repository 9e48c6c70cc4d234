import ChorusCore
import ChorusKnowledge

/// The engine's snapshot format: the whole engine (config, data store, fitted model) in one
/// `Snapshot` container, encoded from and decoded into plain values (`Contents`), so it neither
/// knows the engine's locks nor reaches into its state. Sections: "META" (config, fit parameters, model presence), "LOG_" (the
/// log), "FACT" (item facts), "KGST"/"KGEM"/"KGTR" (the knowledge graph and its embeddings), "SCEN"
/// (scenarios), "FDBK" (live feedback's record, `FeedbackRecord`, when there was feedback), "TEXT" (item and user texts with their vectors, when there are any), "HOST" (the host's
/// metadata, when there is any; a snapshot without it loads with none), "PRIV" (the privacy ledger
/// of a model made by private merges, `PrivacyLedger`; absent otherwise), "SEEN" (the model's seen
/// matrix, in a snapshot saved without its interactions: the log then has no row), "MODL" (model shape,
/// agent names and blend weights), "CSEG" (the blends of cold requests, when the fit found any), "A000"... (one per agent).
enum EngineSnapshotCodec {
    /// What a snapshot holds.
    struct Contents {
        var config: EngineConfig
        var data: DataStore
        var model: FittedModel?
        /// The last fit's parameters (the model's when there is one).
        var parameters: FitParameters
        /// The learning coordinator read from an "LRNR" section (nil: none saved).
        var learning: CoordinatorLearner? = nil
        /// Saved without its interactions (a "SEEN" section stands for the model's rows): the model
        /// serves, a fit is refused, and later saves withhold them too.
        var interactionsWithheld = false
    }

    /// 2 added the TEXT section and the content agent; 3 the knowledge-graph sections and the
    /// item-warmth coordinator feature (a schema-2 ranking network is refused with a clear error;
    /// 1 and 2 are otherwise still read).
    static let schema: UInt32 = 3

    /// - Parameter withoutInteractions: keep the interactions out (with a model only, which the caller
    ///   checks): the log keeps its id tables and no row, the feedback record is dropped, and the model's
    ///   seen matrix (what serving masks and folds in from) is written as "SEEN", its trained rows as 0.
    static func encode(_ contents: Contents, learning: [UInt8]? = nil, withoutInteractions: Bool = false) -> [UInt8] {
        let withhold = (withoutInteractions || contents.interactionsWithheld) && contents.model != nil
        let (config, model, lastParameters) = (contents.config, contents.model, contents.parameters)
        let (log, texts, scenarios, facts, knowledgeGraph) = (contents.data.log, contents.data.texts, contents.data.scenarios,
                                                              contents.data.facts, contents.data.knowledgeGraph)
        var meta = ByteWriter()
        meta.write(schema)
        meta.write(config.popularityHalfLifeSeconds)
        let p = model?.parameters ?? lastParameters
        meta.write(UInt32(p.factors)); meta.write(p.regularization); meta.write(p.alpha)
        meta.write(UInt32(p.iterations)); meta.write(UInt32(p.threads)); meta.write(p.seed); meta.write(p.validationFraction)
        meta.write(UInt8(model == nil ? 0 : 1))
        // Schema 2: the encoder choice, so a loaded engine encodes new texts as the saved ones were.
        meta.write(UInt8(config.hashingEncoder ? 1 : 0))
        meta.write(UInt32(p.candidatesPerAgent))

        var l = ByteWriter()
        l.writeArray(log.users.ids); l.writeArray(log.items.ids)
        if withhold {
            l.writeArray([Int32]()); l.writeArray([Int32]()); l.writeArray([Float]()); l.writeArray([Int64]()); l.writeArray([UInt16]())
        } else {
            l.writeArray(log.userIndex); l.writeArray(log.itemIndex)
            l.writeArray(log.weights); l.writeArray(log.timestamps)
            l.writeArray(log.scenarios)
        }

        var sections = [Snapshot.Section(tag: "META", payload: meta.bytes), Snapshot.Section(tag: "LOG_", payload: l.bytes)]
        if !facts.isEmpty {
            var fw = ByteWriter()
            facts.encode(into: &fw)
            sections.append(Snapshot.Section(tag: "FACT", payload: fw.bytes))
        }
        // The knowledge graph in its own sections ("KGST", "KGEM", "KGTR": as a standalone graph file).
        if knowledgeGraph.counts.triples > 0 { sections += knowledgeGraph.sections() }
        if scenarios.count > 1 {
            var sw = ByteWriter()
            scenarios.encode(into: &sw)
            sections.append(Snapshot.Section(tag: "SCEN", payload: sw.bytes))
        }
        // Live feedback's own state (its positive events are log rows): absent when there was none,
        // so snapshots without feedback are as before and older ones load with an empty record.
        if !contents.data.feedback.isEmpty, !withhold {
            var fw = ByteWriter()
            contents.data.feedback.encode(into: &fw)
            sections.append(Snapshot.Section(tag: "FDBK", payload: fw.bytes))
        }
        if !texts.isEmpty {
            var t = ByteWriter()
            texts.encode(into: &t)
            sections.append(Snapshot.Section(tag: "TEXT", payload: t.bytes))
        }
        if !contents.data.metadata.isEmpty {
            var h = ByteWriter()
            contents.data.metadata.encode(into: &h)
            sections.append(Snapshot.Section(tag: "HOST", payload: h.bytes))
        }
        if let learning { sections.append(Snapshot.Section(tag: "LRNR", payload: learning)) }
        if let model {
            var w = ByteWriter()
            w.write(UInt64(withhold ? 0 : model.trainedRows)); w.write(UInt64(model.users.count)); w.write(UInt64(model.items.count))
            w.write(model.popularityHalfLifeSeconds)
            w.write(UInt32(model.agents.count))
            for (a, agent) in model.agents.enumerated() { w.write(agent.name); w.write(model.coordinator.weights[a]) }
            w.write(UInt32(model.coordinator.candidatesPerAgent))
            w.write(UInt8(model.coordinator.ranker == nil ? 0 : 1))
            model.coordinator.ranker?.encode(into: &w)
            w.write(model.coordinator.queryWeight)
            sections.append(Snapshot.Section(tag: "MODL", payload: w.bytes))
            // The cold requests' blends in a section of their own: a snapshot without it loads with none.
            if !model.coordinator.coldWeights.isEmpty {
                var cw = ByteWriter()
                let kinds = ColdRequest.allCases.filter { model.coordinator.coldWeights[$0] != nil }
                cw.write(UInt32(kinds.count))
                for kind in kinds { cw.write(kind.rawValue); cw.writeArray(model.coordinator.coldWeights[kind]!) }
                sections.append(Snapshot.Section(tag: "CSEG", payload: cw.bytes))
            }
            if withhold {
                var sw = ByteWriter()
                var rows = [Int32]()
                rows.reserveCapacity(model.seen.nonZeros)
                for u in 0..<model.seen.rows { for _ in model.seen.rowStart[u]..<model.seen.rowStart[u + 1] { rows.append(Int32(u)) } }
                sw.writeArray(rows); sw.writeArray(model.seen.colIndex); sw.writeArray(model.seen.values)
                sections.append(Snapshot.Section(tag: "SEEN", payload: sw.bytes))
            }
            // The privacy ledger of a model made by merges (absent otherwise: older snapshots load with none).
            if let ledger = model.privacy {
                var pw = ByteWriter()
                ledger.encode(into: &pw)
                sections.append(Snapshot.Section(tag: "PRIV", payload: pw.bytes))
            }
            for (a, agent) in model.agents.enumerated() {
                var aw = ByteWriter()
                agent.encode(into: &aw)
                sections.append(Snapshot.Section(tag: agentTag(a), payload: aw.bytes))
            }
        }
        return Snapshot.encode(sections)
    }

    private static func agentTag(_ a: Int) -> String {
        let d = String(a)
        return "A" + String(repeating: "0", count: 3 - d.count) + d
    }

    /// Reads a snapshot, verifying everything it reads.
    static func decode(_ bytes: [UInt8]) throws(ChorusError) -> Contents {
        let sections = try Snapshot.decode(bytes)
        func section(_ tag: String) throws(ChorusError) -> ByteReader {
            guard let r = sections[tag] else { throw .format("snapshot has no '\(tag)' section") }
            return ByteReader(bytes, range: r, context: "snapshot section '\(tag)'")
        }
        var meta = try section("META")
        let schema = try meta.read(UInt32.self)
        guard schema >= 1 && schema <= Self.schema else {
            throw .unsupportedVersion("engine snapshot format version \(schema) is not supported (this library reads versions 1 to \(Self.schema))")
        }
        var config = EngineConfig(popularityHalfLifeSeconds: try meta.read(Int64.self))
        var p = FitParameters()
        p.factors = Int(try meta.read(UInt32.self)); p.regularization = try meta.readFloat(); p.alpha = try meta.readFloat()
        p.iterations = Int(try meta.read(UInt32.self)); p.threads = Int(try meta.read(UInt32.self)); p.seed = try meta.read(UInt64.self)
        p.validationFraction = try meta.readFloat()
        let hasModel = try meta.read(UInt8.self)
        let hashing = schema >= 2 ? try meta.read(UInt8.self) : 0
        config.hashingEncoder = hashing == 1
        if schema >= 2 { p.candidatesPerAgent = Int(try meta.read(UInt32.self)) }
        guard meta.isAtEnd, hasModel <= 1, hashing <= 1 else { throw .format("snapshot section 'META' is malformed") }
        do { try p.validate() } catch { throw .format("snapshot holds invalid fit parameters: \(error.message)") }

        var l = try section("LOG_")
        let userIds = try l.readArray(Int64.self), itemIds = try l.readArray(Int64.self)
        let ui = try l.readArray(Int32.self), ii = try l.readArray(Int32.self)
        let w = try l.readArray(Float.self), ts = try l.readArray(Int64.self)
        let sc: [UInt16]? = schema >= 2 ? try l.readArray(UInt16.self) : nil
        guard l.isAtEnd else { throw .format("snapshot section 'LOG_' has trailing bytes") }
        var scenarios = ScenarioTable()
        if sections["SCEN"] != nil {
            var sr = try section("SCEN")
            scenarios = try ScenarioTable.decode(&sr)
            guard sr.isAtEnd else { throw .format("snapshot section 'SCEN' has trailing bytes") }
        }
        var facts = ItemFacts()
        if sections["FACT"] != nil {
            var fr = try section("FACT")
            facts = try ItemFacts.decode(&fr)
            guard fr.isAtEnd else { throw .format("snapshot section 'FACT' has trailing bytes") }
        }
        var knowledgeGraph = KnowledgeGraph()
        if sections["KGST"] != nil {
            knowledgeGraph = try KnowledgeGraph.load(sections: sections, of: bytes)
        } else if !facts.isEmpty {
            // Before schema 3 the facts were the whole graph.
            let f = facts.facts
            try knowledgeGraph.add(heads: f.map { KnowledgeEmbeddingAgent.entityName(item: $0.item) }, relations: f.map(\.relation), tails: f.map(\.entity))
        }
        let log = try InteractionLog(users: IdIndex(ids: userIds), items: IdIndex(ids: itemIds),
                                     userIndex: ui, itemIndex: ii, weights: w, timestamps: ts,
                                     scenarios: sc, scenarioCount: scenarios.count)
        var texts = TextCatalogue()
        if sections["TEXT"] != nil {
            var t = try section("TEXT")
            texts = try TextCatalogue.decode(&t)
            guard t.isAtEnd else { throw .format("snapshot section 'TEXT' has trailing bytes") }
        }
        var metadata = HostMetadata()
        if sections["HOST"] != nil {
            var h = try section("HOST")
            metadata = try HostMetadata.decode(&h)
            guard h.isAtEnd else { throw .format("snapshot section 'HOST' has trailing bytes") }
        }
        var feedback = FeedbackRecord()
        if sections["FDBK"] != nil {
            var fr = try section("FDBK")
            feedback = try FeedbackRecord.decode(&fr, logCount: log.count)
            guard fr.isAtEnd else { throw .format("snapshot section 'FDBK' has trailing bytes") }
        }
        var model: FittedModel? = nil
        var withheld = false
        if hasModel == 1 {
            var m = try section("MODL")
            // Compared as stored (any UInt64) before they become Ints.
            let rows64 = try m.read(UInt64.self), users64 = try m.read(UInt64.self), items64 = try m.read(UInt64.self)
            guard rows64 <= UInt64(log.count), users64 <= UInt64(log.users.count), items64 <= UInt64(log.items.count), users64 >= 1, items64 >= 1 else {
                throw .format("snapshot model shape (\(rows64) rows, \(users64) users, \(items64) items) does not fit its log")
            }
            let rows = Int(rows64), nUsers = Int(users64), nItems = Int(items64)
            let halfLife = try m.read(Int64.self)
            let count = Int(try m.read(UInt32.self))
            guard count >= 1, count <= 64 else { throw .format("snapshot agent count \(count) is implausible") }
            var agents: [RecommenderAgent] = [], weights: [Float] = []
            for a in 0..<count {
                let name = try m.readString(maxBytes: Limits.maxNameBytes)
                let weight = try m.readFloat()
                guard let factory = AgentRegistry.decoder(named: name, AgentRegistry.Inputs(parameters: p, halfLife: halfLife)) else {
                    throw .format("snapshot agent \(a) is '\(name)', which this library does not know")
                }
                guard !agents.contains(where: { $0.name == name }) else { throw .format("snapshot agent '\(name)' appears twice") }
                guard weight.isFinite, weight >= 0, weight <= 1 else { throw .format("snapshot blend weight \(weight) is invalid") }
                var ar = try section(agentTag(a))
                agents.append(try factory.decode(&ar, AgentDecodeContext(userCount: nUsers, itemCount: nItems, previous: agents)))
                guard ar.isAtEnd else { throw .format("snapshot section '\(agentTag(a))' has trailing bytes") }
                weights.append(weight)
            }
            var quota = p.candidatesPerAgent
            var ranker: RankingMLP? = nil
            var queryWeight: Float = 0.5
            if schema >= 2 {
                quota = Int(try m.read(UInt32.self))
                guard quota >= 1, quota <= 100_000 else { throw .format("snapshot candidates per agent \(quota) is invalid") }
                switch try m.read(UInt8.self) {
                case 0: break
                case 1:
                    // Schema 3 added the item-warmth feature: an older network reads one input fewer.
                    guard schema >= 3 else {
                        throw .unsupportedVersion("engine schema \(schema) holds a ranking network from before the item-warmth feature; refit the engine with this library")
                    }
                    ranker = try RankingMLP.decode(&m)
                    guard ranker!.inputs == Candidates.Features(agents: agents.count).count else {
                        throw .format("snapshot ranking network has \(ranker!.inputs) inputs for \(agents.count) agents")
                    }
                default: throw .format("snapshot ranking network flag is invalid")
                }
                queryWeight = try m.readFloat()
                guard queryWeight.isFinite, queryWeight >= 0, queryWeight <= 1 else { throw .format("snapshot query weight \(queryWeight) is invalid") }
            }
            guard agents.contains(where: { $0.role.contains(.fallback) }) else { throw .format("snapshot model has no fallback agent (popularity)") }
            guard m.isAtEnd else { throw .format("snapshot section 'MODL' has trailing bytes") }
            var seen: SparseMatrix
            if sections["SEEN"] != nil {
                // Saved without its interactions: the model's seen matrix stands for its rows.
                var sr = try section("SEEN")
                let su = try sr.readArray(Int32.self), si = try sr.readArray(Int32.self), sv = try sr.readArray(Float.self)
                guard sr.isAtEnd, su.count == si.count, su.count == sv.count, rows == 0,
                      su.allSatisfy({ $0 >= 0 && Int($0) < nUsers }), si.allSatisfy({ $0 >= 0 && Int($0) < nItems }),
                      sv.allSatisfy({ $0.isFinite && $0 > 0 }) else {
                    throw .format("snapshot section 'SEEN' is malformed")
                }
                seen = SparseMatrix(rows: nUsers, cols: nItems, rowIndex: su, colIndex: si, values: sv)
                withheld = true
            } else {
                let prefixUsers = Array(log.userIndex.prefix(rows)), prefixItems = Array(log.itemIndex.prefix(rows))
                guard prefixUsers.allSatisfy({ Int($0) < nUsers }), prefixItems.allSatisfy({ Int($0) < nItems }) else {
                    throw .format("snapshot model rows refer to users or items outside the model")
                }
                seen = SparseMatrix(rows: nUsers, cols: nItems, rowIndex: prefixUsers, colIndex: prefixItems, values: Array(log.weights.prefix(rows)))
            }
            var coldWeights: [ColdRequest: [Float]] = [:]
            if sections["CSEG"] != nil {
                var c = try section("CSEG")
                let n = try c.read(UInt32.self)
                guard n <= UInt32(ColdRequest.allCases.count) else { throw .format("snapshot has \(n) cold-request blends") }
                for _ in 0..<n {
                    let name = try c.readString(maxBytes: 64)
                    guard let kind = ColdRequest(rawValue: name), coldWeights[kind] == nil else { throw .format("snapshot cold-request blend '\(name)' is unknown or repeated") }
                    let w = try c.readArray(Float.self, maxCount: agents.count)
                    guard w.count == agents.count, w.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                        throw .format("snapshot cold-request blend '\(name)' has \(w.count) weights for \(agents.count) agents, or a negative or non-finite one")
                    }
                    coldWeights[kind] = w
                }
                guard c.isAtEnd else { throw .format("snapshot section 'CSEG' has trailing bytes") }
            }
            let coordinator = CoordinatorModel(weights: weights, ranker: ranker, queryWeight: queryWeight, candidatesPerAgent: quota, report: "",
                                               coldWeights: coldWeights)
            var privacy: PrivacyLedger? = nil
            if sections["PRIV"] != nil {
                var pr = try section("PRIV")
                privacy = try PrivacyLedger.decode(&pr)
                guard pr.isAtEnd else { throw .format("snapshot section 'PRIV' has trailing bytes") }
            }
            model = FittedModel(users: try IdIndex(ids: Array(userIds.prefix(nUsers))), items: try IdIndex(ids: Array(itemIds.prefix(nItems))),
                                trainedRows: rows, seen: seen, agents: agents, coordinator: coordinator, parameters: p,
                                popularityHalfLifeSeconds: halfLife, privacy: privacy)
        }
        let data = DataStore(log: log, texts: texts, scenarios: scenarios, facts: facts, knowledgeGraph: knowledgeGraph, metadata: metadata,
                             feedback: feedback)
        var learning: CoordinatorLearner? = nil
        if sections["LRNR"] != nil {
            var r = try section("LRNR")
            let learner = CoordinatorLearner()
            try learner.decode(from: &r)
            guard r.isAtEnd else { throw .format("snapshot section 'LRNR' has trailing bytes") }
            learning = learner
        }
        return Contents(config: config, data: data, model: model, parameters: p, learning: learning, interactionsWithheld: withheld)
    }
}
