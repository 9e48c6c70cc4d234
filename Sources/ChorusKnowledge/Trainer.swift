#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore
import CKernels

/// Mini-batch training of knowledge-graph embeddings with negative sampling.
///
/// A step runs in two parallel phases. Phase 1, one contiguous slice of the batch per worker
/// (`Parallel.forEachChunk`): each sample draws its side and negatives from an RNG seeded by
/// (seed, position of the triple in training), scores them, and keeps in its own slot of the step
/// buffers what its gradient needs: the query q, the loss coefficients ∂L/∂f, and the anchor's and
/// relation's gradients. Nothing is written to a shared table. Between the phases, one thread
/// lists, for every touched row, the samples that touch it, in sample order. Phase 2, rows spread
/// over the workers: each touched row sums its gradient from that list (a candidate's
/// c · ∂f/∂x is recomputed from the stored q and the row itself) and applies the optimiser at once,
/// so a row is read and written once per step and only touched rows are visited (lazy Adam).
/// Determinism: every sum runs in sample order and each row is updated by exactly one thread, so a
/// fixed seed gives bit-identical embeddings whatever the thread count.
public enum KGTrainer {
    /// Trains a model on every triple of `store`.
    /// - Parameters:
    ///   - progress: called after each epoch; return true to cancel. Cancelling throws `.cancelled`
    ///     (no partial model is returned).
    ///   - afterEpoch: called after each epoch (after `progress`) with the model as trained so far
    ///     (training goes on in it: read it during the call only, e.g. to score validation
    ///     triples); returns `.finish` to end training there and return that model (a time budget,
    ///     early stopping), `.decayLearningRate` to multiply the learning rate by
    ///     `learningRateDecayFactor` from the next epoch on (a plateau of validation, `PlateauSchedule`).
    /// - Throws: `.invalidArgument` for bad parameters or an empty store, `.cancelled`, `.outOfMemory`.
    /// - Complexity: per epoch O(n · (negatives + 2) · d) for n triples.
    public static func fit(_ store: TripleStore, parameters p: KGTrainingParameters,
                           progress: ((KGEpochReport) -> Bool)? = nil,
                           afterEpoch: ((KGEpochReport, KnowledgeGraphModel) -> PlateauSchedule.Decision)? = nil) throws(ChorusError) -> KnowledgeGraphModel {
        try p.validate()
        guard store.count > 0 else { throw .invalidArgument("the triple store is empty: nothing to train on") }
        let state = try TrainingState(store: store, parameters: p)
        var order = Array(0..<store.count)
        var shuffler = SeededRandom(seed: p.seed ^ 0x5DEE_CE66_D1CE_4E5B)
        let threads = p.threads > 0 ? p.threads : Parallel.cpuCount
        var plateauScale: Float = 1   // the decays `afterEpoch` asked for
        for epoch in 0..<p.epochs {
            state.learningRate = p.learningRate(epoch: epoch) * plateauScale
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, shuffler.nextInt(below: i + 1)) }
            var lossSum = 0.0, batches = 0
            var start = 0
            while start < order.count {
                let end = min(order.count, start + p.batchSize)
                lossSum += state.step(order[start..<end], sampleBase: UInt64(epoch) &* UInt64(order.count) &+ UInt64(start), threads: threads)
                batches += 1
                start = end
            }
            let report = KGEpochReport(epoch: epoch + 1, epochs: p.epochs, loss: lossSum / Double(max(1, batches)))
            if !report.loss.isFinite {
                throw .internalError("training diverged at epoch \(epoch + 1) (loss is \(report.loss)); lower the learning rate")
            }
            if let progress, progress(report) {
                throw .cancelled("knowledge-graph training cancelled by the progress callback after \(epoch + 1) of \(p.epochs) epochs")
            }
            switch afterEpoch?(report, state.model) ?? .continue {
            case .continue: break
            case .decayLearningRate: plateauScale *= p.learningRateDecayFactor
            case .finish: return state.model
            }
        }
        return state.model
    }
}

/// Per-worker scratch of phase 1: the scores of one sample's negatives, the query's gradient.
/// Allocated once per training.
final class WorkerScratch {
    let scores: FloatMatrix, gradQuery: FloatMatrix
    /// Per negative of the current sample: a known fact, left out of the loss.
    let known: UnsafeMutablePointer<Bool>
    var loss = 0.0
    /// f(positive) of the last sample, as training computed it (clear-box tests compare it with the model's score).
    var lastPositiveScore: Float = 0

    init(entityWidth: Int, relationWidth: Int, negatives n: Int) throws(ChorusError) {
        scores = try FloatMatrix(rows: 1, cols: n)
        gradQuery = try FloatMatrix(rows: 1, cols: entityWidth)
        known = .allocate(capacity: n); known.initialize(repeating: false, count: n)
    }

    deinit { known.deallocate() }
}

