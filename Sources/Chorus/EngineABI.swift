#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CChorus
import ChorusAgents
import ChorusCore

// The engine's C entry points: validate -> convert -> call the core -> map errors.
// Nothing here decides anything about recommendation; see Sources/ChorusAgents.

@c @implementation public func chorus_engine_params_init(_ params: UnsafeMutablePointer<chorus_engine_params>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try chorus_engine_params.initialise(params, "params")
    }
}

@c @implementation public func chorus_engine_create(_ params: UnsafePointer<chorus_engine_params>!, _ outEngine: UnsafeMutablePointer<OpaquePointer?>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let out = try Check.notNull(outEngine, "out_engine")
        out.pointee = nil
        var config = EngineConfig()
        if let params {
            let c = try chorus_engine_params.read(params)
            let h = c.popularity_half_life_seconds
            config.popularityHalfLifeSeconds = h < 0 ? -1 : h
            let flags = c.flags
            let known = UInt32(CHORUS_ENGINE_REQUIRE_ENCODER | CHORUS_ENGINE_HASHING_ENCODER)
            guard flags & ~known == 0 else { throw .invalidArgument("unknown bits in flags: \(flags)") }
            config.requireEncoder = flags & UInt32(CHORUS_ENGINE_REQUIRE_ENCODER) != 0
            config.hashingEncoder = flags & UInt32(CHORUS_ENGINE_HASHING_ENCODER) != 0
            guard !(config.requireEncoder && config.hashingEncoder) else {
                throw .invalidArgument("flags ask both to require the transformer encoder and to use the hashing encoder")
            }
            config.encoderPath = try c.encoder_path.map { (p) throws(ChorusError) in try Check.path(p, "encoder_path") }
        }
        let engine = Engine(config: config)
        // A required encoder must be there now, not at the first text call.
        if config.requireEncoder || config.encoderPath != nil { _ = try engine.encoder() }
        out.pointee = Handles.make(engine)
    }
}

@c @implementation public func chorus_engine_free(_ engine: OpaquePointer!) {
    Handles.release(engine, as: Engine.self, "engine")
}

/// The shared body of the two add-interactions entry points.
private func addInteractions(_ engine: OpaquePointer?, _ scenario: UnsafePointer<CChar>?, _ userIds: UnsafePointer<Int64>?,
                             _ itemIds: UnsafePointer<Int64>?, _ weights: UnsafePointer<Float>?, _ timestamps: UnsafePointer<Int64>?,
                             _ n: Int) throws(ChorusError) {
    let e = try Handles.engine(engine)
    let u = try Check.notNull(userIds, "user_ids"), i = try Check.notNull(itemIds, "item_ids")
    let n = try Check.count(n, "n")
    guard n > 0 else { throw .invalidArgument("n is 0: nothing to add") }
    try e.add(users: UnsafeBufferPointer(start: u, count: n), items: UnsafeBufferPointer(start: i, count: n),
              weights: weights.map { UnsafeBufferPointer(start: $0, count: n) },
              timestamps: timestamps.map { UnsafeBufferPointer(start: $0, count: n) },
              scenario: try scenario.map { (s) throws(ChorusError) in try Check.text(s, "scenario", maxBytes: Limits.maxScenarioNameBytes) })
}

@c @implementation public func chorus_engine_add_interactions(_ engine: OpaquePointer!, _ userIds: UnsafePointer<Int64>!, _ itemIds: UnsafePointer<Int64>!,
                                                           _ weights: UnsafePointer<Float>!, _ timestamps: UnsafePointer<Int64>!, _ n: Int) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in try addInteractions(engine, nil, userIds, itemIds, weights, timestamps, n) }
}

@c @implementation public func chorus_engine_add_scenario_interactions(_ engine: OpaquePointer!, _ scenario: UnsafePointer<CChar>!,
                                                                    _ userIds: UnsafePointer<Int64>!, _ itemIds: UnsafePointer<Int64>!,
                                                                    _ weights: UnsafePointer<Float>!, _ timestamps: UnsafePointer<Int64>!,
                                                                    _ n: Int) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in try addInteractions(engine, scenario, userIds, itemIds, weights, timestamps, n) }
}

