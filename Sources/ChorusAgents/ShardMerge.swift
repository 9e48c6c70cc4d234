#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore
import ChorusCollaborative

/// How shard models are merged (`Engine.merge`): the optional differential privacy of the merged
/// item factors, and the merge's own knobs.
public struct MergeParameters: Sendable, Equatable {
    /// σ: Gaussian noise N(0, σ²C²) is added to every coordinate of the summed item factors.
    /// 0 = no noise. Needs `clipNorm` > 0.
    public var noiseMultiplier: Double = 0
    /// C: each user's contribution to the item-factor sums (their items' factor rows, one
    /// vector) is scaled to L2 norm at most C. 0 = no clipping.
    public var clipNorm: Double = 0
    /// δ of the (ε, δ) reported by the accountant.
    public var delta: Double = 1e-5
    /// Seeds the noise.
    public var seed: UInt64 = 42
    /// Worker threads of the merge's solves and rebuilds; 0 = every CPU.
    public var threads = 0
    public init() {}

    public func validate() throws(ChorusError) {
        guard noiseMultiplier.isFinite, noiseMultiplier >= 0 else { throw .invalidArgument("noise_multiplier must be finite and >= 0, got \(noiseMultiplier)") }
        guard clipNorm.isFinite, clipNorm >= 0 else { throw .invalidArgument("clip_norm must be finite and >= 0, got \(clipNorm)") }
        guard delta.isFinite, delta > 0, delta < 1 else { throw .invalidArgument("delta must be in (0, 1), got \(delta)") }
        guard threads >= 0, threads <= 1024 else { throw .invalidArgument("threads must be in 0...1024, got \(threads)") }
        if noiseMultiplier > 0, clipNorm == 0 {
            throw .invalidArgument("noise_multiplier \(noiseMultiplier) needs clip_norm > 0: the noise is scaled to the clipped contribution of one user")
        }
    }

    /// Whether the merge clips or adds noise.
    var isPrivate: Bool { noiseMultiplier > 0 || clipNorm > 0 }
}

/// The merge of shard models into one (federated averaging, articles 002 and 003): shards are
/// engines fitted on disjoint sets of users; the merged engine holds the union of their users and
/// items and serves like any other.
///
/// - Factor agents (ALS, BPR): item i's factors are Σ_s n_si y_si / Σ_s n_si, n_si the number of
///   shard s's users who interacted with i (a shard that never saw the item contributes nothing;
///   BPR's item bias rides along as its last factor). With privacy, each user's contribution
///   (the rows y_si of their items, one vector) is scaled to norm ≤ C, n_si counts the scaled
///   users, and N(0, σ²C²) is added to each coordinate of the sums before dividing by
///   max(1, Σ_s n_si); each noisy sum is then shrunk toward 0 by the positive-part James–Stein
///   factor (`jamesSteinFactor`: post-processing), so items whose sums are mostly noise do not
///   dominate the ranking. Users keep their shard's vector; ALS's are then solved again exactly
///   against the merged item factors (the fit's user step).
/// - Popularity, item-kNN, session: their tables are derived (log of decayed counts, top-k cosine,
///   top-k transitions), not counts that add, so they are rebuilt from the union of the shards'
///   training interactions, which the shards' snapshots carry: exactly what a single fit on the
///   union computes for them.
/// - The coordinator: blend weights (and query weight) averaged, weighted by each shard's
///   validation users, renormalised. The ranking networks are dropped: the hidden units of
///   independently trained networks are not aligned, so their average is a network no shard
///   validated; the merged model ranks with the averaged blend.
///
/// What the privacy covers: the item-factor sums (the accountant's ε). Not the counts n_si (the
/// merged popularity agent releases them anyway), not the rebuilt tables, not the users' own
/// vectors, and not the log the merged engine holds: a release that must be private keeps the
/// agents to the factor ones and its raw interactions out of what is published.
enum ShardMerge {
    /// The agents a merge can combine.
    static let mergeable = ["popularity", "als", "bpr", "itemknn", "session"]