/// What phase 1 keeps per sample slot j of a step (`capacity` = batch size slots), and the
/// touched rows' contribution lists built from it.
final class StepBuffers {
    let capacity: Int, negatives: Int
    /// Contribution codes: j · stride + kind, kind k < n the k-th negative, n the positive
    /// target, n + 1 the anchor, n + 2 the regulariser (of a positive's head or tail).
    let stride: Int
    let queries: FloatMatrix          // q of each sample
    let gradAnchor: FloatMatrix       // ∂L/∂anchor of each sample
    let gradRelation: FloatMatrix     // ∂L/∂relation of each sample (regulariser included)
    /// capacity × n: slot j's negatives at j · n, or, when runs of `sharing` slots share a draw,
    /// run g's at g · n.
    let negativeIds: UnsafeMutablePointer<Int32>
    let coefficients: UnsafeMutablePointer<Float>      // capacity × n: ∂L/∂f(negative), 0 = no gradient
    let positiveCoefficient: UnsafeMutablePointer<Float>
    let tripleIndex: UnsafeMutablePointer<Int32>
    let corruptHead: UnsafeMutablePointer<Bool>
    /// With shared negatives: run g's gradient on its negative k at row g · n + k, summed over the
    /// run's slots in phase 1 (the run's worker computes each |u| once for both sides).
    let runGradients: FloatMatrix?
    /// The touched rows of one table: `rows[0..<count]` in ascending order, row `rows[s]`'s
    /// contribution codes at `list[start[s]..<start[s + 1]]`, in sample order.
    final class Lists {
        let tableRows: Int
        let counts: UnsafeMutablePointer<Int32>    // per table row (zero between steps)
        let cursors: UnsafeMutablePointer<Int32>   // per table row
        let rows: UnsafeMutablePointer<Int32>, start: UnsafeMutablePointer<Int32>, list: UnsafeMutablePointer<Int32>
        var count = 0

        init(tableRows: Int, contributions: Int) {
            self.tableRows = tableRows
            counts = .allocate(capacity: tableRows); counts.initialize(repeating: 0, count: tableRows)
            cursors = .allocate(capacity: tableRows)
            let touchable = min(tableRows, contributions)
            rows = .allocate(capacity: touchable); start = .allocate(capacity: touchable + 1)
            list = .allocate(capacity: max(1, contributions))
        }
        deinit { counts.deallocate(); cursors.deallocate(); rows.deallocate(); start.deallocate(); list.deallocate() }

        /// Builds the lists from `visit`, which must call its argument with (row, code) for every
        /// contribution, in sample order, the same way both times it is called.
        @inline(__always) func build(_ visit: ((Int32, Int32) -> Void) -> Void) {
            count = 0
            visit { e, _ in
                if counts[Int(e)] == 0 { rows[count] = e; count += 1 }
                counts[Int(e)] += 1
            }
            // Ascending rows: the update pass then walks the tables in address order. When most
            // rows are touched a scan of the counts is cheaper than sorting.
            if count * 8 >= tableRows {
                count = 0
                for e in 0..<tableRows where counts[e] != 0 { rows[count] = Int32(e); count += 1 }
            } else {
                var touched = UnsafeMutableBufferPointer(start: rows, count: count)
                touched.sort()
            }
            var running: Int32 = 0
            for s in 0..<count {
                let e = Int(rows[s])
                start[s] = running; cursors[e] = running; running += counts[e]
            }
            start[count] = running
            visit { e, code in
                let c = cursors[Int(e)]
                list[Int(c)] = code; cursors[Int(e)] = c + 1
            }
        }

        func clear() {
            for s in 0..<count { counts[Int(rows[s])] = 0 }
            count = 0
        }
    }
    let entityLists: Lists, relationLists: Lists

    init(capacity: Int, negatives n: Int, sharing: Int, entities: Int, relations: Int, entityWidth: Int, relationWidth: Int) throws(ChorusError) {
        self.capacity = capacity; negatives = n; stride = n + 3
        guard capacity * (n + 4) < Int(Int32.max) else {
            throw .invalidArgument("batch size × (negatives + 4) must stay below 2^31, got \(capacity) × \(n + 4)")
        }
        queries = try FloatMatrix(rows: capacity, cols: entityWidth, zeroed: false)
        gradAnchor = try FloatMatrix(rows: capacity, cols: entityWidth, zeroed: false)
        gradRelation = try FloatMatrix(rows: capacity, cols: relationWidth, zeroed: false)
        negativeIds = .allocate(capacity: capacity * n); coefficients = .allocate(capacity: capacity * n)
        positiveCoefficient = .allocate(capacity: capacity); tripleIndex = .allocate(capacity: capacity)
        corruptHead = .allocate(capacity: capacity)
        if sharing > 1 {
            let rows = (capacity + sharing - 1) / sharing * n
            guard rows * entityWidth <= 1 << 28 else {
                throw .invalidArgument("shared negatives: runs of \(sharing) in batches of \(capacity) with \(n) negatives need "
                                       + "\(rows * entityWidth / (1 << 18)) MiB of gradients (at most 1024): share among more positives or use a smaller batch")
            }
            runGradients = try FloatMatrix(rows: rows, cols: entityWidth, zeroed: false)
        } else {
            runGradients = nil
        }
        // Per sample at most n negatives, the target, the anchor and the regulariser's head and tail.
        entityLists = Lists(tableRows: entities, contributions: capacity * (n + 4))
        relationLists = Lists(tableRows: relations, contributions: capacity)
    }