@c @implementation public func chorus_engine_define_scenario(_ engine: OpaquePointer!, _ name: UnsafePointer<CChar>!,
                                                          _ description: UnsafePointer<CChar>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        try e.defineScenario(try Check.string(name, "name", maxBytes: Limits.maxScenarioNameBytes),
                             description: try Check.string(description, "description", maxBytes: Limits.maxTextBytes))
    }
}

@c @implementation public func chorus_fit_params_init(_ params: UnsafeMutablePointer<chorus_fit_params>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try chorus_fit_params.initialise(params, "params")
    }
}

@c @implementation public func chorus_fit_params_init_sized(_ params: UnsafeMutablePointer<chorus_fit_params>!, _ structSize: Int) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try chorus_fit_params.initialise(params, "params", size: structSize)
    }
}

@c @implementation public func chorus_engine_fit(_ engine: OpaquePointer!, _ params: UnsafePointer<chorus_fit_params>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        let (p, progress) = try fitParameters(params)
        try e.fit(p, progress: progress)
    }
}

/// A fit's parameters and progress callback from its C struct (NULL = the defaults).
func fitParameters(_ params: UnsafePointer<chorus_fit_params>?) throws(ChorusError) -> (FitParameters, ((String, Double) -> Bool)?) {
    var p = FitParameters()
    var progress: ((String, Double) -> Bool)? = nil
    if let params {
        let c = try chorus_fit_params.read(params)
        if c.factors != 0 { p.factors = Int(c.factors) }
        if c.regularization != 0 { p.regularization = c.regularization }
        if c.alpha != 0 { p.alpha = c.alpha }
        if c.iterations != 0 { p.iterations = Int(c.iterations) }
        p.threads = Int(c.threads)
        if c.seed != 0 { p.seed = c.seed }
        if c.validation_fraction != 0 { p.validationFraction = c.validation_fraction }
        if c.validation_fraction.isNaN || c.regularization.isNaN || c.alpha.isNaN {
            throw .invalidArgument("chorus_fit_params has a NaN field")
        }
        if let a = c.agents {
            let list = try Check.text(a, "agents", maxBytes: Limits.maxTextBytes)
            // "als, bpr" as well as "als,bpr": spaces around a name are not part of it.
            if !list.isEmpty { p.agents = list.split(separator: ",", omittingEmptySubsequences: false).map { String($0.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) } }
        }
        p.bprEpochs = Int(c.bpr_epochs)
        if let fn = c.progress {
            let user = c.progress_user_data
            progress = { stage, fraction in stage.withCString { fn($0, fraction, user) != 0 } }
        }
    }
    return (p, progress)
}

@c @implementation public func chorus_recommend_params_init(_ params: UnsafeMutablePointer<chorus_recommend_params>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try chorus_recommend_params.initialise(params, "params")
    }
}

@c @implementation public func chorus_recommend_params_init_sized(_ params: UnsafeMutablePointer<chorus_recommend_params>!,
                                                               _ structSize: Int) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try chorus_recommend_params.initialise(params, "params", size: structSize)
    }
}