    struct Shard {
        let config: EngineConfig
        let data: DataStore
        let model: FittedModel
    }

    /// Merges fitted shards (at least one; the caller has checked identity and fitted state).
    static func merge(_ shards: [Shard], parameters mp: MergeParameters) throws(ChorusError) -> EngineSnapshotCodec.Contents {
        precondition(!shards.isEmpty)
        let first = shards[0].model
        try check(shards)
        let threads = mp.threads > 0 ? mp.threads : Parallel.cpuCount

        // The union of the shards' training rows: users are disjoint, items are shared by id. Dense
        // indices are Int32: refused before interning if the union could pass that.
        let userTotal = shards.reduce(0) { $0 + $1.model.users.count }, itemTotal = shards.reduce(0) { $0 + $1.model.items.count }
        try InteractionLog.checkRoom(0, 0, adding: max(userTotal, itemTotal))
        var users = IdIndex(), items = IdIndex()
        var ui = [Int32](), ii = [Int32](), w = [Float](), ts = [Int64]()
        let total = shards.reduce(0) { $0 + $1.model.trainedRows }
        ui.reserveCapacity(total); ii.reserveCapacity(total); w.reserveCapacity(total); ts.reserveCapacity(total)
        for shard in shards {
            let log = shard.data.log
            for r in 0..<shard.model.trainedRows {
                ui.append(users.intern(log.users.keys[Int(log.userIndex[r])]))
                ii.append(items.intern(log.items.keys[Int(log.itemIndex[r])]))
                w.append(log.weights[r]); ts.append(log.timestamps[r])
            }
        }
        for shard in shards { for id in shard.model.items.keys { _ = items.intern(id) } }  // items the model knows without a row
        let log = try InteractionLog(users: users, items: items, userIndex: ui, itemIndex: ii, weights: w, timestamps: ts)
        let data = TrainingData(userCount: users.count, itemCount: items.count, users: ui, items: ii, weights: w, timestamps: ts)
        let userMaps = shards.map { s in s.model.users.keys.map { users.index(of: $0)! } }
        let itemMaps = shards.map { s in s.model.items.keys.map { items.index(of: $0)! } }

        // Each shard's say in the coordinator: its validation users.
        let voices = shards.map { validationUsers($0.model, log: $0.data.log) }
        let halfLife = weightedMode(shards.map(\.model.popularityHalfLifeSeconds), voices)
        var p = first.parameters
        p.threads = mp.threads
        var rng = SeededRandom(seed: mp.seed)
        var agents: [RecommenderAgent] = []
        for (a, agent) in first.agents.enumerated() {
            if agent is FactorAgent {
                let parts = shards.map { $0.model.agents[a] as! FactorAgent }  // `check` compared the agents
                agents.append(try mergeFactors(parts, shards: shards, userMaps: userMaps, itemMaps: itemMaps, data: data,
                                               parameters: p, merge: mp, threads: threads, rng: &rng))
            } else {
                let inputs = AgentRegistry.Inputs(parameters: p, halfLife: halfLife)
                guard let factory = AgentRegistry.kinds.first(where: { $0.name == agent.name })?.forFit(inputs) else {
                    throw .internalError("merge: no factory for the \(agent.name) agent")
                }
                agents.append(try factory.fit(data, FitContext(threads: threads, seed: p.seed)))
                Log.emit(.info, "merge: \(agent.name) rebuilt from the shards' \(data.count) training interactions (its table is derived, not counts that add)")
            }
        }

        let coordinator = mergeCoordinators(shards.map(\.model.coordinator), voices: voices)
        var ledger = shards.compactMap(\.model.privacy).max { $0.rounds < $1.rounds }
        if ledger != nil || mp.isPrivate {
            var l = ledger ?? PrivacyLedger()
            l.record(noiseMultiplier: mp.noiseMultiplier)
            l.delta = mp.delta
            ledger = l
            Log.emit(.info, "merge: privacy round \(l.rounds), noise multiplier \(mp.noiseMultiplier), clip \(mp.clipNorm): epsilon \(l.epsilon()) at delta \(l.delta)")
        }
        let model = FittedModel(users: users, items: items, trainedRows: log.count, seen: data.userItems, agents: agents,
                                coordinator: coordinator, parameters: p, popularityHalfLifeSeconds: halfLife, privacy: ledger)
        var store = DataStore()
        store.log = log
        store.metadata = commonMetadata(shards.map(\.data.metadata))
        for (s, shard) in shards.enumerated() where !shard.data.feedback.isEmpty {
            Log.emit(.warning, "merge: shards[\(s)]'s live-feedback record (negative feedback, event counts) is not carried; its positive events the shard's model trained on are interactions of the merged engine")
        }
        return EngineSnapshotCodec.Contents(config: shards[0].config, data: store, model: model, parameters: p)
    }