    deinit {
        negativeIds.deallocate(); coefficients.deallocate(); positiveCoefficient.deallocate()
        tripleIndex.deallocate(); corruptHead.deallocate()
    }
}

/// The model, its optimiser state and the scratch of one training run.
final class TrainingState: @unchecked Sendable {
    let p: KGTrainingParameters
    let model: KnowledgeGraphModel
    let heads: [Int32], rels: [Int32], tails: [Int32]
    let weights: [Float]
    let headProbability: [Float]
    /// With `filterKnownNegatives`: the entities that complete each triple in training.
    let knownCompletions: KnownCompletions?
    /// Optimiser state per row: Adam's [m | v] (2 × row width), Adagrad's sums (row width).
    let stateE: FloatMatrix, stateR: FloatMatrix
    var workers: [WorkerScratch] = []
    /// Phase 2's per-worker row gradient (one row each).
    let rowGradients: FloatMatrix
    let buffers: StepBuffers
    var step = 0
    /// The current epoch's learning rate (the schedule's value).
    var learningRate: Float
    let cmp: ScoreKernels.Comparison
    /// The regulariser's weight per positive in the current step (λ / batch size).
    var regularizerShare: Float = 0
    var regularized: Bool { p.regularizer != .none && p.regularizationWeight > 0 }

    init(store: TripleStore, parameters p: KGTrainingParameters) throws(ChorusError) {
        self.p = p
        learningRate = p.learningRate
        let d = p.dimension, kind = p.model
        let we = kind.entityWidth(d), wr = kind.relationWidth(d)
        let ne = store.entityCount, nr = store.relationCount
        // The RotatE code: embedding_range = (gamma + epsilon) / hidden_dim, epsilon = 2.
        let range = p.initRange > 0 ? p.initRange : (p.gamma + 2) / Float(d)
        let ent = try FloatMatrix(rows: ne, cols: we), rel = try FloatMatrix(rows: nr, cols: wr)
        var rng = SeededRandom(seed: p.seed)
        for i in 0..<ent.count { ent.base[i] = (rng.nextFloat() * 2 - 1) * range }
        for i in 0..<rel.count { rel.base[i] = (rng.nextFloat() * 2 - 1) * range }
        if kind == .transE && p.unitEntities { for e in 0..<ne { Self.normalize(ent.row(e), we) } }
        model = try KnowledgeGraphModel(kind: kind, dimension: d, gamma: p.gamma, norm: p.norm, embeddingRange: range, entities: ent, relations: rel)
        heads = store.heads; rels = store.relationIds; tails = store.tails
        headProbability = p.sampling == .bernoulli ? store.headCorruptionProbabilities() : [Float](repeating: 0.5, count: nr)
        knownCompletions = p.filterKnownNegatives ? KnownCompletions(heads: store.heads, relations: store.relationIds, tails: store.tails) : nil
        if p.subsamplingWeights {
            // The RotatE code's count_frequency(start=4): #(h, r) and #(t, -r-1), each from 4.
            var hr: [UInt64: Int] = [:], tr: [UInt64: Int] = [:]
            for i in 0..<store.count {
                hr[Triple.pairKey(store.heads[i], store.relationIds[i]), default: 4] += 1
                tr[Triple.pairKey(store.tails[i], store.relationIds[i]), default: 4] += 1
            }
            weights = (0..<store.count).map { i in
                1 / Float(hr[Triple.pairKey(store.heads[i], store.relationIds[i])]! + tr[Triple.pairKey(store.tails[i], store.relationIds[i])]!).squareRoot()
            }
        } else {
            weights = [Float](repeating: 1, count: store.count)
        }
        let moments = p.optimizer == .adam ? 2 : 1
        stateE = try FloatMatrix(rows: ne, cols: moments * we); stateR = try FloatMatrix(rows: nr, cols: moments * wr)
        let threads = p.threads > 0 ? p.threads : Parallel.cpuCount
        for _ in 0..<max(1, threads) {
            workers.append(try WorkerScratch(entityWidth: we, relationWidth: wr, negatives: p.negatives))
        }
        rowGradients = try FloatMatrix(rows: max(1, threads), cols: max(we, wr))
        buffers = try StepBuffers(capacity: min(p.batchSize, max(1, store.count)), negatives: p.negatives, sharing: p.negativeSharing,
                                  entities: ne, relations: nr,
                                  entityWidth: we, relationWidth: wr)
        cmp = ScoreKernels.comparison(kind, norm: p.norm)
    }