/// Converts recommend params to core options (NULL = defaults). `users`: the call's user count,
/// the length of request_ids (nil: a call that serves no slate, explain or similar items, which
/// ignores request_ids).
private func options(_ params: UnsafePointer<chorus_recommend_params>?, users: Int? = nil) throws(ChorusError) -> RecommendOptions {
    var o = RecommendOptions()
    guard let params else { return o }
    let c = try chorus_recommend_params.read(params)
    guard c.flags & ~UInt32(CHORUS_RECOMMEND_INCLUDE_SEEN) == 0 else { throw .invalidArgument("unknown bits in flags: \(c.flags)") }
    o.includeSeen = c.flags & UInt32(CHORUS_RECOMMEND_INCLUDE_SEEN) != 0
    let nAllow = try Check.count(c.n_allow, "n_allow"), nDeny = try Check.count(c.n_deny, "n_deny")
    if let a = c.allow_items {
        o.allow = Set(UnsafeBufferPointer(start: a, count: nAllow))
    } else if c.n_allow != 0 {
        throw .invalidArgument("allow_items is NULL but n_allow is \(c.n_allow)")
    }
    if let d = c.deny_items {
        o.deny = Set(UnsafeBufferPointer(start: d, count: nDeny))
    } else if c.n_deny != 0 {
        throw .invalidArgument("deny_items is NULL but n_deny is \(c.n_deny)")
    }
    if let a = c.agent { o.agent = try Check.text(a, "agent", maxBytes: Limits.maxNameBytes) }
    if let q = c.query { o.query = try Check.text(q, "query", maxBytes: Limits.maxTextBytes) }
    let nHistory = try Check.count(c.n_history, "n_history")
    if let h = c.history_items {
        o.history = Array(UnsafeBufferPointer(start: h, count: nHistory))
    } else if c.n_history != 0 {
        throw .invalidArgument("history_items is NULL but n_history is \(c.n_history)")
    }
    guard c.diversity.isFinite, c.diversity >= 0, c.diversity <= 1 else {
        throw .invalidArgument("diversity must be in [0, 1], got \(c.diversity)")
    }
    o.diversity = c.diversity
    if let sc = c.scenario { o.scenario = try Check.text(sc, "scenario", maxBytes: Limits.maxScenarioNameBytes) }
    if let ids = c.request_ids, let users {
        o.requestIds = Array(UnsafeBufferPointer(start: ids, count: users))
    }
    return o
}

@c @implementation public func chorus_explanation_init(_ explanation: UnsafeMutablePointer<chorus_explanation>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try chorus_explanation.initialise(explanation, "explanation")
    }
}

@c @implementation public func chorus_explanation_init_sized(_ explanation: UnsafeMutablePointer<chorus_explanation>!,
                                                          _ structSize: Int) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try chorus_explanation.initialise(explanation, "explanation", size: structSize)
    }
}

/// The sentence chorus_engine_explain lends out in chorus_explanation.sentence: one per thread,
/// valid until the thread's next explain.
private let explainSentence = ThreadLocalCString()

@c @implementation public func chorus_engine_explain(_ engine: OpaquePointer!, _ userId: Int64, _ itemId: Int64,
                                                  _ params: UnsafePointer<chorus_recommend_params>!,
                                                  _ out: UnsafeMutablePointer<chorus_explanation>!,
                                                  _ outShares: UnsafeMutablePointer<Float>!, _ sharesCapacity: Int,
                                                  _ text: UnsafeMutablePointer<CChar>!, _ textCapacity: Int,
                                                  _ outTextLength: UnsafeMutablePointer<Int>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        let o = try chorus_explanation.output(out, "out")
        let options = try options(params)
        let x = try e.explain(user: userId, item: itemId, options: options)
        let sentence = Array(x.sentence.utf8)
        var r = chorus_explanation.defaults
        r.score = x.score
        r.because_item = x.becauseItem ?? -1
        r.because_similarity = x.becauseSimilarity
        // Matched terms, space-separated, cut at a word boundary to fit 255 bytes.
        var terms: [UInt8] = []
        for t in x.matchedTerms {
            let bytes = Array(t.utf8)
            if terms.count + (terms.isEmpty ? 0 : 1) + bytes.count > 255 { break }
            if !terms.isEmpty { terms.append(32) }
            terms += bytes
        }
        withUnsafeMutableBytes(of: &r.matched_terms) { raw in
            raw.initializeMemory(as: UInt8.self, repeating: 0)
            raw.copyBytes(from: terms)
        }
        // The fields past the 0.1.0 layout: the thread's copy of the sentence is made only for a
        // caller whose struct has room for its pointer.
        if chorus_explanation.has(\.sentence, size: o.size) {
            guard let copy = explainSentence.set(sentence) else { throw .outOfMemory("cannot copy the explanation's sentence") }
            r.sentence = copy
        }
        r.sentence_length = sentence.count
        r.agent_count = x.agents.count
        r.agent_names = InternedCStrings.array(x.agents)
        chorus_explanation.write(r, to: o.pointer, size: o.size)
        outTextLength?.pointee = sentence.count
        // The caller's buffers: both are checked before either is written.
        var tooSmall: [String] = []
        if outShares != nil, Check.capacity(sharesCapacity) < x.shares.count {
            tooSmall.append("shares_capacity \(sharesCapacity) < agent count \(x.shares.count) (see out->agent_count)")
        }
        if text != nil, Check.capacity(textCapacity) <= sentence.count {
            tooSmall.append("text_capacity \(textCapacity) < \(sentence.count + 1) bytes needed (see out_text_length)")
        }
        guard tooSmall.isEmpty else { throw .bufferTooSmall(tooSmall.joined(separator: "; ")) }
        outShares?.update(from: x.shares, count: x.shares.count)
        if let text {
            sentence.withUnsafeBufferPointer { b in
                if let base = b.baseAddress { UnsafeMutableRawPointer(text).copyMemory(from: base, byteCount: b.count) }
            }
            text[sentence.count] = 0
        }
    }
}

