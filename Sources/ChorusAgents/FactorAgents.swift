import ChorusCore
import ChorusCollaborative

/// Collaborative filtering by matrix factorisation: score(u, i) = x_u · y_i. The factors come from
/// implicit-feedback ALS (`ALSAgent.Factory`, name "als") or BPR (`BPRAgent.Factory`, name "bpr").
public final class FactorAgent: RecommenderAgent {
    public let name: String
    let userFactors: FloatMatrix
    let itemFactors: FloatMatrix
    /// The item factors scaled to unit length, computed at the first ask and kept: similar-items
    /// queries are then one row-dot pass (cosine) instead of recomputing every norm per call. Only
    /// the agent whose vectors serve similarity is asked, so the others (BPR beside ALS, every
    /// validation-phase agent) never hold the copy: 256 MiB each at 1M items x 64 factors.
    private let unitRows: UnitRows
    /// For large catalogues, in a published model: an inverted-file index over the item factors
    /// that serving takes this agent's proposals from (`indexedProposals`), so a request reads a
    /// few lists instead of every item's factors (a scan of 1M x 64 floats is ~20 ms of memory
    /// traffic). nil: every request scores the whole catalogue.
    let servingIndex: IVFIndex?

    init(name: String, userFactors: FloatMatrix, itemFactors: FloatMatrix) throws(ChorusError) {
        self.name = name
        self.userFactors = userFactors
        self.itemFactors = itemFactors
        self.unitRows = UnitRows()
        self.servingIndex = nil
    }

    private init(_ agent: FactorAgent, servingIndex: IVFIndex) {
        name = agent.name; userFactors = agent.userFactors; itemFactors = agent.itemFactors
        unitRows = agent.unitRows
        self.servingIndex = servingIndex
    }

    /// The unit rows, made once (by the first caller, under the lock) and shared by the agent's copies.
    final class UnitRows: Sendable {
        private let made = Lock<FloatMatrix?>(nil)

        func of(_ factors: FloatMatrix) -> FloatMatrix? {
            made.withLock { made in
                if let made { return made }
                guard let unit = try? factors.copy() else { return nil }
                let f = unit.cols
                for i in 0..<unit.rows {
                    let r = unit.row(i)
                    let n = Kernels.dot(r, r, f).squareRoot()
                    if n > 0 { for j in 0..<f { r[j] /= n } }
                }
                made = unit
                return unit
            }
        }

        /// Bytes held (0 until made).
        var bytes: Int { made.withLock { $0?.byteCount ?? 0 } }
    }

    /// This agent with a serving index over its item factors when it has `minimumItems` items or
    /// more (the same factors, shared); itself otherwise, or when the index cannot be built.
    func indexedForServing(minimumItems: Int, threads: Int) -> FactorAgent {
        guard servingIndex == nil, itemFactors.rows >= max(1, minimumItems),
              // Sharing the item factors, not copying them (256 MiB less per agent at 1M x 64), and
              // scanning 8-bit codes of them (68 MiB): streamed, not gathered, row loads.
              let index = try? IVFIndex(sharing: itemFactors, quantized: true, parameters: IVFIndex.Parameters(), threads: threads) else { return self }
        return FactorAgent(self, servingIndex: index)
    }

    /// Lists a request probes: a sixteenth of them, at least 8 (~98% recall@10 of the exact top 10
    /// on clustered vectors at 1M items: bench/ivf), and 4 for the lowest score, which only scales.
    static func probes(lists: Int) -> (top: Int, lowest: Int) { (max(8, lists / 16), 4) }

    /// nil only when the unit rows cannot be allocated.
    public var itemVectors: FloatMatrix? { unitRows.of(itemFactors) }
    public var modelBytes: Int { userFactors.byteCount + itemFactors.byteCount + unitRows.bytes + (servingIndex?.bytes ?? 0) }

    public func canScore(_ request: AgentRequest) -> Bool {
        request.folded[name]?.count == itemFactors.cols || (request.user.map { Int($0) < userFactors.rows } ?? false)
    }

