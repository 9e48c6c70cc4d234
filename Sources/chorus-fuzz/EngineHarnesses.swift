import CChorus
import ChorusCore

/// The engine's entry points, through the C ABI.
enum EngineHarnesses {
    static let ok: chorus_status = 0

    /// A small fit: one thread, few factors and sweeps, so that an execution stays in milliseconds.
    static func tinyFit(_ e: OpaquePointer, factors: UInt32 = 2, iterations: UInt32 = 1, seed: UInt64 = 1,
                        validation: Float = 0, regularization: Float = 0, alpha: Float = 0) -> chorus_status {
        var p = chorus_fit_params()
        _ = chorus_fit_params_init(&p)
        p.factors = factors
        p.iterations = iterations
        p.threads = 1
        p.seed = seed
        p.validation_fraction = validation
        p.regularization = regularization
        p.alpha = alpha
        return chorus_engine_fit(e, &p)
    }

    // MARK: engine-snapshot

    /// `chorus_engine_load` on the input as a file; then everything a host does with a loaded
    /// engine: stats, agents, recommend (blend, each agent, with history and diversity),
    /// recommend_details, explain, similar items, a refit, and save + load again (a loaded engine
    /// must save a snapshot that loads).
    static func snapshot(_ bytes: [UInt8]) {
        let path = Scratch.write("engine.chorus", bytes)
        var engine: OpaquePointer? = nil
        guard chorus_engine_load(path, &engine) == ok, let e = engine else { return }
        defer { chorus_engine_free(e) }
        let (users, items) = knownIds(bytes)
        exercise(e, users: users, items: items)
        if tinyFit(e) == ok { exercise(e, users: users, items: items) }
        requireSaveLoadRoundTrip("engine", save: { chorus_engine_save(e, $0) }, load: { chorus_engine_load($0, &$1) },
                                 free: { chorus_engine_free($0) })
    }

    /// The first user and item ids of the snapshot's log (the ids it knows), plus ids it does not.
    static func knownIds(_ bytes: [UInt8]) -> (users: [Int64], items: [Int64]) {
        var users: [Int64] = [-1, Int64.max], items: [Int64] = [-1, Int64.min]
        if let sections = try? Snapshot.decode(bytes), let log = sections["LOG_"] {
            var r = ByteReader(bytes, range: log, context: "fuzz")
            if let u = try? r.readArray(Int64.self, maxCount: 1 << 20), let i = try? r.readArray(Int64.self, maxCount: 1 << 20) {
                users = Array(u.prefix(4)) + users
                items = Array(i.prefix(4)) + items
            }
        }
        return (users, items)
    }

    /// What a host does with an engine; every status is allowed, only traps and reports count.
    static func exercise(_ e: OpaquePointer, users: [Int64], items: [Int64]) {
        var stats = chorus_engine_stats()
        _ = chorus_engine_stats_init(&stats)
        _ = chorus_engine_get_stats(e, &stats)
        var agentCount = 0
        _ = chorus_engine_agent_count(e, &agentCount)
        var agentNames: [String] = []
        for a in 0..<min(agentCount, 64) {
            var name: UnsafePointer<CChar>? = nil
            var weight: Float = 0
            if chorus_engine_agent_info(e, a, &name, &weight) == ok, let name { agentNames.append(String(cString: name)) }
        }
        let k = 5
        recommend(e, users: users, k: k)
        for agent in agentNames { agent.withCString { a in recommend(e, users: Array(users.prefix(2)), k: k, agent: a) } }
        recommend(e, users: [users[0]], k: k, history: items, diversity: 0.5)
        recommend(e, users: [-3], k: k, history: items)
        details(e, users: users, k: k)
        for u in users.prefix(2) { for i in items.prefix(3) { explain(e, user: u, item: i) } }
        similar(e, items: items, k: k)
        var kg: OpaquePointer? = nil
        if chorus_engine_knowledge_graph(e, &kg) == ok {
            var counts = (0, 0, 0)
            _ = chorus_kg_counts(kg, &counts.0, &counts.1, &counts.2)
            chorus_kg_free(kg)
        }
    }