    /// Refuses what a merge cannot combine, naming the shard and the cause.
    static func check(_ shards: [Shard]) throws(ChorusError) {
        let first = shards[0].model
        let names = first.agentNames
        for (s, shard) in shards.enumerated() {
            let m = shard.model
            if let name = m.agentNames.first(where: { !mergeable.contains($0) }) {
                throw .invalidArgument("shards[\(s)] has the \(name) agent, which a merge cannot combine (it combines \(mergeable.joined(separator: ", "))): fit the shards with agents naming those")
            }
            guard m.agentNames == names else {
                throw .invalidArgument("shards[\(s)] has the agents \(m.agentNames.joined(separator: ",")) and shards[0] \(names.joined(separator: ",")): fit every shard with the same agents")
            }
            for (a, agent) in m.agents.enumerated() {
                if let fa = agent as? FactorAgent, let fb = first.agents[a] as? FactorAgent, fa.itemFactors.cols != fb.itemFactors.cols {
                    let bias = fa.name == "bpr" ? 1 : 0
                    throw .invalidArgument("shards[\(s)] has \(fa.itemFactors.cols - bias) factors in \(fa.name) and shards[0] \(fb.itemFactors.cols - bias): fit every shard with the same factor count")
                }
            }
            let d = shard.data
            guard d.texts.isEmpty, d.facts.isEmpty, d.scenarios.count <= 1, d.knowledgeGraph.counts.triples == 0 else {
                throw .invalidArgument("shards[\(s)] has texts, item facts, scenarios or a knowledge graph, which a merge does not carry (it merges interactions and the collaborative agents)")
            }
        }
        var owner: [Int64: Int] = [:]
        for (s, shard) in shards.enumerated() {
            for id in shard.model.users.keys {
                if let o = owner.updateValue(s, forKey: id) {
                    throw .invalidArgument("shards[\(o)] and shards[\(s)] share user id \(id): shards must hold disjoint sets of users (partition the interactions by user)")
                }
            }
        }
    }

    /// Users with a validation hold-out in the shard's fit (as `Trainer.fitBlend` holds out).
    static func validationUsers(_ model: FittedModel, log: InteractionLog) -> Double {
        let rows = model.trainedRows
        guard model.parameters.validationFraction > 0, rows > 0 else { return 0 }
        let users = Array(log.userIndex.prefix(rows))
        let held = TemporalHoldOut.split(users: users, timestamps: Array(log.timestamps.prefix(rows)), fraction: Double(model.parameters.validationFraction))
        return Double(Set(zip(users, held).filter(\.1).map(\.0)).count)
    }

    /// The value with the most weight (the first on ties); equal weights when all are 0.
    static func weightedMode<T: Hashable>(_ values: [T], _ weights: [Double]) -> T {
        let w = weights.allSatisfy { $0 == 0 } ? weights.map { _ in 1.0 } : weights
        var sum: [T: Double] = [:]
        for (v, x) in zip(values, w) { sum[v, default: 0] += x }
        var best = values[0]
        for v in values where sum[v]! > sum[best]! { best = v }
        return best
    }