    static func normalize(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        let norm = Kernels.dot(x, x, n).squareRoot()
        guard norm > 0 else { return }
        typealias V = SIMD8<Float>
        let r = UnsafeMutableRawPointer(x), nv = V(repeating: norm)
        var i = 0
        while i + 8 <= n {
            r.storeBytes(of: r.loadUnaligned(fromByteOffset: i * 4, as: V.self) / nv, toByteOffset: i * 4, as: V.self)
            i += 8
        }
        while i < n { x[i] /= norm; i += 1 }
    }

    /// One optimisation step on the triples `batch` (indices into the store). Returns the batch loss.
    func step(_ batch: ArraySlice<Int>, sampleBase: UInt64, threads: Int) -> Double {
        step += 1
        var weightSum: Float = 0
        for i in batch { weightSum += weights[i] }
        let count = batch.count
        regularizerShare = p.regularizationWeight / Float(count)
        if p.negativeSharing > 1 { drawSharedNegatives(count: count, sampleBase: sampleBase) }
        // Phase 1: forward and per-sample gradients, one contiguous slice of the batch per worker.
        // With shared negatives a run's slots go to one worker, in order: it sums the run's gradients.
        let box = SendableBox((self, batch, weightSum)), share = p.negativeSharing
        Parallel.forEachChunk(count: (count + share - 1) / share, threads: min(threads, workers.count)) { w, runs in
            let (state, batch, weightSum) = box.value
            let ws = state.workers[w]
            for j in runs.lowerBound * share..<min(count, runs.upperBound * share) {
                let i = batch[batch.startIndex + j]
                state.sample(i, slot: j, seed: state.p.seed &+ (sampleBase &+ UInt64(j) &+ 1) &* 0x9E37_79B9_7F4A_7C15,
                             scale: state.weights[i] / weightSum, scratch: ws)
            }
        }
        var loss = 0.0
        for ws in workers { loss += ws.loss; ws.loss = 0 }
        // Between the phases: each touched row's contributions, in sample order.
        buildContributions(count: count)
        // Phase 2: every touched row sums its gradient and is updated, by exactly one worker.
        let t = Float(step)
        let stepSize = learningRate / (1 - powf(0.9, t)), rootBc2 = (1 - powf(0.999, t)).squareRoot()
        let pass = rowPass(stepSize: stepSize, rootBc2: rootBc2)
        // Chunks of 64 rows; the pass holds plain pointers only, so no reference counting (an
        // atomic shared by both workers) happens per row.
        let chunk = 64, chunks = (pass.entityRows + pass.relationRows + chunk - 1) / chunk
        Parallel.forEach(count: chunks, threads: min(threads, workers.count), grain: 1) { w, c in
            let total = pass.entityRows + pass.relationRows
            let g = pass.rowGradients + w * pass.rowGradientWidth
            for k in c * chunk..<min(total, (c + 1) * chunk) {
                // Rows are scattered over tables larger than the caches: fetch the row two ahead
                // (its values and optimiser state) while this one is summed and updated.
                if k + 2 < pass.entityRows { pass.prefetchEntity(k + 2) }
                if k < pass.entityRows {
                    pass.entityGradient(slot: k, into: g)
                    pass.applyEntity(slot: k, gradient: g)
                } else {
                    pass.relationGradient(slot: k - pass.entityRows, into: g)
                    pass.applyRelation(slot: k - pass.entityRows, gradient: g)
                }
            }
        }
        clearContributions()
        return loss
    }

    /// Lists, for every touched entity and relation row, the contribution codes of the first
    /// `count` slots, in slot order (a counting sort: count, prefix sums, fill).
    func buildContributions(count: Int) {
        let b = buffers, n = p.negatives, stride = b.stride, reg = regularized, share = p.negativeSharing
        heads.withUnsafeBufferPointer { heads in
        tails.withUnsafeBufferPointer { tails in
        rels.withUnsafeBufferPointer { rels in
            b.entityLists.build { add in
                for j in 0..<count {
                    let i = Int(b.tripleIndex[j]), head = b.corruptHead[j]
                    let anchor = head ? tails[i] : heads[i], target = head ? heads[i] : tails[i]
                    let base = Int32(truncatingIfNeeded: j * stride)
                    if share == 1 {
                        let negs = b.negativeIds + j * n, c = b.coefficients + j * n
                        for k in 0..<n where c[k] != 0 { add(negs[k], base + Int32(truncatingIfNeeded: k)) }
                    } else if j % share == 0 {
                        // A shared negative is one contribution for its whole run (the code of the
                        // run's first slot): phase 2 adds the run's summed gradient.
                        let negs = b.negativeIds + (j / share) * n, runEnd = min(count, j + share)
                        for k in 0..<n where (j..<runEnd).contains(where: { b.coefficients[$0 * n + k] != 0 }) {
                            add(negs[k], base + Int32(truncatingIfNeeded: k))
                        }
                    }
                    if b.positiveCoefficient[j] != 0 { add(target, base + Int32(truncatingIfNeeded: n)) }
                    add(anchor, base + Int32(truncatingIfNeeded: n + 1))
                    if reg { add(heads[i], base + Int32(truncatingIfNeeded: n + 2)); add(tails[i], base + Int32(truncatingIfNeeded: n + 2)) }
                }
            }
            b.relationLists.build { add in
                for j in 0..<count { add(rels[Int(b.tripleIndex[j])], Int32(truncatingIfNeeded: j)) }
            }
        }}}
    }