    /// Recommend with output buffers of exactly `capacity` (the library must refuse a product
    /// n_users * k it cannot hold, and never write past `capacity`).
    static func recommend(_ e: OpaquePointer, users: [Int64], k: Int, capacity: Int? = nil, sharesCapacity: Int? = nil,
                          agent: UnsafePointer<CChar>? = nil, history: [Int64] = [], diversity: Float = 0,
                          configure: (inout chorus_recommend_params) -> Void = { _ in }) {
        let cap = capacity ?? users.count * k
        let shareCap = sharesCapacity ?? cap * 16
        var ids = [Int64](repeating: 0, count: cap), scores = [Float](repeating: 0, count: cap)
        var shares = [Float](repeating: 0, count: shareCap), flags = [UInt32](repeating: 0, count: users.count)
        history.withUnsafeBufferPointer { h in
            var p = chorus_recommend_params()
            _ = chorus_recommend_params_init(&p)
            p.agent = agent
            p.history_items = h.count > 0 ? h.baseAddress : nil
            p.n_history = h.count
            p.diversity = diversity
            configure(&p)
            _ = chorus_engine_recommend(e, users, users.count, k, &p, &ids, &scores, cap, &shares, shareCap, &flags)
        }
    }

    static func details(_ e: OpaquePointer, users: [Int64], k: Int, capacity: Int? = nil, sharesCapacity: Int? = nil,
                        configure: (inout chorus_recommend_params) -> Void = { _ in }) {
        let cap = capacity ?? users.count * k
        let shareCap = sharesCapacity ?? cap * 16
        var ids = [Int64](repeating: 0, count: cap), scores = [Float](repeating: 0, count: cap)
        var shares = [Float](repeating: 0, count: shareCap), flags = [UInt32](repeating: 0, count: users.count)
        var names: UnsafePointer<UnsafePointer<CChar>?>? = nil
        var count = 0
        var p = chorus_recommend_params()
        _ = chorus_recommend_params_init(&p)
        configure(&p)
        let status = chorus_engine_recommend_details(e, users, users.count, k, &p, &ids, &scores, cap, &shares, shareCap, &flags, &names, &count)
        if status == ok || count > 0 {
            // The names handed out must be readable.
            for i in 0..<count { _ = strlenOf(names![i]!) }
        }
    }

    static func explain(_ e: OpaquePointer, user: Int64, item: Int64, sharesCapacity: Int = 16, textCapacity: Int = 256,
                        configure: (inout chorus_recommend_params) -> Void = { _ in }) {
        var x = chorus_explanation()
        _ = chorus_explanation_init_sized(&x, MemoryLayout<chorus_explanation>.size)
        var shares = [Float](repeating: 0, count: sharesCapacity)
        var text = [CChar](repeating: 0, count: textCapacity)
        var length = 0
        var p = chorus_recommend_params()
        _ = chorus_recommend_params_init(&p)
        configure(&p)
        if chorus_engine_explain(e, user, item, &p, &x, &shares, sharesCapacity, &text, textCapacity, &length) == ok {
            guard let sentence = x.sentence, strlenOf(sentence) == x.sentence_length else { fail("explain's sentence and its length disagree") }
            for i in 0..<x.agent_count { _ = strlenOf(x.agent_names![i]!) }
        }
    }

    static func similar(_ e: OpaquePointer, items: [Int64], k: Int, capacity: Int? = nil,
                        configure: (inout chorus_recommend_params) -> Void = { _ in }) {
        let cap = capacity ?? items.count * k
        var ids = [Int64](repeating: 0, count: cap), scores = [Float](repeating: 0, count: cap)
        var p = chorus_recommend_params()
        _ = chorus_recommend_params_init(&p)
        configure(&p)
        _ = chorus_engine_similar_items(e, items, items.count, k, &p, &ids, &scores, cap)
    }

    static func strlenOf(_ s: UnsafePointer<CChar>) -> Int {
        var n = 0
        while s[n] != 0 { n += 1 }
        return n
    }
}