    /// Blend and query weights averaged by `voices` (equal when all are 0), renormalised to the simplex.
    static func mergeCoordinators(_ parts: [CoordinatorModel], voices: [Double]) -> CoordinatorModel {
        let v = voices.allSatisfy { $0 == 0 } ? voices.map { _ in 1.0 } : voices
        let total = v.reduce(0, +)
        let n = parts[0].weights.count
        var weights = [Double](repeating: 0, count: n)
        var query = 0.0
        for (c, x) in zip(parts, v) {
            for a in 0..<n { weights[a] += x * Double(c.weights[a]) }
            query += x * Double(c.queryWeight)
        }
        let sum = weights.reduce(0, +)
        let blend = weights.map { Float(sum > 0 ? $0 / sum : 1 / Double(n)) }
        let dropped = parts.filter { $0.ranker != nil }.count
        let report = "linear blend averaged over \(parts.count) shard(s) by their validation users (\(voices.map { String(Int($0)) }.joined(separator: ", ")))"
            + (dropped > 0 ? "; \(dropped) shard ranking network(s) dropped (independently trained hidden units do not align, so an average is a network no shard validated)" : "")
        if dropped > 0 { Log.emit(.info, "merge: \(report)") }
        // Cold requests' blends: averaged per kind, with the same voices, over the shards that have one.
        var cold: [ColdRequest: [Float]] = [:]
        for kind in ColdRequest.allCases {
            var sum = [Double](repeating: 0, count: n), voice = 0.0
            for (c, x) in zip(parts, v) {
                guard let w = c.coldWeights[kind], w.count == n else { continue }
                for a in 0..<n { sum[a] += x * Double(w[a]) }
                voice += x
            }
            let s = sum.reduce(0, +)
            if voice > 0, s > 0 { cold[kind] = sum.map { Float($0 / s) } }
        }
        return CoordinatorModel(weights: blend, ranker: nil, queryWeight: Float(query / total), candidatesPerAgent: parts[0].candidatesPerAgent,
                                report: report, coldWeights: cold)
    }

    /// Host metadata every shard holds with the same value (a key whose values differ is dropped,
    /// with a warning: the merge cannot know what it means).
    static func commonMetadata(_ parts: [HostMetadata]) -> HostMetadata {
        var out = HostMetadata()
        for (key, value) in parts[0].values.sorted(by: { $0.key < $1.key }) {
            if parts.allSatisfy({ $0.values[key] == value }) { try? out.set(key, value) }
            else { Log.emit(.warning, "merge: host metadata '\(key)' differs between shards and is not carried") }
        }
        return out
    }

    /// Per merged item: Σ over one shard's users of c_u · y_i (into `sums`, items x f) and of c_u
    /// (into `weights`), for the items i each user interacted with, c_u = min(1, C / ‖(y_i)_{i ∈ u}‖)
    /// with clipping (C > 0), else 1. `itemMap`: the shard's item index -> the merged one.
    static func accumulate(itemFactors y: FloatMatrix, seen: SparseMatrix, itemMap: [Int32], clip: Double,
                           sums: inout [Double], weights: inout [Double]) {
        let f = y.cols
        for u in 0..<seen.rows {
            let cols = seen.row(u).cols
            guard !cols.isEmpty else { continue }
            var scale = 1.0
            if clip > 0 {
                var norm2 = 0.0
                for i in cols { let r = y.row(Int(i)); for k in 0..<f { norm2 += Double(r[k]) * Double(r[k]) } }
                let norm = norm2.squareRoot()
                if norm > clip { scale = clip / norm }
            }
            for i in cols {
                let r = y.row(Int(i)), m = Int(itemMap[Int(i)])
                for k in 0..<f { sums[m * f + k] += scale * Double(r[k]) }
                weights[m] += scale
            }
        }
    }

