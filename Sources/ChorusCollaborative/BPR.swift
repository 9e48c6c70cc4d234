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
    /// Worker threads for the blocks of stratified SGD (see `BPR`). The result depends on the
    /// seed only, not on the thread count.
    public var threads = 1
    public init() {}

    /// Checks ranges: sizes the loops run over, a positive finite rate, a finite regularisation >= 0.
    public func validate() throws(ChorusError) {
        guard factors >= 1 && factors <= 4096 else { throw .invalidArgument("BPR factors must be in 1...4096, got \(factors)") }
        guard iterations >= 0 && iterations <= 100_000 else { throw .invalidArgument("BPR iterations must be in 0...100000, got \(iterations)") }
        guard threads >= 1 && threads <= 1024 else { throw .invalidArgument("BPR threads must be in 1...1024, got \(threads)") }
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
/// items, redrawn (up to 8 times) when the user has it.
///
/// Parallel by stratified SGD (Gemulla et al., KDD 2011) instead of implicit's Hogwild, so that a
/// seed fixes the result exactly, whatever the thread count: users and items are dealt into B
/// blocks each (`blockCount`: 8, fewer for small catalogues; round-robin by decreasing interaction
/// count, so the blocks carry similar work); an epoch is B rounds, and in round s block b trains
/// users b against items (b + s) mod B, drawing its positives from that block's interactions and
/// its negatives from that item block, with a generator seeded by (seed, epoch, round, block). The
/// blocks of one round share no user and no item, so any number of threads can train them at once
/// without writing the same row. With B = 1 this is the plain sequential algorithm.
public enum BPR {
    public struct Factors: Sendable {
        /// users x (factors + 1): the last column is 1 (pairs with the item bias).
        public let users: FloatMatrix
        /// items x (factors + 1): the last column is the item bias.
        public let items: FloatMatrix
        public init(users: FloatMatrix, items: FloatMatrix) { self.users = users; self.items = items }
    }

    /// - Parameters:
    ///   - progress: called after each epoch with the fraction done; true cancels.
    ///   - afterEpoch: called after each epoch with the epochs done and the factors as they are;
    ///     true stops training there (early stopping: not an error).
    /// - Throws: `.cancelled`, `.outOfMemory`, `.invalidArgument` for an empty matrix.
    ///   - initial: factors to start from instead of the random start (users x (factors + 1) and
    ///     items x (factors + 1), as returned; copied, not changed, unless `inPlace`: then trained
    ///     in place and returned): a round of federated training continues from the merged model's
    ///     factors, a final fit from its validation twin's (in place: that twin is dropped after).
    ///     Ignored when the shapes differ.
    public static func fit(userItems ui: SparseMatrix, parameters p: BPRParameters, initial: Factors? = nil, inPlace: Bool = false,
                           progress: ((Double) -> Bool)? = nil,
                           afterEpoch: ((Int, Factors) -> Bool)? = nil) throws(ChorusError) -> Factors {
        try p.validate()
        guard ui.nonZeros > 0, ui.cols >= 2 else { throw .invalidArgument("BPR needs interactions on at least 2 items") }
        guard ui.nonZeros < Int(Int32.max) else { throw .invalidArgument("BPR takes fewer than 2^31 interactions, got \(ui.nonZeros)") }
        let f = p.factors + 1
        let start = initial.flatMap { $0.users.rows == ui.rows && $0.items.rows == ui.cols && $0.users.cols == f && $0.items.cols == f ? $0 : nil }
        let reuse = inPlace && start != nil
        let factors: Factors
        if reuse, let start { factors = start } else {
            factors = Factors(users: try FloatMatrix(rows: ui.rows, cols: f), items: try FloatMatrix(rows: ui.cols, cols: f))
        }
        let users = factors.users, items = factors.items
        var rng = SeededRandom(seed: p.seed)
        let scale = 1 / Float(p.factors)
        if reuse {
            // The random start's draws still advance the generator: the same epochs as a copy.
            for _ in 0..<((ui.rows + ui.cols) * (f - 1)) { _ = rng.nextFloat() }
        } else {
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
        }
        if let start {
            if !reuse {
                users.base.update(from: start.users.base, count: users.count)
                items.base.update(from: start.items.base, count: items.count)
            }
            for u in 0..<ui.rows { users.row(u)[f - 1] = 1 }
        }
        // The user of every interaction, to draw positives uniformly over interactions.
        var owner = [Int32](repeating: 0, count: ui.nonZeros)
        for u in 0..<ui.rows { for e in ui.rowStart[u]..<ui.rowStart[u + 1] { owner[e] = Int32(u) } }
        let owners = owner
        let b = blockCount(users: ui.rows, items: ui.cols)
        // One block (all edges, all items) when the data is too small to stratify.
        let strata = b > 1 ? Strata(ui, owner: owner, blocks: b)
            : Strata(items: [(0..<Int32(ui.cols)).map { $0 }], edges: [(0..<Int32(ui.nonZeros)).map { $0 }])
        let (lr, reg) = (p.learningRate, p.regularization)
        for epoch in 0..<p.iterations {
            for round in 0..<b {
                Parallel.forEach(count: b, threads: min(p.threads, b), grain: 1) { _, w in
                    let ib = (w + round) % b
                    let edges = strata.edges[w * b + ib], negatives = strata.items[ib]
                    if edges.isEmpty { return }
                    var rng = b > 1 ? SeededRandom(seed: p.seed ^ (UInt64(epoch * b + round) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(w + 1) &* 0xD1B5_4A32_D192_ED03))
                        : SeededRandom(seed: p.seed ^ (UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15))
                    // The loop itself is C (`Kernels.bprBlock`): it draws a few steps ahead and
                    // prefetches their rows, since each step waits on three random rows.
                    edges.withUnsafeBufferPointer { ep in negatives.withUnsafeBufferPointer { np in
                        owners.withUnsafeBufferPointer { op in ui.rowStart.withUnsafeBufferPointer { rs in ui.colIndex.withUnsafeBufferPointer { ci in
                            Kernels.bprBlock(edges: ep, negatives: np, owner: op.baseAddress!, rowStart: rs.baseAddress!, colIndex: ci.baseAddress!,
                                             users: users.base, items: items.base, f: f, learningRate: lr, regularization: reg,
                                             rng: &rng, steps: edges.count)
                        } } }
                    } }
                }
            }
            if let progress, progress(Double(epoch + 1) / Double(p.iterations)) { throw .cancelled("BPR fit cancelled") }
            if let afterEpoch, afterEpoch(epoch + 1, factors) { break }
        }
        return factors
    }

    /// Blocks of stratified SGD for a users x items matrix: 8, or fewer so that every item block
    /// holds at least 64 items (a negative is drawn from the positive's block, so a tiny block
    /// would hardly have one), and no more blocks than users. Depends on the data only.
    static func blockCount(users: Int, items: Int) -> Int { max(1, min(8, items / 64, users)) }

    /// The blocks of stratified SGD: `items[b]` the items of block b, `edges[ub * t + ib]` the
    /// interactions of user block ub on item block ib.
    struct Strata: Sendable {
        let items: [[Int32]]
        let edges: [[Int32]]

        init(items: [[Int32]], edges: [[Int32]]) { self.items = items; self.edges = edges }

        init(_ ui: SparseMatrix, owner: [Int32], blocks t: Int) {
            func deal(_ counts: [Int]) -> [Int] {
                let order = counts.indices.sorted { (counts[$0], -$0) > (counts[$1], -$1) }
                var block = [Int](repeating: 0, count: counts.count)
                for (rank, k) in order.enumerated() { block[k] = rank % t }
                return block
            }
            var itemCounts = [Int](repeating: 0, count: ui.cols)
            for c in ui.colIndex { itemCounts[Int(c)] += 1 }
            let userBlock = deal((0..<ui.rows).map { ui.rowStart[$0 + 1] - ui.rowStart[$0] }), itemBlock = deal(itemCounts)
            var items = [[Int32]](repeating: [], count: t)
            for i in 0..<ui.cols { items[itemBlock[i]].append(Int32(i)) }
            var edges = [[Int32]](repeating: [], count: t * t)
            for e in 0..<ui.nonZeros { edges[userBlock[Int(owner[e])] * t + itemBlock[Int(ui.colIndex[e])]].append(Int32(e)) }
            self.items = items
            self.edges = edges
        }
    }
}
