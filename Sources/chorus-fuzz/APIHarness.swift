import CChorus
import ChorusCore

extension EngineHarnesses {
    /// The input decoded into a sequence of C ABI calls on one engine (hashing encoder, so texts
    /// and queries cost microseconds): add interactions (any int64 ids and timestamps, any float
    /// weights, NULL weights or timestamps, a scenario), live feedback (any event codes, values,
    /// rewards, NULL arrays), item and user texts, scenarios, item facts,
    /// triples through the engine's graph, tiny fits with any parameters, and recommend /
    /// recommend_details / explain / similar items and users with arbitrary k, users, items, capacities,
    /// flags, filters, agents, queries, histories, diversity and scenarios; host metadata set and
    /// read with any key, length and capacity; the learning coordinator (modes, knobs, request ids
    /// on recommend and feedback, the slate log); then, on the state left, merges and a save without
    /// interactions (`shardCalls`).
    static func api(_ bytes: [UInt8]) {
        var input = FuzzInput(bytes)
        var params = chorus_engine_params()
        _ = chorus_engine_params_init(&params)
        params.flags = UInt32(CHORUS_ENGINE_HASHING_ENCODER)
        params.popularity_half_life_seconds = input.bool() ? 0 : Int64(input.integer(Int32.self))
        var engine: OpaquePointer? = nil
        guard chorus_engine_create(&params, &engine) == ok, let e = engine else { fail("chorus_engine_create failed") }
        defer { chorus_engine_free(e) }
        var fits = 0
        var calls = 0
        while !input.isEmpty && calls < 48 {
            calls += 1
            switch input.below(15) {
            case 0: add(e, &input)
            case 1: feedback(e, &input)
            case 2: texts(e, &input, users: false)
            case 3: texts(e, &input, users: true)
            case 4:
                let name = input.cString(max: 12), description = input.cString(max: 40)
                _ = chorus_engine_define_scenario(e, name, description)
            case 5: facts(e, &input)
            case 6:
                // At most two fits an input: they dominate the time of an execution.
                guard fits < 2 else { continue }
                fits += 1
                _ = tinyFit(e, factors: UInt32(input.below(5)), iterations: UInt32(input.below(3)), seed: UInt64(input.byte()),
                            validation: input.bool() ? 0 : input.float(), regularization: input.bool() ? 0 : input.float(),
                            alpha: input.bool() ? 0 : input.float())
            case 7, 8:
                let users = ids(&input, max: 3)
                let (k, cap) = sizes(&input, n: users.count)
                let shares: Int? = input.below(3) == 0 ? input.size() % 64 : nil
                // Request ids for the learning coordinator: one per user (any int64, -1 included).
                var requests: [Int64]? = nil
                if input.below(3) == 0 { requests = []; for _ in users { requests!.append(input.below(4) == 0 ? input.id() : Int64(input.below(8))) } }
                withOptional(requests) { r in
                    withRequest(&input) { configure in
                        recommend(e, users: users, k: k, capacity: cap, sharesCapacity: shares) { p in
                            configure(&p)
                            if let r { p.struct_size = UInt32(MemoryLayout<chorus_recommend_params>.size); p.request_ids = r }
                        }
                    }
                }
            case 13: learning(e, &input)
            case 9:
                let users = ids(&input, max: 3)
                let (k, cap) = sizes(&input, n: users.count)
                let shares = input.size() % 64
                withRequest(&input) { configure in details(e, users: users, k: k, capacity: cap, sharesCapacity: shares, configure: configure) }
            case 10:
                let user = input.id(), item = input.id()
                let shares = input.below(17), text = input.below(3) == 0 ? input.below(8) : 256
                withRequest(&input) { configure in explain(e, user: user, item: item, sharesCapacity: shares, textCapacity: text, configure: configure) }
            case 11:
                let items = ids(&input, max: 3)
                let (k, cap) = sizes(&input, n: items.count)
                if input.bool() {
                    withRequest(&input) { configure in similar(e, items: items, k: k, capacity: cap, configure: configure) }
                } else {
                    similarUsers(e, &input, users: items, k: k, capacity: cap)
                }
            case 12:
                var stats = chorus_engine_stats()
                _ = chorus_engine_stats_init(&stats)
                _ = chorus_engine_get_stats(e, &stats)
                var name: UnsafePointer<CChar>? = nil
                var weight: Float = 0
                _ = chorus_engine_agent_info(e, input.size(), &name, &weight)
                metadata(e, &input)
            default: graph(e, &input)
            }
        }
        // The state the calls left must save and load.
        let path = Scratch.path("api.chorus")
        guard chorus_engine_save(e, path) == ok else { fail("chorus_engine_save failed: \(String(cString: chorus_last_error()))") }
        var loaded: OpaquePointer? = nil
        guard chorus_engine_load(path, &loaded) == ok else { fail("a saved engine does not load: \(String(cString: chorus_last_error()))") }
        chorus_engine_free(loaded)
        shardCalls(e)
    }