    func clearContributions() {
        buffers.entityLists.clear(); buffers.relationLists.clear()
    }

    /// Phase 2's view of the step: plain pointers and values, copied into each worker's closure.
    func rowPass(stepSize: Float, rootBc2: Float) -> RowPass {
        let b = buffers, el = b.entityLists, rl = b.relationLists
        return RowPass(entities: model.entities.base, entityWidth: model.entities.cols, relations: model.relations.base,
                       relationWidth: model.relations.cols, stateE: stateE.base, stateR: stateR.base,
                       queries: b.queries.base, gradAnchor: b.gradAnchor.base, gradRelation: b.gradRelation.base,
                       coefficients: b.coefficients, positiveCoefficient: b.positiveCoefficient,
                       entityRowIds: el.rows, entityStart: el.start, entityList: el.list, entityRows: el.count,
                       relationRowIds: rl.rows, relationStart: rl.start, relationList: rl.list, relationRows: rl.count,
                       rowGradients: rowGradients.base, rowGradientWidth: rowGradients.cols,
                       negatives: p.negatives, stride: b.stride, sharing: p.negativeSharing, runGradients: b.runGradients?.base, cmp: cmp, regularizer: regularized ? p.regularizer : .none,
                       regularizerShare: regularizerShare, adam: p.optimizer == .adam, learningRate: learningRate,
                       unitEntities: p.model == .transE && p.unitEntities, stepSize: stepSize, rootBc2: rootBc2)
    }

    /// torch.optim.Adam: m = β1 m + (1 − β1) g; v = β2 v + (1 − β2) g²;
    /// x −= lr / bc1 · m / (sqrt(v) / sqrt(bc2) + eps), with β = (0.9, 0.999), eps = 1e-8.
    @inline(__always) static func adam(_ x: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                                       _ g: UnsafePointer<Float>, _ n: Int, stepSize: Float, rootBc2: Float, unitNorm: Bool = false) {
        ck_adam(x, m, v, g, n, stepSize, rootBc2, unitNorm ? 1 : 0)
    }

    /// torch.optim.Adagrad (initial accumulator 0, eps 1e-10): s += g²; x −= lr · g / (sqrt(s) + eps).
    @inline(__always) static func adagrad(_ x: UnsafeMutablePointer<Float>, _ s: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ n: Int, lr: Float) {
        for i in 0..<n {
            s[i] += g[i] * g[i]
            x[i] -= lr * g[i] / (s[i].squareRoot() + 1e-10)
        }
    }

    /// Slot j's negatives: its own, or its run's when negatives are shared.
    @inline(__always) func negatives(ofSlot j: Int) -> UnsafeMutablePointer<Int32> {
        buffers.negativeIds + (p.negativeSharing > 1 ? j / p.negativeSharing : j) * p.negatives
    }

    /// The negatives of each run of `negativeSharing` slots, one draw per run, from an RNG seeded
    /// by (seed, position of the run's first triple in training): the same whatever the threads.
    func drawSharedNegatives(count: Int, sampleBase: UInt64) {
        let n = p.negatives, ne = model.entities.rows, share = p.negativeSharing
        for g in 0..<(count + share - 1) / share {
            var rng = SeededRandom(seed: (p.seed ^ 0x51A7_ED0E_6A71_7E55) &+ (sampleBase &+ UInt64(g * share) &+ 1) &* 0xD1B5_4A32_D192_ED03)
            let negs = buffers.negativeIds + g * n
            for k in 0..<n { negs[k] = Int32(truncatingIfNeeded: rng.nextInt(below: ne)) }
        }
    }

