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
/// model's vector. BPR: the same ridge solve against BPR's item factors without their bias column
/// (BPR has no closed-form user step; the solve places the user where their items are, and the
/// item bias still adds at scoring); the user's bias side stays 1.
/// Cost per user: O(n_u f² + f³).
struct FoldIn: Sendable {
    struct Basis: Sendable {
        /// The agent's index in the model, and its name (the key of `AgentRequest.folded`).
        let agent: Int
        let name: String
        /// The item factors the solve runs against (BPR: without the bias column), and YᵀY + λI.
        let items: FloatMatrix
        let gram: FloatMatrix
        /// BPR: the solution gets a last component 1 (the user side of the item bias).
        let bias: Bool
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
            let items = try FloatMatrix(rows: factors.itemFactors.rows, cols: dims)
            for i in 0..<items.rows { items.row(i).update(from: factors.itemFactors.row(i), count: dims) }
            let gram = try FloatMatrix(rows: dims, cols: dims)
            Kernels.gram(items, lambda: lambda, into: gram)
            bases.append(Basis(agent: a, name: factors.name, items: items, gram: gram, bias: bias, users: factors.userFactors))
        }
        self.bases = bases
        self.alpha = model.parameters.alpha
    }

    /// The user's vectors, by agent name, from their model-time row (`modelUser`, nil for a user
    /// the model does not know) and their online events (item indices of the model, weights).
    /// Empty when the user has no interaction with an item of the model.
    func fold(model: FittedModel, modelUser: Int32?, online: [(item: Int32, weight: Float)]) throws(ChorusError) -> [String: [Float]] {
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
            let f = b.items.cols
            var x = [Float](repeating: 0, count: f)
            if let u = modelUser, Int(u) < b.users.rows { x.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: b.users.row(Int(u)), count: f) } }
            try ImplicitALS.solveRow(items: items, weights: w, alpha: alpha, y: b.items, gram: b.gram, x: &x, cgSteps: f)
            guard x.allSatisfy({ $0.isFinite }) else { continue }  // extreme weights: keep the model's vector
            if b.bias { x.append(1) }
            out[b.name] = x
        }
        return out
    }
}