    /// Sharded training on whatever state the calls left, consuming no input (so the corpus keeps
    /// its meaning): the engine twice (must be refused), a merge of one (a copy) and a private merge
    /// of one, each merged engine's privacy, and a save without interactions that must load and
    /// refuse a fit.
    static func shardCalls(_ e: OpaquePointer) {
        var twice: [OpaquePointer?] = [e, e]
        var out: OpaquePointer? = nil
        guard chorus_engine_merge(&twice, 2, nil, &out) != ok, out == nil else { fail("the same engine twice was merged") }
        var mp = chorus_merge_params()
        _ = chorus_merge_params_init_sized(&mp, MemoryLayout<chorus_merge_params>.size)
        mp.noise_multiplier = 1
        mp.clip_norm = 0.5
        var one: [OpaquePointer?] = [e]
        for p in [false, true] {
            let status = p ? chorus_engine_merge(&one, 1, &mp, &out) : chorus_engine_merge(&one, 1, nil, &out)
            guard status == ok, let merged = out else { continue }  // not fitted, or agents a merge cannot combine
            out = nil
            var eps = 0.0, delta = 0.0
            var rounds: UInt32 = 0
            guard chorus_engine_privacy_spent(merged, &eps, &delta, &rounds) == ok, rounds == (p ? 1 : 0) else {
                fail("a merged engine reports \(rounds) private rounds: \(String(cString: chorus_last_error()))")
            }
            chorus_engine_free(merged)
        }
        let path = Scratch.path("api-withheld.chorus")
        guard chorus_engine_save_ex(e, path, UInt32(CHORUS_SAVE_WITHOUT_INTERACTIONS)) == ok else { return }  // no model
        var loaded: OpaquePointer? = nil
        guard chorus_engine_load(path, &loaded) == ok, let l = loaded else {
            fail("a snapshot saved without interactions does not load: \(String(cString: chorus_last_error()))")
        }
        defer { chorus_engine_free(l) }
        guard tinyFit(l) == CHORUS_ERR_INVALID_ARGUMENT else { fail("an engine saved without its interactions was fitted") }
    }

    /// The learning coordinator: a mode (any int32 now and then), knobs (any float), a log capacity,
    /// any struct_size; then the slate log read with any flags and capacity (NULL out too).
    static func learning(_ e: OpaquePointer, _ input: inout FuzzInput) {
        var p = chorus_learning_params()
        _ = chorus_learning_params_init_sized(&p, MemoryLayout<chorus_learning_params>.size)
        p.mode = input.below(8) == 0 ? input.integer(Int32.self) : Int32(input.below(4))
        if input.bool() { p.exploration = input.float() }
        if input.bool() { p.learning_rate = input.float() }
        if input.bool() { p.prior_strength = input.float() }
        if input.below(4) == 0 { p.log_capacity = input.below(2) == 0 ? input.integer(UInt64.self) : UInt64(input.below(16)) }
        if input.below(8) == 0 { p.struct_size = UInt32(input.below(64)) }
        if input.below(4) == 0 { p.reserved = input.integer(UInt32.self) }
        p.seed = UInt64(input.byte())
        // Private learning: any clip and noise (NaN, huge, negative), small releases so they happen.
        if input.below(4) == 0 {
            p.clip_norm = Double(input.float()); p.noise_multiplier = input.bool() ? Double(input.float()) : 0
            if input.below(4) == 0 { p.delta = Double(input.float()) }
            p.release_slates = input.below(8) == 0 ? input.integer(UInt64.self) : UInt64(input.below(4))
        }
        _ = input.below(8) == 0 ? chorus_engine_set_learning(e, nil) : chorus_engine_set_learning(e, &p)
        var eps = 0.0, delta = 0.0, releases: UInt64 = 0
        _ = chorus_engine_learning_privacy_spent(e, &eps, &delta, &releases)
        let flags: UInt32 = input.below(8) == 0 ? input.integer(UInt32.self) : UInt32(input.below(4))
        let capacity = input.below(16)
        var rows = [chorus_slate_row](repeating: chorus_slate_row(), count: max(1, capacity))
        var count = 0
        if input.below(8) == 0 {
            _ = chorus_engine_slate_log(e, flags, nil, capacity, &count)
        } else {
            _ = chorus_engine_slate_log(e, flags, &rows, capacity, &count)
        }
    }