/// The shared body of chorus_engine_recommend and chorus_engine_recommend_details: validates, calls
/// the core, and returns the agents of the model that served. `sharesTooSmall` runs when the core
/// finds the shares buffer too small for its model (before the error is thrown on).
@discardableResult
private func recommend(_ engine: OpaquePointer?, _ userIds: UnsafePointer<Int64>?, _ nUsers: Int, _ k: Int,
                       _ params: UnsafePointer<chorus_recommend_params>?,
                       _ outItemIds: UnsafeMutablePointer<Int64>?, _ outScores: UnsafeMutablePointer<Float>?, _ capacity: Int,
                       _ outAgentShares: UnsafeMutablePointer<Float>?, _ sharesCapacity: Int,
                       _ outUserFlags: UnsafeMutablePointer<UInt32>?,
                       sharesTooSmall: (Engine) -> Void = { _ in }) throws(ChorusError) -> [String] {
    let e = try Handles.engine(engine)
    let users = try Check.notNull(userIds, "user_ids")
    let ids = try Check.notNull(outItemIds, "out_item_ids"), scores = try Check.notNull(outScores, "out_scores")
    let nUsers = try Check.count(nUsers, "n_users"), k = try Check.count(k, "k")
    let capacity = Check.capacity(capacity), sharesCapacity = Check.capacity(sharesCapacity)
    guard nUsers > 0 else { throw .invalidArgument("n_users is 0") }
    guard k > 0 else { throw .invalidArgument("k is 0") }
    let o = try options(params, users: nUsers)
    let needed = try Check.product(nUsers, k, "n_users * k")
    guard capacity >= needed else { throw .bufferTooSmall("capacity \(capacity) < n_users * k = \(needed)") }
    // The shares buffer is checked by the core against the model it serves from (a concurrent
    // fit may change the number of agents): that is its only buffer-too-small.
    do {
        return try e.recommend(users: UnsafeBufferPointer(start: users, count: nUsers), k: k, options: o,
                               outIds: ids, outScores: scores,
                               outShares: outAgentShares.map { UnsafeMutableBufferPointer(start: $0, count: sharesCapacity) },
                               outFlags: outUserFlags)
    } catch {
        if case .bufferTooSmall = error { sharesTooSmall(e) }
        throw error
    }
}

@c @implementation public func chorus_engine_recommend(_ engine: OpaquePointer!, _ userIds: UnsafePointer<Int64>!, _ nUsers: Int, _ k: Int,
                                                    _ params: UnsafePointer<chorus_recommend_params>!,
                                                    _ outItemIds: UnsafeMutablePointer<Int64>!, _ outScores: UnsafeMutablePointer<Float>!, _ capacity: Int,
                                                    _ outAgentShares: UnsafeMutablePointer<Float>!, _ sharesCapacity: Int,
                                                    _ outUserFlags: UnsafeMutablePointer<UInt32>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try recommend(engine, userIds, nUsers, k, params, outItemIds, outScores, capacity, outAgentShares, sharesCapacity, outUserFlags)
    }
}