    /// Phase 1 for one positive triple `i` in slot `j`: draws the side and the negatives (or takes
    /// its run's, when negatives are shared), scores them, and stores in the slot the query, the loss
    /// coefficients and the anchor's and relation's gradients (the candidates' gradients are
    /// recomputed in phase 2 from q, or, shared, summed into the run's gradients here).
    /// `scale` is this positive's share of the batch loss (its weight over the batch's weight sum).
    /// Returns whether the head (rather than the tail) was corrupted.
    @discardableResult
    func sample(_ i: Int, slot j: Int, seed: UInt64, scale: Float, scratch ws: WorkerScratch) -> Bool {
        var rng = SeededRandom(seed: seed)
        let b = buffers
        let h = heads[i], r = rels[i], t = tails[i]
        let corruptHead = rng.nextFloat() < headProbability[Int(r)]
        let anchor = corruptHead ? t : h, target = corruptHead ? h : t
        let kind = p.model, d = p.dimension
        let ent = model.entities, w = ent.cols, ne = ent.rows
        let q = b.queries.row(j), gq = ws.gradQuery.base
        let relRow = model.relations.row(Int(r))
        let phaseScale = model.phaseScale, gamma = model.gamma
        ScoreKernels.query(kind, anchor: ent.row(Int(anchor)), relation: relRow, tailSide: !corruptHead, d: d, phaseScale: phaseScale, out: q)
        let fPos = ScoreKernels.score(cmp, q: q, x: ent.row(Int(target)), w: w, gamma: gamma)
        ws.lastPositiveScore = fPos
        let n = p.negatives
        let shared = p.negativeSharing > 1
        let negs = negatives(ofSlot: j), c = b.coefficients + j * n, f = ws.scores.base
        var cPos: Float = 0
        var loss: Double = 0
        if !shared { for k in 0..<n { negs[k] = Int32(truncatingIfNeeded: rng.nextInt(below: ne)) } }
        // The negatives are random rows of a table larger than the caches: ask for a few ahead.
        let ahead = 4, rowBytes = w * MemoryLayout<Float>.stride
        for k in 0..<min(ahead, n) { ck_prefetch(ent.row(Int(negs[k])), rowBytes) }
        for k in 0..<n {
            if k + ahead < n { ck_prefetch(ent.row(Int(negs[k + ahead])), rowBytes) }
            f[k] = ScoreKernels.score(cmp, q: q, x: ent.row(Int(negs[k])), w: w, gamma: gamma)
        }
        // Negatives that are known facts drop out: the loss averages (or softmax-weighs) the rest.
        var kept = n
        let known = ws.known
        if let kc = knownCompletions {
            let list = kc.list(triple: i, corruptHead: corruptHead)
            for k in 0..<n {
                known[k] = kc.contains(negs[k], list: list)
                if known[k] { kept -= 1 }
            }
        }
        switch p.loss {
        case .marginRanking(let margin):
            let share = kept > 0 ? scale / Float(kept) : 0
            for k in 0..<n {
                let v = margin - fPos + f[k]
                if v > 0 && !known[k] { loss += Double(share * v); c[k] = share; cPos -= share } else { c[k] = 0 }
            }
        case .logistic:
            // d/df [−log σ(−f)] = σ(f); d/df [−log σ(f)] = −σ(−f).
            let share = kept > 0 ? 0.5 * scale / Float(kept) : 0
            for k in 0..<n {
                if known[k] { c[k] = 0; continue }
                loss -= Double(share * Self.logSigmoid(-f[k])); c[k] = share * Self.sigmoid(f[k])
            }
            loss -= Double(0.5 * scale * Self.logSigmoid(fPos)); cPos = -0.5 * scale * Self.sigmoid(-fPos)
        case .selfAdversarial(let alpha):
            var top = -Float.infinity
            for k in 0..<n where !known[k] { top = max(top, alpha * f[k]) }
            var z: Float = 0
            for k in 0..<n { c[k] = known[k] ? 0 : expf(alpha * f[k] - top); z += c[k] }
            for k in 0..<n where !known[k] {
                let pk = c[k] / z   // the softmax weight, a constant for the gradient
                loss -= Double(0.5 * scale * pk * Self.logSigmoid(-f[k]))
                c[k] = 0.5 * scale * pk * Self.sigmoid(f[k])
            }
            loss -= Double(0.5 * scale * Self.logSigmoid(fPos)); cPos = -0.5 * scale * Self.sigmoid(-fPos)
        }
        // The query's gradient over the candidates, then the anchor's and the relation's. Shared
        // negatives take their share of the run's gradient in the same pass.
        gq.update(repeating: 0, count: w)
        if let runGradients = b.runGradients {
            let rg = runGradients.row((j / p.negativeSharing) * n)
            if j % p.negativeSharing == 0 { rg.update(repeating: 0, count: n * w) }
            for k in 0..<n where c[k] != 0 {
                ScoreKernels.pairBackward(cmp, q: q, x: ent.row(Int(negs[k])), w: w, coefficient: c[k], gradQuery: gq, gradCandidate: rg + k * w)
            }
        } else {
            for k in 0..<n where c[k] != 0 {
                ScoreKernels.scoreBackward(cmp, q: q, x: ent.row(Int(negs[k])), w: w, coefficient: c[k], gradQuery: gq)
            }
        }
        if cPos != 0 { ScoreKernels.scoreBackward(cmp, q: q, x: ent.row(Int(target)), w: w, coefficient: cPos, gradQuery: gq) }
        let ga = b.gradAnchor.row(j), gr = b.gradRelation.row(j), wr = model.relations.cols
        ga.update(repeating: 0, count: w); gr.update(repeating: 0, count: wr)
        ScoreKernels.queryBackward(kind, anchor: ent.row(Int(anchor)), relation: relRow, query: q, gradQuery: gq, tailSide: !corruptHead,
                                   d: d, phaseScale: phaseScale, gradAnchor: ga, gradRelation: gr)
        if regularized {
            let lam = regularizerShare
            loss += Double(regularizerValue(ent.row(Int(h)), w, lam) + regularizerValue(relRow, wr, lam) + regularizerValue(ent.row(Int(t)), w, lam))
            regularizerGradient(relRow, gr, wr, lam)   // the entities' terms are added in phase 2
        }
        b.positiveCoefficient[j] = cPos
        b.tripleIndex[j] = Int32(truncatingIfNeeded: i)
        b.corruptHead[j] = corruptHead
        ws.loss += loss
        return corruptHead
    }

