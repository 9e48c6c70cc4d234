#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore
import ChorusCollaborative

/// Fold-in of user vectors for the factor agents (implicit's `recalculate_user`): a user's vector
/// recomputed from their whole history (the model's interactions plus the online ones) against the
/// model's fixed item factors, so a known user's new events and a new user's first ones are served
/// at the next recommend, without a refit.
///
/// ALS: the exact regularised least-squares solve of the fit's user step, (YᵀY + λI + Σ α w_i
/// y_i y_iᵀ) x = Σ (1 + α w_i) y_i, by `ImplicitALS.solveRow`: conjugate gradients preconditioned
/// by the system's diagonal until the residual is 10^-3 of the right-hand side (at most f steps, exact
/// on an f x f system up to rounding), warm-started from the model's vector; cost O(steps · n_u f)
/// per user. A user's later fold-ins (same model) start from the previous one and solve to the
/// same tolerance (a fixed 3 steps from there, as an ALS sweep takes, left errors of 3-7% after a
/// few batches of cross-cluster purchases on a small example). BPR has no closed-form user step: its fold-in is
/// the fit's own stochastic gradient step on the user's vector alone (item factors and biases
/// fixed), continued from the user's last fold-in (else the model's vector, else 0), `bprEpochs`
/// steps per new event (a new user: per item; at most `maxBPRSteps`), positives uniform over the
/// user's whole history, negatives uniform over the catalogue, seeded by the user id and version
/// (deterministic); cost O(steps · f). (A ridge solve against BPR's item factors was
/// tried first: its vectors are on another scale than BPR's, so the item biases swamped them and a
/// new user got the other cluster's popular items.)
struct FoldIn: Sendable {
    struct Basis: Sendable {
        /// The agent's index in the model, and its name (the key of `AgentRequest.folded`).
        let agent: Int
        let name: String
        /// The dimension folded (BPR: without the bias column).
        let dims: Int
        /// ALS: YᵀY + λI of its item factors (nil for BPR, whose fold-in is SGD).
        let gram: FloatMatrix?
        /// BPR: the solution gets a last component 1 (the user side of the item bias).
        let bias: Bool
        let items: FloatMatrix
        /// The model's user factors (warm start for a known user).
        let users: FloatMatrix
        /// ALS: UᵀU + λI of the user factors (placing new items; nil for BPR).
        let userGram: FloatMatrix?
    }
    let bases: [Basis]
    let alpha: Float

    /// One user's fold-in: their model index (nil for a user the model does not know), the online
    /// events on the model's items, and the vectors folded last time (same model) with how many of
    /// those events came since.
    struct Input: Sendable {
        let id: Int64
        let modelUser: Int32?
        let version: UInt64
        let online: [(item: Int32, weight: Float)]
        let previous: [String: [Float]]
        let newEvents: Int
    }

    /// The fold-in of a model's factor agents (none when it has no ALS or BPR agent).
    init(model: FittedModel) throws(ChorusError) {
        var bases: [Basis] = []
        let lambda = model.parameters.regularization
        for (a, agent) in model.agents.enumerated() {
            guard let factors = agent as? FactorAgent else { continue }
            let bias = factors.name == "bpr"
            let dims = factors.itemFactors.cols - (bias ? 1 : 0)
            guard dims >= 1 else { continue }
            var gram: FloatMatrix? = nil, userGram: FloatMatrix? = nil
            if !bias {
                gram = try FloatMatrix(rows: dims, cols: dims)
                Kernels.gram(factors.itemFactors, lambda: lambda, into: gram!)
                userGram = try FloatMatrix(rows: dims, cols: dims)
                Kernels.gram(factors.userFactors, lambda: lambda, into: userGram!)
            }
            bases.append(Basis(agent: a, name: factors.name, dims: dims, gram: gram, bias: bias, items: factors.itemFactors,
                               users: factors.userFactors, userGram: userGram))
        }
        self.bases = bases
        self.alpha = model.parameters.alpha
    }