    /// 0...max ids (0 included: an empty list is an argument too).
    static func ids(_ input: inout FuzzInput, max: Int) -> [Int64] {
        (0..<input.below(max + 1)).map { _ in input.id() }
    }

    /// k, and a capacity: usually n * k (when it fits the buffers this harness allocates), sometimes
    /// one less, sometimes anything small. The harness allocates exactly `capacity` slots.
    static func sizes(_ input: inout FuzzInput, n: Int) -> (k: Int, capacity: Int) {
        let k = input.size()
        let (product, overflow) = n.multipliedReportingOverflow(by: k)
        let exact = overflow || product > 4096 ? 64 : product
        switch input.below(4) {
        case 0: return (k, max(0, exact - 1))
        case 1: return (k, input.below(64))
        default: return (k, exact)
        }
    }

    static func add(_ e: OpaquePointer, _ input: inout FuzzInput) {
        let n = 1 + input.below(8)
        var users: [Int64] = [], items: [Int64] = [], weights: [Float] = [], times: [Int64] = []
        for _ in 0..<n {
            users.append(input.id()); items.append(input.id()); weights.append(input.float())
            times.append(input.bool() ? Int64(input.byte()) : input.integer(Int64.self))
        }
        let mode = input.byte()
        let w: UnsafePointer<Float>? = nil, t: UnsafePointer<Int64>? = nil
        weights.withUnsafeBufferPointer { wb in
            times.withUnsafeBufferPointer { tb in
                let wp = mode & 1 == 0 ? wb.baseAddress : w, tp = mode & 2 == 0 ? tb.baseAddress : t
                // n larger than the arrays is the caller's bug, not the library's: pass n or fewer.
                let count = mode & 4 == 0 ? n : Int(mode >> 3) % (n + 1)
                if mode & 8 == 0 {
                    _ = chorus_engine_add_interactions(e, users, items, wp, tp, count)
                } else {
                    let scenario = input.cString(max: 12)
                    _ = chorus_engine_add_scenario_interactions(e, scenario, users, items, wp, tp, count)
                }
            }
        }
    }

    static func feedback(_ e: OpaquePointer, _ input: inout FuzzInput) {
        let n = 1 + input.below(8)
        var users: [Int64] = [], items: [Int64] = [], events: [Int32] = [], values: [Float] = [], times: [Int64] = []
        for _ in 0..<n {
            users.append(input.id()); items.append(input.id())
            events.append(input.below(8) == 0 ? input.integer(Int32.self) : Int32(input.below(7)))
            values.append(input.bool() ? Float(input.below(6)) : input.float())
            times.append(input.bool() ? Int64(input.byte()) : input.integer(Int64.self))
        }
        let mode = input.byte()
        var params = chorus_feedback_params()
        _ = chorus_feedback_params_init_sized(&params, MemoryLayout<chorus_feedback_params>.size)
        if mode & 16 != 0 { params.click = input.float(); params.dismiss = input.float(); params.rating = input.float() }
        let scenario = mode & 8 == 0 ? nil : input.cString(max: 12)
        values.withUnsafeBufferPointer { vb in
            times.withUnsafeBufferPointer { tb in
                let vp = mode & 1 == 0 ? vb.baseAddress : nil, tp = mode & 2 == 0 ? tb.baseAddress : nil
                let count = mode & 4 == 0 ? n : Int(mode >> 5) % (n + 1)
                withUnsafePointer(to: params) { pp in
                    _ = chorus_engine_feedback(e, users, items, events, vp, tp, count, scenario, mode & 32 == 0 ? nil : times,
                                               mode & 64 == 0 ? nil : pp)
                }
            }
        }
    }