    public func score(_ request: AgentRequest, into scores: UnsafeMutableBufferPointer<Float>) {
        // A folded-in vector (online feedback since the model) replaces the model's row.
        if let folded = request.folded[name], folded.count == itemFactors.cols {
            precondition(scores.count >= itemFactors.rows)
            folded.withUnsafeBufferPointer { Kernels.rowDots(itemFactors.base, m: itemFactors.rows, k: itemFactors.cols, $0.baseAddress!, into: scores.baseAddress!) }
            return
        }
        guard let user = request.user, Int(user) < userFactors.rows else {
            scores.update(repeating: 0)
            return
        }
        // Every item at once with the AVX2 row-dot kernel: ~3x faster than a Swift dot per item, and
        // single-threaded, unlike OpenBLAS sgemv (bench/als/PROFILE.md).
        precondition(scores.count >= itemFactors.rows)
        Kernels.rowDots(itemFactors.base, m: itemFactors.rows, k: itemFactors.cols, userFactors.row(Int(user)), into: scores.baseAddress!)
    }

    /// With a serving index, requests take their proposals from it and no row is scored.
    public var scoresInBatches: Bool { servingIndex == nil }

    /// The request's vector: its folded-in one (online feedback since the model), else the model's row.
    private func vector(_ request: AgentRequest) -> [Float]? {
        if let folded = request.folded[name], folded.count == itemFactors.cols { return folded }
        guard let user = request.user, Int(user) < userFactors.rows else { return nil }
        return Array(UnsafeBufferPointer(start: userFactors.row(Int(user)), count: itemFactors.cols))
    }

    /// From the serving index: the top `k` by inner product with the request's vector, and the
    /// score range: the highest found, and the lowest as minus the best for the negated vector
    /// (a few lists: it only scales the scores, as a whole row's minimum would).
    public func indexedProposals(_ request: AgentRequest, k: Int) -> IndexedProposals? {
        guard let index = servingIndex, let u = vector(request), k >= 1 else { return nil }
        let (top, lowest) = Self.probes(lists: index.listCount)
        let negated = u.map { -$0 }
        guard let found = try? u.withUnsafeBufferPointer({ (q) throws(ChorusError) in
                  try index.search(queries: q, dimension: u.count, k: k, nprobe: top, threads: 1) }).first,
              let opposite = try? negated.withUnsafeBufferPointer({ (q) throws(ChorusError) in
                  try index.search(queries: q, dimension: u.count, k: 1, nprobe: lowest, threads: 1) }).first,
              let best = found.first else { return nil }
        let hi = best.score
        let lo = min(opposite.first.map { -$0.score } ?? hi, found.last?.score ?? hi)
        let factors = itemFactors
        return IndexedProposals(top: found, lo: lo, hi: hi) { item in
            guard item >= 0 && Int(item) < factors.rows else { return lo }
            return u.withUnsafeBufferPointer { Kernels.dot(factors.row(Int(item)), $0.baseAddress!, factors.cols) }
        }
    }

    /// One pass over the item factors for the whole batch (`Kernels.rowDotsBatch`), bit for bit
    /// `score` per request.
    public func scoreBatch(_ requests: [AgentRequest], into rows: [UnsafeMutablePointer<Float>], itemCount: Int) {
        precondition(itemCount >= itemFactors.rows)
        let f = itemFactors.cols
        // Folded-in vectors (online feedback) replace the model's rows, as in `score`: copied here
        // so the kernel reads them from memory that lives through the call.
        let folded = UnsafeMutablePointer<Float>.allocate(capacity: max(1, requests.count * f))
        defer { folded.deallocate() }
        var xs: [UnsafePointer<Float>] = [], ys: [UnsafeMutablePointer<Float>] = []
        for (r, request) in requests.enumerated() {
            if let v = request.folded[name], v.count == f {
                v.withUnsafeBufferPointer { (folded + r * f).update(from: $0.baseAddress!, count: f) }
                xs.append(folded + r * f); ys.append(rows[r])
            } else if let user = request.user, Int(user) < userFactors.rows {
                xs.append(userFactors.row(Int(user))); ys.append(rows[r])
            } else {
                rows[r].update(repeating: 0, count: itemCount)
            }
        }
        Kernels.rowDotsBatch(itemFactors.base, m: itemFactors.rows, k: f, xs, into: ys)
    }

    public func reason(_ request: AgentRequest, item: Int32) -> AgentReason? {
        canScore(request) ? AgentReason(phrase: "people with tastes like yours liked it") : nil
    }

    public func encode(into w: inout ByteWriter) {
        w.write(UInt32(itemFactors.cols))
        w.writeRaw(UnsafeBufferPointer(userFactors.buffer))
        w.writeRaw(UnsafeBufferPointer(itemFactors.buffer))
    }