    /// The positive-part James–Stein shrinkage of a noisy sum s = signal + N(0, noise² I_f):
    /// max(0, 1 − (f − 2) noise² / ‖s‖²) (f − 2 for f > 2, else f), 0 when ‖s‖² ≤ 2 f noise², 1
    /// without noise. ‖s‖² − f noise²
    /// estimates the signal's energy, so an item whose sum is mostly noise (few users) is pulled to
    /// 0 instead of being ranked by its noise. A function of the released sum only: post-processing,
    /// the privacy guarantee is unchanged.
    static func jamesSteinFactor(_ s: ArraySlice<Double>, noise: Double) -> Double {
        guard noise > 0 else { return 1 }
        let f = Double(s.count), norm2 = s.reduce(0) { $0 + $1 * $1 }
        // A sum of pure noise has ‖s‖² ≈ f noise² (± sqrt(2f) noise²): below twice that, the estimated
        // signal energy is under the noise's, and the item is zeroed rather than kept at a small
        // factor pointing in the noise's direction (many such items would outrank the real ones).
        guard norm2 > 2 * f * noise * noise else { return 0 }
        return max(0, 1 - (f > 2 ? f - 2 : f) * noise * noise / norm2)
    }

    private static func mergeFactors(_ parts: [FactorAgent], shards: [Shard], userMaps: [[Int32]], itemMaps: [[Int32]], data: TrainingData,
                                     parameters p: FitParameters, merge mp: MergeParameters, threads: Int,
                                     rng: inout SeededRandom) throws(ChorusError) -> FactorAgent {
        let name = parts[0].name, f = parts[0].itemFactors.cols
        let nI = data.itemCount, nU = data.userCount
        var sums = [Double](repeating: 0, count: nI * f), weights = [Double](repeating: 0, count: nI)
        for (s, part) in parts.enumerated() {
            accumulate(itemFactors: part.itemFactors, seen: shards[s].model.seen, itemMap: itemMaps[s], clip: mp.clipNorm,
                       sums: &sums, weights: &weights)
        }
        let noise = mp.noiseMultiplier * mp.clipNorm
        PrivateRelease.addNoise(&sums, std: noise, rng: &rng)
        let items = try FloatMatrix(rows: nI, cols: f)
        for i in 0..<nI where weights[i] > 0 {
            let d = max(1, weights[i]) / jamesSteinFactor(sums[(i * f)..<(i * f + f)], noise: noise), r = items.row(i)
            for k in 0..<f { r[k] = d.isFinite ? Float(sums[i * f + k] / d) : 0 }
        }
        let users = try FloatMatrix(rows: nU, cols: f)
        for (s, part) in parts.enumerated() {
            for (u, m) in userMaps[s].enumerated() { users.row(Int(m)).update(from: part.userFactors.row(u), count: f) }
        }
        if name == "als" {
            try ImplicitALS.solveUsers(userItems: data.userItems, items: items, users: users, regularization: p.regularization,
                                       alpha: p.alpha, threads: threads)
        }
        try FactorAgent.requireFinite(name, (users, items))
        return try FactorAgent(name: name, userFactors: users, itemFactors: items)
    }