    /// The user's vectors, by agent name, from their model-time row (`modelUser`, nil for a user
    /// the model does not know) and their online events (item indices of the model, weights).
    /// Empty when the user has no interaction with an item of the model.
    func fold(model: FittedModel, _ input: Input) throws(ChorusError) -> [String: [Float]] {
        let (id, modelUser) = (input.id, input.modelUser)
        // The user's items and summed weights, ascending: the model's row (sorted, one entry an
        // item) merged with the online events sorted by item (ties in event order).
        // Sorted as packed (item, position) keys: integers sort far faster than tuples by a closure
        // (the stable sort was a twelfth of a fold-in's time on the replays).
        var keys: [UInt64] = []
        keys.reserveCapacity(input.online.count)
        for (k, e) in input.online.enumerated() where e.item >= 0 && Int(e.item) < model.itemCount {
            keys.append(UInt64(UInt32(e.item)) << 32 | UInt64(UInt32(truncatingIfNeeded: k)))
        }
        keys.sort()
        let online = keys.map { input.online[Int($0 & 0xFFFF_FFFF)] }
        var modelCols = ArraySlice<Int32>(), modelValues = ArraySlice<Float>()
        if let u = modelUser, Int(u) < model.seen.rows { (modelCols, modelValues) = model.seen.row(Int(u)) }
        var items: [Int32] = [], w: [Float] = []
        items.reserveCapacity(modelCols.count + online.count); w.reserveCapacity(modelCols.count + online.count)
        // Summed weights can overflow Float: capped at the largest finite value, as the solve needs.
        func add(_ i: Int32, _ x: Float) {
            if let last = items.last, last == i { w[w.count - 1] = min(w[w.count - 1] + x, .greatestFiniteMagnitude) }
            else { items.append(i); w.append(min(x, .greatestFiniteMagnitude)) }
        }
        var a = modelCols.startIndex, b = 0
        while a < modelCols.endIndex || b < online.count {
            if b >= online.count || (a < modelCols.endIndex && modelCols[a] <= online[b].item) { add(modelCols[a], modelValues[a]); a += 1 }
            else { add(online[b].item, online[b].weight); b += 1 }
        }
        guard !items.isEmpty else { return [:] }
        var out: [String: [Float]] = [:]
        for b in bases {
            let f = b.dims
            var x = [Float](repeating: 0, count: f)
            if let u = modelUser, Int(u) < b.users.rows { x.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: b.users.row(Int(u)), count: f) } }
            if b.bias || b.gram == nil {
                // Continues from the last fold-in (or the model's vector): steps for the new events.
                if let p = input.previous[b.name], p.count == f + 1 { x = Array(p.prefix(f)) }
                let fresh = input.previous[b.name] == nil && modelUser == nil ? items.count : max(1, input.newEvents)
                bprSteps(&x, positives: items, steps: min(Self.maxBPRSteps, Self.bprEpochs * fresh), basis: b,
                         seed: (UInt64(bitPattern: id) &* 0x9E37_79B9_7F4A_7C15) ^ input.version)
            } else {
                // Warm-started from the last fold-in when there is one (the solution before this
                // batch), run to `cgTolerance`, not a fixed count: 3 steps (a sweep's count) left
                // 3-7% errors after a few batches.
                if let p = input.previous[b.name], p.count == f { x = p }
                try ImplicitALS.solveRow(items: items, weights: w, alpha: alpha, y: b.items, gram: b.gram!, x: &x, cgSteps: f,
                                         tolerance: Self.cgTolerance)
            }
            guard x.allSatisfy({ $0.isFinite }) else { continue }  // extreme weights: keep the model's vector
            if b.bias { x.append(1) }
            out[b.name] = x
        }
        return out
    }

    /// A new item's vectors, placed from its users (`users[agent]`: each user's vector and weight),
    /// the item-side counterpart of `fold`: ALS's exact item step, (UᵀU + λI + Σ α w_u x_u x_uᵀ) y =
    /// Σ (1 + α w_u) x_u with U the model's user factors (users the model does not know count in the
    /// sum by their fold-in, not in UᵀU), warm-started from the last placement and solved to the user
    /// fold-in's tolerance (`cgTolerance`; all f steps made placements a seventh of ingest); BPR's SGD step on the
    /// item side (its factors and bias), continued from the last placement for 60 steps per user
    /// gained (negatives uniform over the model's items, seeded by the item id).
    struct ItemInput: Sendable {
        let id: Int64
        let users: Int
        /// Per agent: each user's vector and weight.
        let vectors: [String: [([Float], Float)]]
        /// The item's vectors placed last time, and from how many users.
        let previous: [String: [Float]]
        let previousUsers: Int
    }

    func foldItem(_ input: ItemInput) throws(ChorusError) -> [String: [Float]] {
        let (id, users) = (input.id, input.vectors)
        var out: [String: [Float]] = [:]
        for b in bases {
            guard let list = users[b.name], !list.isEmpty else { continue }
            if let userGram = b.userGram {
                let f = b.dims
                let y = try FloatMatrix(rows: list.count, cols: f)
                for (r, (v, _)) in list.enumerated() where v.count == f { y.row(r).update(from: v, count: f) }
                var x = input.previous[b.name].flatMap { $0.count == f ? $0 : nil } ?? [Float](repeating: 0, count: f)
                try ImplicitALS.solveRow(items: (0..<list.count).map { Int32($0) }, weights: list.map { min($0.1, .greatestFiniteMagnitude) },
                                         alpha: alpha, y: y, gram: userGram, x: &x, cgSteps: f, tolerance: Self.cgTolerance)
                if x.allSatisfy({ $0.isFinite }) { out[b.name] = x }
            } else if b.bias {
                let q = b.items, f = b.dims, n = q.rows
                guard n >= 1, q.cols == f + 1 else { continue }
                let lr = FitParameters.bprLearningRate, reg = BPRParameters().regularization
                // Continues from the last placement: steps for the users gained since.
                var y = input.previous[b.name].flatMap { $0.count == f + 1 ? $0 : nil } ?? [Float](repeating: 0, count: f + 1)
                let fresh = input.previous[b.name] == nil ? list.count : max(1, input.users - input.previousUsers)
                var rng = SeededRandom(seed: UInt64(bitPattern: id) &* 0xD1B5_4A32_D192_ED03 ^ UInt64(list.count))
                // The users' rows side by side for the C loop (`ck_bpr_fold_item`).
                let rows = list.filter { $0.0.count == f + 1 }
                guard !rows.isEmpty else { continue }
                let packed = rows.flatMap(\.0)
                packed.withUnsafeBufferPointer { u in
                    y.withUnsafeMutableBufferPointer { yb in
                        Kernels.bprFoldItem(yb.baseAddress!, f: f, users: u.baseAddress!, userCount: rows.count, items: q.base, itemCount: n,
                                            learningRate: lr, regularization: reg, rng: &rng, steps: min(Self.maxBPRSteps, Self.bprEpochs * fresh))
                    }
                }
                if y.allSatisfy({ $0.isFinite }) { out[b.name] = y }
            }
        }
        return out
    }

    /// The ALS fold-in's CG stops at a residual 10^-3 of the right-hand side (at most f steps): a
    /// warm start from the last fold-in then takes a few steps instead of f. On the validation
    /// replays (`chorus replay --modes online --train-fraction 0.3 --limit 20000`, seeds 1 and 2) hit@10
    /// was the same at 10^-2, 10^-3 and 10^-4 (and, in an earlier run, with all f steps): 3,944 / 3,951 / 3,948 hits of
    /// 19,493 (ml-100k seed 1), 3,853 / 3,857 / 3,856 (seed 2), ml-latest-small 1,110 each (seed 1)
    /// and 1,000 / 997 / 996 (seed 2). Looser is cheaper, but at 10^-2 a heavy user's one new event
    /// can leave the warm start inside the tolerance, no step taken: 10^-3 keeps the event visible.
    static let cgTolerance: Float = 1e-3
    static let bprEpochs = FitParameters.defaultBPREpochs
    static let maxBPRSteps = 20_000

    /// BPR's SGD step (`BPR.Step`) on the user side only: x += lr (σ(−x·(q_i − q_j) − b_i + b_j)(q_i − q_j) − reg x).
    private func bprSteps(_ x: inout [Float], positives: [Int32], steps: Int, basis b: Basis, seed: UInt64) {
        let q = b.items, f = b.dims, n = q.rows
        guard positives.count > 0, n >= 2, q.cols == f + 1 else { return }
        let lr = FitParameters.bprLearningRate, reg = BPRParameters().regularization
        // The kernel reads rows by these indices and tests membership by binary search.
        guard x.count == f, positives.allSatisfy({ $0 >= 0 && Int($0) < n }) else { return }
        let ascending = zip(positives, positives.dropFirst()).allSatisfy { $0 < $1 } ? positives : Array(Set(positives)).sorted()
        var rng = SeededRandom(seed: seed)
        // In C (`ck_bpr_fold_user`: the draws of the Swift loop it replaced, whose hashed membership
        // test and bounds checks made it a quarter of ingest's time; the dot product in 8 partial sums).
        ascending.withUnsafeBufferPointer { p in
            x.withUnsafeMutableBufferPointer { xb in
                Kernels.bprFoldUser(xb.baseAddress!, f: f, positives: p, items: q.base, itemCount: n, learningRate: lr,
                                    regularization: reg, rng: &rng, steps: steps)
            }
        }
    }
}