    /// Zeroes the factors of items without a training interaction: their factors are whatever the
    /// random start left (ALS's few CG steps do not reach 0), which would give them arbitrary
    /// scores and, scaled to unit length, arbitrary similarities.
    static func zeroUnseenItems(_ items: FloatMatrix, _ data: TrainingData) {
        var seen = [Bool](repeating: false, count: items.rows)
        data.forEachRow { r in seen[Int(data.items[r])] = true }
        for i in 0..<items.rows where !seen[i] { items.row(i).update(repeating: 0, count: items.cols) }
    }

    /// Refuses factors with a NaN or an infinity: such a model would score NaN and save a snapshot
    /// that `decode` refuses. A last guard: extreme weights no longer diverge (`ExactRowSolve`).
    static func requireFinite(_ name: String, _ factors: (users: FloatMatrix, items: FloatMatrix)) throws(ChorusError) {
        for m in [factors.users, factors.items] {
            for j in 0..<m.count where !m.base[j].isFinite {
                throw .invalidArgument("\(name) diverged to non-finite factors; nothing was published")
            }
        }
    }

    /// Reads factors written by `encode`.
    static func decode(name: String, _ r: inout ByteReader, _ context: AgentDecodeContext) throws(ChorusError) -> RecommenderAgent {
        let userCount = context.userCount, itemCount = context.itemCount
        let f = Int(try r.read(UInt32.self))
        guard f > 0, f <= 4096 else { throw .format("\(name) factor count \(f) is implausible") }
        let u = try r.readMatrix(rows: userCount, cols: f)
        let i = try r.readMatrix(rows: itemCount, cols: f)
        for m in [u, i] { for j in 0..<m.count where !m.base[j].isFinite { throw .format("\(name) factors contain a non-finite value") } }
        return try FactorAgent(name: name, userFactors: u, itemFactors: i)
    }
}

/// Implicit-feedback ALS factors (ChorusCollaborative.ImplicitALS).
public enum ALSAgent {
    public struct Factory: AgentFactory {
        public let name = "als"
        public let parameters: ALSParameters
        public init(parameters: ALSParameters) { self.parameters = parameters }

        /// Sweeps of a final fit that starts from the validation fit's factors (`FitContext.warmStart`).
        public static let warmIterations = 5

        public func fit(_ data: TrainingData, _ context: FitContext) throws(ChorusError) -> RecommenderAgent {
            var p = parameters
            p.threads = context.threads
            p.seed = context.seed
            // The final fit continues from the validation fit (the same users and items; the held-out
            // interactions are new to it) for a few sweeps instead of starting over.
            // The twin is dropped after this fit, so it trains in place (no second set of factors at
            // the fit's peak); a host's starting model is only read.
            var initial: ImplicitALS.Factors? = nil, inPlace = false
            if let warm = context.warmStart as? FactorAgent, warm.name == name {
                initial = ImplicitALS.Factors(users: warm.userFactors, items: warm.itemFactors)
                inPlace = true
                p.iterations = min(p.iterations, Self.warmIterations)
            } else if let start = context.initial as? FactorAgent, start.name == name {
                initial = ImplicitALS.Factors(users: start.userFactors, items: start.itemFactors)
            }
            let factors = try ImplicitALS.fit(userItems: data.userItems, parameters: p, initial: initial, inPlace: inPlace,
                                              progress: context.progress)
            try FactorAgent.requireFinite(name, (factors.users, factors.items))
            FactorAgent.zeroUnseenItems(factors.items, data)
            return try FactorAgent(name: name, userFactors: factors.users, itemFactors: factors.items)
        }

        public func decode(_ r: inout ByteReader, _ context: AgentDecodeContext) throws(ChorusError) -> RecommenderAgent {
            try FactorAgent.decode(name: name, &r, context)
        }
    }
}

/// BPR factors (ChorusCollaborative.BPR): the item bias rides as the last factor.
public enum BPRAgent {
    public struct Factory: AgentFactory {
        public let name = "bpr"
        public let parameters: BPRParameters
        /// With a validation probe: train up to `FitParameters.maxAutoBPREpochs`, check validation
        /// NDCG@10 every `bprCheckEvery` epochs, stop `bprPatience` epochs after the best check
        /// (not before `bprMinEpochs`), keep the best check's factors and record its epochs for the
        /// final fit.
        public let earlyStopping: Bool
        public var keepsBestCheck: Bool { earlyStopping }
        public init(parameters: BPRParameters, earlyStopping: Bool = false) {
            self.parameters = parameters
            self.earlyStopping = earlyStopping
        }