@c @implementation public func chorus_engine_recommend_details(_ engine: OpaquePointer!, _ userIds: UnsafePointer<Int64>!, _ nUsers: Int, _ k: Int,
                                                            _ params: UnsafePointer<chorus_recommend_params>!,
                                                            _ outItemIds: UnsafeMutablePointer<Int64>!, _ outScores: UnsafeMutablePointer<Float>!,
                                                            _ capacity: Int,
                                                            _ outAgentShares: UnsafeMutablePointer<Float>!, _ sharesCapacity: Int,
                                                            _ outUserFlags: UnsafeMutablePointer<UInt32>!,
                                                            _ outAgentNames: UnsafeMutablePointer<UnsafePointer<UnsafePointer<CChar>?>?>!,
                                                            _ outAgentCount: UnsafeMutablePointer<Int>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let names = try Check.notNull(outAgentNames, "out_agent_names"), count = try Check.notNull(outAgentCount, "out_agent_count")
        names.pointee = nil
        count.pointee = 0
        let agents = try recommend(engine, userIds, nUsers, k, params, outItemIds, outScores, capacity, outAgentShares,
                                   sharesCapacity, outUserFlags) { e in
            // Too small for the model that served: report the agents now published to size the retry.
            let now = e.agentNames
            names.pointee = InternedCStrings.array(now)
            count.pointee = now.count
        }
        names.pointee = InternedCStrings.array(agents)
        count.pointee = agents.count
    }
}

@c @implementation public func chorus_engine_similar_items(_ engine: OpaquePointer!, _ itemIds: UnsafePointer<Int64>!, _ nItems: Int, _ k: Int,
                                                        _ params: UnsafePointer<chorus_recommend_params>!,
                                                        _ outItemIds: UnsafeMutablePointer<Int64>!, _ outScores: UnsafeMutablePointer<Float>!, _ capacity: Int) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        let items = try Check.notNull(itemIds, "item_ids")
        let ids = try Check.notNull(outItemIds, "out_item_ids"), scores = try Check.notNull(outScores, "out_scores")
        let nItems = try Check.count(nItems, "n_items"), k = try Check.count(k, "k")
        let capacity = Check.capacity(capacity)
        guard nItems > 0 else { throw .invalidArgument("n_items is 0") }
        guard k > 0 else { throw .invalidArgument("k is 0") }
        let o = try options(params)
        let needed = try Check.product(nItems, k, "n_items * k")
        guard capacity >= needed else { throw .bufferTooSmall("capacity \(capacity) < n_items * k = \(needed)") }
        try e.similarItems(items: UnsafeBufferPointer(start: items, count: nItems), k: k, allow: o.allow, deny: o.deny,
                           outIds: ids, outScores: scores)
    }
}

@c @implementation public func chorus_engine_similar_users(_ engine: OpaquePointer!, _ userIds: UnsafePointer<Int64>!, _ nUsers: Int, _ k: Int,
                                                        _ allowUsers: UnsafePointer<Int64>!, _ nAllow: Int,
                                                        _ denyUsers: UnsafePointer<Int64>!, _ nDeny: Int,
                                                        _ outUserIds: UnsafeMutablePointer<Int64>!, _ outScores: UnsafeMutablePointer<Float>!,
                                                        _ capacity: Int) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        let users = try Check.notNull(userIds, "user_ids")
        let ids = try Check.notNull(outUserIds, "out_user_ids"), scores = try Check.notNull(outScores, "out_scores")
        let nUsers = try Check.count(nUsers, "n_users"), k = try Check.count(k, "k")
        let nAllow = try Check.count(nAllow, "n_allow"), nDeny = try Check.count(nDeny, "n_deny")
        let capacity = Check.capacity(capacity)
        guard nUsers > 0 else { throw .invalidArgument("n_users is 0") }
        guard k > 0 else { throw .invalidArgument("k is 0") }
        var allow: Set<Int64>? = nil
        if let a = allowUsers { allow = Set(UnsafeBufferPointer(start: a, count: nAllow)) }
        else if nAllow != 0 { throw .invalidArgument("allow_users is NULL but n_allow is \(nAllow)") }
        var deny = Set<Int64>()
        if let d = denyUsers { deny = Set(UnsafeBufferPointer(start: d, count: nDeny)) }
        else if nDeny != 0 { throw .invalidArgument("deny_users is NULL but n_deny is \(nDeny)") }
        let needed = try Check.product(nUsers, k, "n_users * k")
        guard capacity >= needed else { throw .bufferTooSmall("capacity \(capacity) < n_users * k = \(needed)") }
        try e.similarUsers(users: UnsafeBufferPointer(start: users, count: nUsers), k: k, allow: allow, deny: deny,
                           outIds: ids, outScores: scores)
    }
}