    /// Calls `body` with C strings for `strings`, as a `const char *const *` (nil entries kept).
    static func withCStrings<R>(_ strings: [[CChar]?], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
        var storage: [UnsafeMutablePointer<CChar>?] = strings.map { s in
            guard let s else { return nil }
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: s.count)
            p.initialize(from: s, count: s.count)
            return p
        }
        defer { for p in storage { p?.deallocate() } }
        return storage.withUnsafeMutableBufferPointer { b in
            b.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: max(1, b.count)) { body($0) }
        }
    }

    static func texts(_ e: OpaquePointer, _ input: inout FuzzInput, users: Bool) {
        let n = 1 + input.below(3)
        let ids = (0..<n).map { _ in input.id() }
        let strings: [[CChar]?] = (0..<n).map { _ in input.below(16) == 0 ? nil : input.cString(max: 40) }
        let mode = input.below(4)
        // The _ex calls: NULL params, or any thread count, an init'd or odd struct_size, and a progress
        // callback that cancels at its first, second... report (or never).
        var params = chorus_texts_params()
        _ = chorus_texts_params_init(&params)
        params.threads = UInt32(input.below(4))
        if input.below(8) == 0 { params.struct_size = UInt32(input.below(64)) }
        var cancelAt = Int32(input.below(4))
        withCStrings(strings) { p in
            switch mode {
            case 0, 1: _ = users ? chorus_engine_set_user_texts(e, ids, p, n) : chorus_engine_set_item_texts(e, ids, p, n)
            case 2: _ = users ? chorus_engine_set_user_texts_ex(e, ids, p, n, nil) : chorus_engine_set_item_texts_ex(e, ids, p, n, nil)
            default:
                withUnsafeMutablePointer(to: &cancelAt) { counter in
                    params.progress = { _, _, user in
                        // A struct_size that ends before progress_user_data passes NULL (its default).
                        guard let user else { return 0 }
                        let c = user.assumingMemoryBound(to: Int32.self)
                        c.pointee -= 1
                        return c.pointee == 0 ? 1 : 0
                    }
                    params.progress_user_data = UnsafeMutableRawPointer(counter)
                    _ = users ? chorus_engine_set_user_texts_ex(e, ids, p, n, &params) : chorus_engine_set_item_texts_ex(e, ids, p, n, &params)
                }
            }
        }
    }

    /// Similar users with any k and capacity, optional allow and deny lists (NULL with a non-zero
    /// count too).
    static func similarUsers(_ e: OpaquePointer, _ input: inout FuzzInput, users: [Int64], k: Int, capacity: Int) {
        let allow = ids(&input, max: 3), deny = ids(&input, max: 3)
        let allowCount = input.below(8) == 0 ? input.size() : allow.count
        let denyCount = input.below(8) == 0 ? input.size() : deny.count
        var out = [Int64](repeating: 0, count: capacity), scores = [Float](repeating: 0, count: capacity)
        allow.withUnsafeBufferPointer { a in deny.withUnsafeBufferPointer { d in
            // A pointer only with its real length; a count with no array is a NULL list.
            let ap = allowCount == allow.count ? a.baseAddress : nil, dp = denyCount == deny.count ? d.baseAddress : nil
            _ = chorus_engine_similar_users(e, users, users.count, k, ap, allowCount, dp, denyCount, &out, &scores, capacity)
        } }
    }

    /// Host metadata: a set (any key, a value of 0...31 bytes, or NULL with any length) then a
    /// get (any key, a capacity of 0...31 with a buffer, or NULL with any capacity).
    static func metadata(_ e: OpaquePointer, _ input: inout FuzzInput) {
        let key = input.cString(max: 12)
        let value = (0..<input.below(32)).map { _ in input.byte() }
        let length = input.below(8) == 0 ? input.size() : value.count
        if input.below(8) == 0 { _ = chorus_engine_set_metadata(e, key, nil, length) }
        else { value.withUnsafeBytes { b in _ = chorus_engine_set_metadata(e, key, b.baseAddress ?? UnsafeRawPointer(bitPattern: 1), min(length, b.count)) } }
        var out = [UInt8](repeating: 0, count: 32)
        var got = 0
        let capacity = input.below(8) == 0 ? input.size() : input.below(33)
        let probe = input.cString(max: 12)
        if input.below(8) == 0 { _ = chorus_engine_metadata(e, probe, nil, capacity, &got) }
        else { out.withUnsafeMutableBytes { b in _ = chorus_engine_metadata(e, probe, b.baseAddress, min(capacity, b.count), &got) } }
    }

    static func facts(_ e: OpaquePointer, _ input: inout FuzzInput) {
        let n = 1 + input.below(3)
        let items = (0..<n).map { _ in input.id() }
        let relations: [[CChar]?] = (0..<n).map { _ in input.below(16) == 0 ? nil : input.cString(max: 8) }
        let entities: [[CChar]?] = (0..<n).map { _ in input.cString(max: 8) }
        var added = 0
        withCStrings(relations) { r in withCStrings(entities) { en in _ = chorus_engine_add_item_facts(e, items, r, en, n, &added) } }
    }

    /// Triples through the engine's own graph handle, and sometimes a tiny training run.
    static func graph(_ e: OpaquePointer, _ input: inout FuzzInput) {
        var kg: OpaquePointer? = nil
        guard chorus_engine_knowledge_graph(e, &kg) == ok, let g = kg else { return }
        defer { chorus_kg_free(g) }
        let n = 1 + input.below(3)
        let names: [[CChar]?] = (0..<(3 * n)).map { _ in input.cString(max: 8) }
        var added = 0
        withCStrings(Array(names[0..<n])) { h in
            withCStrings(Array(names[n..<(2 * n)])) { r in
                withCStrings(Array(names[(2 * n)...])) { t in _ = chorus_kg_add_triples(g, h, r, t, n, &added) }
            }
        }
        if input.below(4) == 0 {
            var p = chorus_kg_train_params()
            _ = chorus_kg_train_params_init(&p)
            p.dim = UInt32(1 + input.below(4))
            p.epochs = 1
            p.threads = 1
            p.negatives = UInt32(input.below(4))
            p.batch_size = UInt32(input.below(8))
            p.seed = UInt64(input.byte())
            let models = ["transe", "distmult", "complex", "rotate"]
            models[input.below(4)].withCString { m in
                p.model = m
                _ = chorus_kg_train(g, &p)
            }
        }
    }

    /// Request parameters from the input: flags (unknown bits included), allow / deny lists,
    /// an agent name (known, unknown or invalid UTF-8), a query, a history, diversity (any float)
    /// and a scenario; `body` gets a closure that writes them into a `chorus_recommend_params`.
    static func withRequest(_ input: inout FuzzInput, _ body: ((inout chorus_recommend_params) -> Void) -> Void) {
        let choice = input.byte()
        guard choice & 1 == 1 else { body { _ in }; return }
        let flags: UInt32 = input.below(8) == 0 ? input.integer(UInt32.self) : UInt32(choice >> 1 & 1)
        let allow = choice & 4 != 0 ? ids(&input, max: 4) : nil
        let deny = choice & 8 != 0 ? ids(&input, max: 4) : nil
        let agents = ["popularity", "als", "bpr", "itemknn", "session", "content", "query", "kg", "kge", "nope"]
        let agent: [CChar]? = choice & 16 != 0 ? (input.below(8) == 0 ? input.cString(max: 8) : Array(agents[input.below(agents.count)].utf8CString)) : nil
        let query: [CChar]? = choice & 32 != 0 ? input.cString(max: 40) : nil
        let history = choice & 64 != 0 ? ids(&input, max: 4) : nil
        let diversity: Float = choice & 128 != 0 ? input.float() : 0
        let scenario: [CChar]? = input.below(4) == 0 ? input.cString(max: 12) : nil
        // An empty list with a non-null pointer, or a NULL list with a non-zero count, are both
        // the caller's to choose; the count never exceeds the array.
        let allowCount = allow.map { input.below(8) == 0 ? 0 : $0.count } ?? 0
        let denyCount = deny.map { input.below(8) == 0 ? 0 : $0.count } ?? 0
        withOptional(allow) { a in withOptional(deny) { d in withOptional(history) { h in
            withOptional(agent) { ag in withOptional(query) { q in withOptional(scenario) { s in
                body { p in
                    p.flags = flags
                    p.allow_items = a; p.n_allow = a == nil ? 0 : allowCount
                    p.deny_items = d; p.n_deny = d == nil ? 0 : denyCount
                    p.history_items = h; p.n_history = h == nil ? 0 : history!.count
                    p.agent = ag; p.query = q; p.scenario = s
                    p.diversity = diversity
                }
            } } }
        } } }
    }

    static func withOptional<T>(_ a: [T]?, _ body: (UnsafePointer<T>?) -> Void) {
        guard let a else { body(nil); return }
        a.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