    /// The gradients one sample (in slot 0, `scale` 1, a batch of one) puts on each row, through
    /// the same code as training, without applying them (for the gradient check).
    func sampleGradients(_ i: Int, seed: UInt64) -> (corruptHead: Bool, negatives: [Int32], entities: [(Int32, [Float])], relations: [(Int32, [Float])]) {
        let g = batchGradients([(i, seed)], sampleBase: 0)
        return (g.samples[0].corruptHead, g.samples[0].negatives, g.entities, g.relations)
    }

    /// The gradients a batch of samples (slots 0, 1, …, each with `scale` 1 and the regulariser's
    /// full weight, so that the loss is the plain sum of the samples') puts on each row, through
    /// the same code as training, without applying them. Each sample's side and negatives are
    /// returned with it (shared negatives are drawn as a step draws them, from `sampleBase`).
    func batchGradients(_ batch: [(triple: Int, seed: UInt64)], sampleBase: UInt64)
        -> (samples: [(corruptHead: Bool, negatives: [Int32])], entities: [(Int32, [Float])], relations: [(Int32, [Float])]) {
        precondition(batch.count <= buffers.capacity)
        regularizerShare = p.regularizationWeight
        if p.negativeSharing > 1 { drawSharedNegatives(count: batch.count, sampleBase: sampleBase) }
        let ws = workers[0], n = p.negatives
        var samples: [(corruptHead: Bool, negatives: [Int32])] = []
        for (j, (i, seed)) in batch.enumerated() {
            let head = sample(i, slot: j, seed: seed, scale: 1, scratch: ws)
            let negs = negatives(ofSlot: j)
            samples.append((head, Array(UnsafeBufferPointer(start: negs, count: n))))
        }
        ws.loss = 0
        buildContributions(count: batch.count)
        let pass = rowPass(stepSize: 0, rootBc2: 1), g = pass.rowGradients
        var ent: [(Int32, [Float])] = [], rel: [(Int32, [Float])] = []
        for s in 0..<pass.entityRows {
            pass.entityGradient(slot: s, into: g)
            ent.append((pass.entityRowIds[s], Array(UnsafeBufferPointer(start: g, count: model.entities.cols))))
        }
        for s in 0..<pass.relationRows {
            pass.relationGradient(slot: s, into: g)
            rel.append((pass.relationRowIds[s], Array(UnsafeBufferPointer(start: g, count: model.relations.cols))))
        }
        clearContributions()
        return (samples, ent, rel)
    }

    /// λ Σ|x|³ or λ Σ x² over one row.
    @inline(__always) func regularizerValue(_ x: UnsafePointer<Float>, _ n: Int, _ lam: Float) -> Float {
        var value: Float = 0
        if p.regularizer == .n3 {
            for i in 0..<n { let a = abs(x[i]); value += a * a * a }
        } else {
            for i in 0..<n { value += x[i] * x[i] }
        }
        return lam * value
    }

    /// Adds the regulariser's gradient for one row.
    @inline(__always) func regularizerGradient(_ x: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ n: Int, _ lam: Float) {
        Self.regularizerGradient(p.regularizer, x, g, n, lam)
    }
    @inline(__always) static func regularizerGradient(_ kind: KGRegularizer, _ x: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ n: Int, _ lam: Float) {
        if kind == .n3 {
            for i in 0..<n { g[i] += 3 * lam * abs(x[i]) * x[i] }
        } else {
            for i in 0..<n { g[i] += 2 * lam * x[i] }
        }
    }

    @inline(__always) static func sigmoid(_ x: Float) -> Float {
        x >= 0 ? 1 / (1 + expf(-x)) : { let e = expf(x); return e / (1 + e) }()
    }
    /// log σ(x) = −softplus(−x), computed without overflow.
    @inline(__always) static func logSigmoid(_ x: Float) -> Float {
        x >= 0 ? -log1pf(expf(-x)) : x - log1pf(expf(x))
    }
}

