#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore

/// Hyper-parameters of BPR matrix factorisation (defaults as `implicit`'s).
public struct BPRParameters: Sendable, Equatable {
    public var factors = 64
    public var learningRate: Float = 0.01
    public var regularization: Float = 0.01
    /// Epochs; each draws as many (user, positive, negative) triples as there are interactions.
    public var iterations = 100
    public var seed: UInt64 = 42
    public init() {}

    /// Checks ranges: sizes the loops run over, a positive finite rate, a finite regularisation >= 0.
    public func validate() throws(ChorusError) {
        guard factors >= 1 && factors <= 4096 else { throw .invalidArgument("BPR factors must be in 1...4096, got \(factors)") }
        guard iterations >= 0 && iterations <= 100_000 else { throw .invalidArgument("BPR iterations must be in 0...100000, got \(iterations)") }
        guard learningRate.isFinite && learningRate > 0 else { throw .invalidArgument("BPR learning rate must be finite and > 0, got \(learningRate)") }
        guard regularization.isFinite && regularization >= 0 else {
            throw .invalidArgument("BPR regularisation must be finite and >= 0, got \(regularization)")
        }
    }
}

/// Bayesian Personalised Ranking (Rendle et al. 2009) for implicit feedback: maximise
/// Σ ln σ(x_ui − x_uj) − λ‖Θ‖² over triples of a user, an item they interacted with and one they did
/// not, by stochastic gradient ascent. x_ui = p_u · q_i + b_i (the item bias is a factor whose user
/// side is fixed to 1, as `implicit` does).
///
/// Sampling as `implicit`: the positive pair uniformly over interactions, the negative uniformly over
/// items, redrawn (up to 8 times) when the user has it. Single-threaded, so a seed fixes the result
/// exactly (Hogwild threads would not be deterministic).
public enum BPR {
    public struct Factors: Sendable {
        /// users x (factors + 1): the last column is 1 (pairs with the item bias).
        public let users: FloatMatrix
        /// items x (factors + 1): the last column is the item bias.
        public let items: FloatMatrix
    }

    /// - Parameter progress: called after each epoch with the fraction done; true cancels.
    /// - Throws: `.cancelled`, `.outOfMemory`, `.invalidArgument` for an empty matrix.
    public static func fit(userItems ui: SparseMatrix, parameters p: BPRParameters,
                           progress: ((Double) -> Bool)? = nil) throws(ChorusError) -> Factors {
        try p.validate()
        guard ui.nonZeros > 0, ui.cols >= 2 else { throw .invalidArgument("BPR needs interactions on at least 2 items") }
        let f = p.factors + 1
        let users = try FloatMatrix(rows: ui.rows, cols: f)
        let items = try FloatMatrix(rows: ui.cols, cols: f)
        var rng = SeededRandom(seed: p.seed)
        let scale = 1 / Float(p.factors)
        for u in 0..<ui.rows {
            let r = users.row(u)
            for c in 0..<(f - 1) { r[c] = (rng.nextFloat() - 0.5) * scale }
            r[f - 1] = 1
        }
        for i in 0..<ui.cols {
            let r = items.row(i)
            for c in 0..<(f - 1) { r[c] = (rng.nextFloat() - 0.5) * scale }
            r[f - 1] = 0
        }
        // The user of every interaction, to draw positives uniformly over interactions.
        var owner = [Int32](repeating: 0, count: ui.nonZeros)
        for u in 0..<ui.rows { for e in ui.rowStart[u]..<ui.rowStart[u + 1] { owner[e] = Int32(u) } }
        let lr = p.learningRate, reg = p.regularization
        for epoch in 0..<p.iterations {
            for _ in 0..<ui.nonZeros {
                let e = rng.nextInt(below: ui.nonZeros)
                let u = Int(owner[e]), i = Int(ui.colIndex[e])
                let row = ui.colIndex[ui.rowStart[u]..<ui.rowStart[u + 1]]
                var j = rng.nextInt(below: ui.cols)
                var tries = 0
                while tries < 8 && contains(row, Int32(j)) { j = rng.nextInt(below: ui.cols); tries += 1 }
                if j == i { continue }
                let pu = users.row(u), qi = items.row(i), qj = items.row(j)
                var x: Float = 0
                for c in 0..<f { x += pu[c] * (qi[c] - qj[c]) }
                let z = 1 / (1 + expf(x))  // σ(−x): the gradient of ln σ(x)
                for c in 0..<(f - 1) {
                    let uc = pu[c], ic = qi[c], jc = qj[c]
                    pu[c] += lr * (z * (ic - jc) - reg * uc)
                    qi[c] += lr * (z * uc - reg * ic)
                    qj[c] += lr * (-z * uc - reg * jc)
                }
                // Bias: the user side stays 1.
                qi[f - 1] += lr * (z - reg * qi[f - 1])
                qj[f - 1] += lr * (-z - reg * qj[f - 1])
            }
            if let progress, progress(Double(epoch + 1) / Double(p.iterations)) { throw .cancelled("BPR fit cancelled") }
        }
        return Factors(users: users, items: items)
    }

    /// Binary search in a row's sorted column indices.
    @inline(__always)
    static func contains(_ row: ArraySlice<Int32>, _ j: Int32) -> Bool {
        var lo = row.startIndex, hi = row.endIndex
        while lo < hi {
            let mid = (lo + hi) / 2
            if row[mid] < j { lo = mid + 1 } else { hi = mid }
        }
        return lo < row.endIndex && row[lo] == j
    }
}
