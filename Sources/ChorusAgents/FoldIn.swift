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
/// y_i y_iᵀ) x = Σ (1 + α w_i) y_i, by the fit's own per-row routine (`ImplicitALS.solveRow`) run
/// for f conjugate-gradient steps (exact on an f x f system up to rounding), warm-started from the
/// model's vector; cost O(n_u f² + f³) per user. BPR has no closed-form user step: its fold-in is
/// the fit's own stochastic gradient step on the user's vector alone (item factors and biases
/// fixed), `bprEpochs` x n_u steps (at most `maxBPRSteps`) from the model's vector (0 for a new
/// user), positives uniform over the user's items, negatives uniform over the catalogue, seeded by
/// the user id (deterministic); cost O(steps · f). (A ridge solve against BPR's item factors was
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
    }
    let bases: [Basis]
    let alpha: Float

    /// The fold-in of a model's factor agents (none when it has no ALS or BPR agent).
    init(model: FittedModel) throws(ChorusError) {
        var bases: [Basis] = []
        let lambda = model.parameters.regularization
        for (a, agent) in model.agents.enumerated() {
            guard let factors = agent as? FactorAgent else { continue }
            let bias = factors.name == "bpr"
            let dims = factors.itemFactors.cols - (bias ? 1 : 0)
            guard dims >= 1 else { continue }
            var gram: FloatMatrix? = nil
            if !bias {
                gram = try FloatMatrix(rows: dims, cols: dims)
                Kernels.gram(factors.itemFactors, lambda: lambda, into: gram!)
            }
            bases.append(Basis(agent: a, name: factors.name, dims: dims, gram: gram, bias: bias, items: factors.itemFactors, users: factors.userFactors))
        }
        self.bases = bases
        self.alpha = model.parameters.alpha
    }

    /// The user's vectors, by agent name, from their model-time row (`modelUser`, nil for a user
    /// the model does not know) and their online events (item indices of the model, weights).
    /// Empty when the user has no interaction with an item of the model.
    func fold(model: FittedModel, user id: Int64, modelUser: Int32?, online: [(item: Int32, weight: Float)]) throws(ChorusError) -> [String: [Float]] {
        var weights: [Int32: Float] = [:]
        if let u = modelUser, Int(u) < model.seen.rows {
            let row = model.seen.row(Int(u))
            for (i, w) in zip(row.cols, row.values) { weights[i, default: 0] += w }
        }
        for e in online where e.item >= 0 && Int(e.item) < model.itemCount { weights[e.item, default: 0] += e.weight }
        guard !weights.isEmpty else { return [:] }
        let items = weights.keys.sorted()
        // Summed weights can overflow Float: capped at the largest finite value, as the solve needs.
        let w = items.map { min(weights[$0]!, .greatestFiniteMagnitude) }
        var out: [String: [Float]] = [:]
        for b in bases {
            let f = b.dims
            var x = [Float](repeating: 0, count: f)
            if let u = modelUser, Int(u) < b.users.rows { x.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: b.users.row(Int(u)), count: f) } }
            if b.bias || b.gram == nil {
                bprSteps(&x, positives: items, basis: b, model: model, seed: (UInt64(bitPattern: id) &* 0x9E37_79B9_7F4A_7C15) ^ UInt64(items.count))
            } else {
                try ImplicitALS.solveRow(items: items, weights: w, alpha: alpha, y: b.items, gram: b.gram!, x: &x, cgSteps: f)
            }
            guard x.allSatisfy({ $0.isFinite }) else { continue }  // extreme weights: keep the model's vector
            if b.bias { x.append(1) }
            out[b.name] = x
        }
        return out
    }

    static let bprEpochs = FitParameters.defaultBPREpochs
    static let maxBPRSteps = 20_000

    /// BPR's SGD step (`BPR.Step`) on the user side only: x += lr (σ(−x·(q_i − q_j) − b_i + b_j)(q_i − q_j) − reg x).
    private func bprSteps(_ x: inout [Float], positives: [Int32], basis b: Basis, model: FittedModel, seed: UInt64) {
        let q = b.items, f = b.dims, n = q.rows
        guard positives.count > 0, n >= 2, q.cols == f + 1 else { return }
        let lr = FitParameters.bprLearningRate, reg = BPRParameters().regularization
        let owned = Set(positives)
        var rng = SeededRandom(seed: seed)
        let steps = min(Self.maxBPRSteps, Self.bprEpochs * positives.count)
        for _ in 0..<steps {
            let i = Int(positives[rng.nextInt(below: positives.count)])
            var j = rng.nextInt(below: n), tries = 0
            while tries < 8 && owned.contains(Int32(j)) { j = rng.nextInt(below: n); tries += 1 }
            if j == i { continue }
            let qi = q.row(i), qj = q.row(j)
            var d = qi[f] - qj[f]  // the item biases (the user's side is 1)
            for c in 0..<f { d += x[c] * (qi[c] - qj[c]) }
            let z = 1 / (1 + expf(d))
            for c in 0..<f { x[c] += lr * (z * (qi[c] - qj[c]) - reg * x[c]) }
        }
    }
}