/// Phase 2 of a step over plain pointers: each touched row's gradient, summed in sample order
/// from its contribution list and the row's pre-update values, then the optimiser. A value type
/// without references, so that the per-row work does no reference counting.
struct RowPass: @unchecked Sendable {
    let entities: UnsafeMutablePointer<Float>, entityWidth: Int
    let relations: UnsafeMutablePointer<Float>, relationWidth: Int
    let stateE: UnsafeMutablePointer<Float>, stateR: UnsafeMutablePointer<Float>
    let queries: UnsafeMutablePointer<Float>, gradAnchor: UnsafeMutablePointer<Float>, gradRelation: UnsafeMutablePointer<Float>
    let coefficients: UnsafeMutablePointer<Float>, positiveCoefficient: UnsafeMutablePointer<Float>
    let entityRowIds: UnsafeMutablePointer<Int32>, entityStart: UnsafeMutablePointer<Int32>, entityList: UnsafeMutablePointer<Int32>
    let entityRows: Int
    let relationRowIds: UnsafeMutablePointer<Int32>, relationStart: UnsafeMutablePointer<Int32>, relationList: UnsafeMutablePointer<Int32>
    let relationRows: Int
    let rowGradients: UnsafeMutablePointer<Float>, rowGradientWidth: Int
    let negatives: Int, stride: Int
    /// Slots per shared negative draw (1: each slot its own) and the runs' summed gradients.
    let sharing: Int, runGradients: UnsafeMutablePointer<Float>?
    let cmp: ScoreKernels.Comparison
    let regularizer: KGRegularizer, regularizerShare: Float
    let adam: Bool, learningRate: Float, unitEntities: Bool
    let stepSize: Float, rootBc2: Float

    /// Adam's [m | v] or Adagrad's sums take 2 or 1 row widths.
    @inline(__always) var moments: Int { adam ? 2 : 1 }

    @inline(__always) func prefetchEntity(_ slot: Int) {
        let row = Int(entityRowIds[slot]), f = MemoryLayout<Float>.stride
        ck_prefetch(entities + row * entityWidth, entityWidth * f)
        ck_prefetch(stateE + row * moments * entityWidth, moments * entityWidth * f)
    }

    /// Entity slot `s`'s gradient: candidates' c · ∂f/∂x recomputed from the stored q, anchors'
    /// stored gradients, the regulariser's terms.
    @inline(__always) func entityGradient(slot s: Int, into g: UnsafeMutablePointer<Float>) {
        let w = entityWidth, n = negatives
        let x = entities + Int(entityRowIds[s]) * w
        g.update(repeating: 0, count: w)
        for idx in Int(entityStart[s])..<Int(entityStart[s + 1]) {
            let code = Int(entityList[idx])
            let j = code / stride, kind = code - j * stride
            if kind < n, let runGradients {
                // A shared negative: its run's gradient, summed in phase 1.
                Kernels.axpy(1, runGradients + ((j / sharing) * n + kind) * w, g, w)
            } else if kind < n {
                ScoreKernels.candidateBackward(cmp, q: queries + j * w, x: x, w: w, coefficient: coefficients[j * n + kind], gradCandidate: g)
            } else if kind == n {
                ScoreKernels.candidateBackward(cmp, q: queries + j * w, x: x, w: w, coefficient: positiveCoefficient[j], gradCandidate: g)
            } else if kind == n + 1 {
                Kernels.axpy(1, gradAnchor + j * w, g, w)
            } else {
                TrainingState.regularizerGradient(regularizer, x, g, w, regularizerShare)
            }
        }
    }

    /// Relation slot `s`'s gradient: the sum of its samples' stored gradients.
    @inline(__always) func relationGradient(slot s: Int, into g: UnsafeMutablePointer<Float>) {
        let w = relationWidth
        g.update(repeating: 0, count: w)
        for idx in Int(relationStart[s])..<Int(relationStart[s + 1]) { Kernels.axpy(1, gradRelation + Int(relationList[idx]) * w, g, w) }
    }

    @inline(__always) func applyEntity(slot s: Int, gradient g: UnsafeMutablePointer<Float>) {
        let row = Int(entityRowIds[s]), w = entityWidth
        apply(entities + row * w, stateE + row * moments * w, g, w, unit: unitEntities)
    }

    @inline(__always) func applyRelation(slot s: Int, gradient g: UnsafeMutablePointer<Float>) {
        let row = Int(relationRowIds[s]), w = relationWidth
        apply(relations + row * w, stateR + row * moments * w, g, w, unit: false)
    }

    /// The optimiser on one row; TransE's unit-norm projection fused into Adam's pass.
    @inline(__always) func apply(_ x: UnsafeMutablePointer<Float>, _ st: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ n: Int, unit: Bool) {
        if adam {
            TrainingState.adam(x, st, st + n, g, n, stepSize: stepSize, rootBc2: rootBc2, unitNorm: unit)
        } else {
            TrainingState.adagrad(x, st, g, n, lr: learningRate)
            if unit { TrainingState.normalize(x, n) }
        }
    }
}