    /// A start model's factor agents laid out in a new fit's id space (`Engine.fit(_:startingFrom:)`):
    /// the rows of the users and items the start knows, by id; the others drawn as the fit's own
    /// random start draws them (ALS: uniform in [0, 0.01); BPR: uniform in ±1/(2f), bias 0).
    /// - Throws: `.invalidArgument` when a factor agent of the start has another factor count than the fit asks for.
    static func initialAgents(from start: FittedModel, users: IdIndex, items: IdIndex, parameters p: FitParameters) throws(ChorusError) -> [String: RecommenderAgent] {
        var out: [String: RecommenderAgent] = [:]
        var rng = SeededRandom(seed: p.seed ^ 0x5EED_57A7)
        for case let agent as FactorAgent in start.agents {
            let bias = agent.name == "bpr" ? 1 : 0
            // BPR keeps its own factor count (BPRParameters' default); ALS has the fit's.
            let wanted = bias == 1 ? BPRParameters().factors : p.factors
            let f = wanted + bias
            guard agent.itemFactors.cols == f else {
                throw .invalidArgument("the start engine's \(agent.name) has \(agent.itemFactors.cols - bias) factors and this fit's has \(wanted): fit with the start's factor count")
            }
            func draw(_ row: UnsafeMutablePointer<Float>, user: Bool) {
                for k in 0..<f { row[k] = bias == 1 ? (rng.nextFloat() - 0.5) / Float(wanted) : rng.nextFloat() * 0.01 }
                if bias == 1 { row[f - 1] = user ? 1 : 0 }
            }
            let u = try FloatMatrix(rows: users.count, cols: f), it = try FloatMatrix(rows: items.count, cols: f)
            for (index, id) in users.keys.enumerated() {
                if let s = start.users.index(of: id) { u.row(index).update(from: agent.userFactors.row(Int(s)), count: f) } else { draw(u.row(index), user: true) }
            }
            for (index, id) in items.keys.enumerated() {
                if let s = start.items.index(of: id) { it.row(index).update(from: agent.itemFactors.row(Int(s)), count: f) } else { draw(it.row(index), user: false) }
            }
            out[agent.name] = try FactorAgent(name: agent.name, userFactors: u, itemFactors: it)
        }
        return out
    }
}

extension Engine {
    /// Merges engines fitted on disjoint sets of users into one (`ShardMerge`): the union of their
    /// users and items, factor agents federated-averaged (optionally with differential privacy,
    /// `MergeParameters`), the other collaborative agents rebuilt from the union of their training
    /// interactions, the coordinator's blend averaged. One shard gives a copy (with privacy on, a
    /// merge of one). The shards are not changed.
    /// - Throws: `.invalidArgument` for no shards, an engine given twice, shards with different
    ///   agents or factor counts, shards sharing a user (naming one), agents or data a merge cannot
    ///   carry, bad parameters; `.notFitted` naming a shard without a model.
    public static func merge(_ shards: [Engine], parameters: MergeParameters = MergeParameters()) throws(ChorusError) -> Engine {
        try parameters.validate()
        guard !shards.isEmpty else { throw .invalidArgument("merge needs at least one shard, got none") }
        for (i, e) in shards.enumerated() {
            if let j = shards.prefix(i).firstIndex(where: { $0 === e }) {
                throw .invalidArgument("shards[\(i)] is the same engine as shards[\(j)]: each shard is merged once")
            }
        }
        var parts: [ShardMerge.Shard] = []
        for (i, e) in shards.enumerated() {
            let (data, model) = e.dataAndModel
            guard let model else { throw .notFitted("shards[\(i)] is not fitted: fit every shard before merging") }
            if e.interactionsWithheld {
                throw .invalidArgument("shards[\(i)] was saved without its interactions, which a merge needs (it rebuilds popularity, itemknn and session from them)")
            }
            parts.append(ShardMerge.Shard(config: e.config, data: data, model: model))
        }
        if shards.count == 1, !parameters.isPrivate, parts[0].model.privacy == nil {
            return try load(bytes: shards[0].snapshotBytes())  // a copy
        }
        return Engine(restoring: try ShardMerge.merge(parts, parameters: parameters))
    }

    /// The privacy spent by the merges this engine's model descends from: ε at the ledger's δ
    /// (infinite when a merge added no noise) and the rounds; nil when no private merge made it.
    public var privacySpent: (epsilon: Double, delta: Double, rounds: Int)? {
        guard let ledger = dataAndModel.model?.privacy else { return nil }
        return (ledger.epsilon(), ledger.delta, ledger.rounds)
    }
}