@c @implementation public func chorus_engine_agent_count(_ engine: OpaquePointer!, _ outCount: UnsafeMutablePointer<Int>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        let out = try Check.notNull(outCount, "out_count")
        out.pointee = e.agentNames.count
    }
}

@c @implementation public func chorus_engine_agent_info(_ engine: OpaquePointer!, _ index: Int, _ outName: UnsafeMutablePointer<UnsafePointer<CChar>?>!,
                                                     _ outWeight: UnsafeMutablePointer<Float>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        let out = try Check.notNull(outName, "out_name")
        let agents = e.agents
        guard index >= 0, index < agents.count else { throw .notFound("agent index \(UInt(bitPattern: index)) is out of range (the engine has \(agents.count) agents)") }
        out.pointee = InternedCStrings.cString(agents[index].name)
        outWeight?.pointee = agents[index].weight
    }
}

@c @implementation public func chorus_engine_stats_init(_ stats: UnsafeMutablePointer<chorus_engine_stats>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try chorus_engine_stats.initialise(stats, "stats")
    }
}

@c @implementation public func chorus_engine_get_stats(_ engine: OpaquePointer!, _ outStats: UnsafeMutablePointer<chorus_engine_stats>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        let out = try chorus_engine_stats.output(outStats, "out_stats")
        let s = e.stats()
        var r = chorus_engine_stats.defaults
        r.fitted = s.fitted ? 1 : 0
        r.n_users = UInt64(s.users)
        r.n_items = UInt64(s.items)
        r.n_interactions = UInt64(s.interactions)
        r.n_model_users = UInt64(s.modelUsers)
        r.n_model_items = UInt64(s.modelItems)
        r.model_bytes = UInt64(s.modelBytes)
        r.popularity_half_life_seconds = s.popularityHalfLifeSeconds
        r.n_item_texts = UInt64(s.itemTexts)
        r.n_user_texts = UInt64(s.userTexts)
        r.n_item_facts = UInt64(s.itemFacts)
        r.allocator_allocated_bytes = s.allocatedBytes
        r.allocator_resident_bytes = s.residentBytes
        chorus_engine_stats.write(r, to: out.pointer, size: out.size)
    }
}

@c @implementation public func chorus_engine_save(_ engine: OpaquePointer!, _ path: UnsafePointer<CChar>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        try e.save(path: try Check.path(path))
    }
}

@c @implementation public func chorus_engine_save_ex(_ engine: OpaquePointer!, _ path: UnsafePointer<CChar>!, _ flags: UInt32) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        guard flags & ~UInt32(CHORUS_SAVE_WITHOUT_INTERACTIONS) == 0 else { throw .invalidArgument("unknown bits in flags: \(flags)") }
        try e.save(path: try Check.path(path), withoutInteractions: flags & UInt32(CHORUS_SAVE_WITHOUT_INTERACTIONS) != 0)
    }
}

@c @implementation public func chorus_engine_load(_ path: UnsafePointer<CChar>!, _ outEngine: UnsafeMutablePointer<OpaquePointer?>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let out = try Check.notNull(outEngine, "out_engine")
        out.pointee = nil
        let e = try Engine.load(path: try Check.path(path))
        out.pointee = Handles.make(e)
    }
}