        /// Epochs of a final fit that continues from the validation fit: a quarter of the epochs
        /// chosen (at least 1). Chosen on validation (ml-latest-small and ml-100k training splits,
        /// seeds 42-44): BPR alone and the blend equal to a fresh fit of all the epochs within noise.
        static func warmEpochs(_ chosen: Int) -> Int { max(1, chosen / 4) }

        public func fit(_ data: TrainingData, _ context: FitContext) throws(ChorusError) -> RecommenderAgent {
            var p = parameters
            p.seed = context.seed
            p.threads = max(1, context.threads)
            var factors: BPR.Factors
            // A round of sharded training continues from the merged model; a final fit continues
            // from the validation fit (same users and items; the held-out interactions are new to it)
            // for a share of the epochs the validation chose, instead of running them all again.
            let start = context.initial as? FactorAgent
            var initial = start.flatMap { $0.name == name ? BPR.Factors(users: $0.userFactors, items: $0.itemFactors) : nil }
            var inPlace = false
            if !earlyStopping, let warm = context.warmStart as? FactorAgent, warm.name == name,
               warm.userFactors.rows == data.userCount, warm.itemFactors.rows == data.itemCount {
                // Trained in place: the twin is dropped after this fit (as ALS's).
                initial = BPR.Factors(users: warm.userFactors, items: warm.itemFactors)
                inPlace = true
                p.iterations = Self.warmEpochs(p.iterations)
            }
            if earlyStopping, let probe = context.validation {
                p.iterations = FitParameters.maxAutoBPREpochs
                // The latest check within a standard error of the best is kept and its epochs chosen
                // (PlateauStopping): on BPR's plateau more epochs leave BPR alone where it is but
                // help the blend, while a falling curve still stops early.
                var stopping = PlateauStopping(minimumEpochs: FitParameters.bprMinEpochs, patience: FitParameters.bprPatience)
                var kept: BPR.Factors? = nil
                var failure: ChorusError? = nil
                factors = try BPR.fit(userItems: data.userItems, parameters: p, initial: initial, inPlace: inPlace, progress: context.progress) { epoch, f in
                    guard epoch % FitParameters.bprCheckEvery == 0 else { return false }
                    let check = probe.check(userFactors: f.users, itemFactors: f.items)
                    Log.emit(.debug, "bpr: epoch \(epoch), validation NDCG@10 \(check.ndcg) (standard error \(check.standardError))")
                    let (keep, stop) = stopping.check(epoch: epoch, ndcg: check.ndcg, standardError: check.standardError)
                    if keep {
                        // Into the same buffers from the second kept on: a fresh copy beside the
                        // one it replaces would hold three sets of factors at once (the fit's
                        // peak memory at 1M users x 1M items).
                        if let kept {
                            kept.users.base.update(from: f.users.base, count: f.users.count)
                            kept.items.base.update(from: f.items.base, count: f.items.count)
                        } else {
                            do throws(ChorusError) { kept = BPR.Factors(users: try f.users.copy(), items: try f.items.copy()) } catch {
                                failure = error
                                return true
                            }
                        }
                    }
                    return stop
                }
                if let failure { throw failure }
                if let kept { factors = kept }
                probe.record(name, budget: max(stopping.kept, FitParameters.bprCheckEvery))
                Log.emit(.info, "bpr: \(stopping.kept) epochs chosen on validation (best NDCG@10 \(stopping.best.ndcg))")
            } else {
                factors = try BPR.fit(userItems: data.userItems, parameters: p, initial: initial, inPlace: inPlace, progress: context.progress)
            }
            try FactorAgent.requireFinite(name, (factors.users, factors.items))
            FactorAgent.zeroUnseenItems(factors.items, data)
            return try FactorAgent(name: name, userFactors: factors.users, itemFactors: factors.items)
        }

        public func decode(_ r: inout ByteReader, _ context: AgentDecodeContext) throws(ChorusError) -> RecommenderAgent {
            try FactorAgent.decode(name: name, &r, context)
        }
    }
}
