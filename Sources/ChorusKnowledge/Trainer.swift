#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore

/// Mini-batch training of knowledge-graph embeddings with negative sampling.
///
/// Determinism: each batch is cut into one contiguous slice per worker (`Parallel.forEachChunk`);
/// a worker draws its negatives from an RNG seeded by (seed, position of the triple in training),
/// and accumulates gradients into its own gradient table. The tables are then summed row by row
/// in worker order, and each touched row is updated by exactly one thread. No shared writes, no
/// atomics: the same seed and thread count give bit-identical embeddings.
public enum KGTrainer {
    /// Trains a model on every triple of `store`.
    /// - Parameters:
    ///   - progress: called after each epoch; return true to cancel. Cancelling throws `.cancelled`
    ///     (no partial model is returned).
    ///   - finishEarly: called after each epoch (after `progress`); return true to end training
    ///     there and return the model as trained so far (a time budget, early stopping).
    /// - Throws: `.invalidArgument` for bad parameters or an empty store, `.cancelled`, `.outOfMemory`.
    /// - Complexity: per epoch O(n · (negatives + 2) · d) for n triples.
    public static func fit(_ store: TripleStore, parameters p: KGTrainingParameters,
                           progress: ((KGEpochReport) -> Bool)? = nil,
                           finishEarly: ((KGEpochReport) -> Bool)? = nil) throws(ChorusError) -> KnowledgeGraphModel {
        try p.validate()
        guard store.count > 0 else { throw .invalidArgument("the triple store is empty: nothing to train on") }
        let state = try TrainingState(store: store, parameters: p)
        var order = Array(0..<store.count)
        var shuffler = SeededRandom(seed: p.seed ^ 0x5DEE_CE66_D1CE_4E5B)
        let threads = p.threads > 0 ? p.threads : Parallel.cpuCount
        for epoch in 0..<p.epochs {
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
            if let finishEarly, finishEarly(report) { break }
        }
        return state.model
    }
}

/// Per-worker scratch: a gradient table shaped like the model with a touched-row list, and the
/// small vectors of one sample. Allocated once per training.
final class WorkerScratch {
    let gradE: FloatMatrix, gradR: FloatMatrix
    var touchedE: [UInt8], touchedR: [UInt8]
    var listE: [Int32] = [], listR: [Int32] = []
    let query: FloatMatrix, gradQuery: FloatMatrix
    var negatives: [Int32], scores: [Float], coefficients: [Float]
    var loss = 0.0
    /// f(positive) of the last sample, as training computed it (clear-box tests compare it with the model's score).
    var lastPositiveScore: Float = 0

    init(entities: Int, relations: Int, entityWidth: Int, relationWidth: Int, negatives n: Int) throws(ChorusError) {
        gradE = try FloatMatrix(rows: entities, cols: entityWidth)
        gradR = try FloatMatrix(rows: relations, cols: relationWidth)
        touchedE = [UInt8](repeating: 0, count: entities); touchedR = [UInt8](repeating: 0, count: relations)
        query = try FloatMatrix(rows: 1, cols: entityWidth); gradQuery = try FloatMatrix(rows: 1, cols: entityWidth)
        negatives = [Int32](repeating: 0, count: n); scores = [Float](repeating: 0, count: n); coefficients = [Float](repeating: 0, count: n)
    }

    @inline(__always) func gradEntity(_ e: Int32) -> UnsafeMutablePointer<Float> {
        if touchedE[Int(e)] == 0 { touchedE[Int(e)] = 1; listE.append(e) }
        return gradE.row(Int(e))
    }
    @inline(__always) func gradRelation(_ r: Int32) -> UnsafeMutablePointer<Float> {
        if touchedR[Int(r)] == 0 { touchedR[Int(r)] = 1; listR.append(r) }
        return gradR.row(Int(r))
    }
}

/// The model, its optimiser state and the per-worker scratch of one training run.
final class TrainingState: @unchecked Sendable {
    let p: KGTrainingParameters
    let model: KnowledgeGraphModel
    let heads: [Int32], rels: [Int32], tails: [Int32]
    let weights: [Float]
    let headProbability: [Float]
    let momentE: FloatMatrix?, momentR: FloatMatrix?        // Adam first moments
    let secondE: FloatMatrix, secondR: FloatMatrix          // Adam second moments / Adagrad sums
    var workers: [WorkerScratch] = []
    var step = 0
    var markE: [UInt8], markR: [UInt8]
    let cmp: ScoreKernels.Comparison

    init(store: TripleStore, parameters p: KGTrainingParameters) throws(ChorusError) {
        self.p = p
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
        if p.optimizer == .adam {
            momentE = try FloatMatrix(rows: ne, cols: we); momentR = try FloatMatrix(rows: nr, cols: wr)
        } else {
            momentE = nil; momentR = nil
        }
        secondE = try FloatMatrix(rows: ne, cols: we); secondR = try FloatMatrix(rows: nr, cols: wr)
        let threads = p.threads > 0 ? p.threads : Parallel.cpuCount
        for _ in 0..<max(1, min(threads, p.batchSize)) {
            workers.append(try WorkerScratch(entities: ne, relations: nr, entityWidth: we, relationWidth: wr, negatives: p.negatives))
        }
        markE = [UInt8](repeating: 0, count: ne); markR = [UInt8](repeating: 0, count: nr)
        cmp = ScoreKernels.comparison(kind, norm: p.norm)
    }

    static func normalize(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        let norm = Kernels.dot(x, x, n).squareRoot()
        if norm > 0 { for i in 0..<n { x[i] /= norm } }
    }

    /// One optimisation step on the triples `batch` (indices into the store). Returns the batch loss.
    func step(_ batch: ArraySlice<Int>, sampleBase: UInt64, threads: Int) -> Double {
        step += 1
        var weightSum: Float = 0
        for i in batch { weightSum += weights[i] }
        let box = SendableBox((self, batch, weightSum))
        let count = batch.count
        // Phase 1: gradients, one contiguous slice of the batch per worker.
        Parallel.forEachChunk(count: count, threads: min(threads, workers.count)) { w, range in
            let (state, batch, weightSum) = box.value
            let ws = state.workers[w]
            ws.loss = 0
            for j in range {
                let i = batch[batch.startIndex + j]
                state.sample(i, seed: state.p.seed &+ (sampleBase &+ UInt64(j) &+ 1) &* 0x9E37_79B9_7F4A_7C15,
                             scale: state.weights[i] / weightSum, batchSize: count, scratch: ws)
            }
        }
        var loss = 0.0
        for ws in workers { loss += ws.loss; ws.loss = 0 }
        // Phase 2: the union of touched rows in worker order, then a row-parallel reduce + update.
        var rowsE: [Int32] = [], rowsR: [Int32] = []
        for ws in workers {
            for e in ws.listE where markE[Int(e)] == 0 { markE[Int(e)] = 1; rowsE.append(e) }
            for r in ws.listR where markR[Int(r)] == 0 { markR[Int(r)] = 1; rowsR.append(r) }
        }
        let t = Float(step)
        let stepSize = p.learningRate / (1 - powf(0.9, t)), rootBc2 = (1 - powf(0.999, t)).squareRoot()
        let upd = SendableBox((self, rowsE, rowsR))
        Parallel.forEachChunk(count: rowsE.count + rowsR.count, threads: threads) { _, range in
            let (state, rowsE, rowsR) = upd.value
            for k in range {
                if k < rowsE.count { state.update(entity: true, row: Int(rowsE[k]), stepSize: stepSize, rootBc2: rootBc2) }
                else { state.update(entity: false, row: Int(rowsR[k - rowsE.count]), stepSize: stepSize, rootBc2: rootBc2) }
            }
        }
        for e in rowsE { markE[Int(e)] = 0 }
        for r in rowsR { markR[Int(r)] = 0 }
        for ws in workers {
            for e in ws.listE { ws.touchedE[Int(e)] = 0 }
            for r in ws.listR { ws.touchedR[Int(r)] = 0 }
            ws.listE.removeAll(keepingCapacity: true); ws.listR.removeAll(keepingCapacity: true)
        }
        return loss
    }

    /// Sums the workers' gradients for one row (in worker order), clears them, and applies the
    /// optimiser. `stepSize` and `rootBc2` carry Adam's bias corrections for this step.
    func update(entity: Bool, row: Int, stepSize: Float, rootBc2: Float) {
        let table = entity ? model.entities : model.relations
        let n = table.cols
        let x = table.row(row)
        let v = (entity ? secondE : secondR).row(row)
        let m = (entity ? momentE : momentR)?.row(row)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: n) { gbuf in
            let g = gbuf.baseAddress!
            var first = true
            for ws in workers {
                let touched = entity ? ws.touchedE[row] : ws.touchedR[row]
                guard touched != 0 else { continue }
                let src = (entity ? ws.gradE : ws.gradR).row(row)
                if first { g.update(from: src, count: n); first = false } else { Kernels.axpy(1, src, g, n) }
                src.update(repeating: 0, count: n)
            }
            if first { return }
            if let m {
                Self.adam(x, m, v, g, n, stepSize: stepSize, rootBc2: rootBc2)
            } else {
                Self.adagrad(x, v, g, n, lr: p.learningRate)
            }
        }
        if entity && p.model == .transE && p.unitEntities { Self.normalize(x, n) }
    }

    /// torch.optim.Adam: m = β1 m + (1 − β1) g; v = β2 v + (1 − β2) g²;
    /// x −= lr / bc1 · m / (sqrt(v) / sqrt(bc2) + eps), with β = (0.9, 0.999), eps = 1e-8.
    @inline(__always) static func adam(_ x: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                                       _ g: UnsafePointer<Float>, _ n: Int, stepSize: Float, rootBc2: Float) {
        let b1: Float = 0.9, b2: Float = 0.999, eps: Float = 1e-8
        typealias V = SIMD8<Float>
        let rx = UnsafeMutableRawPointer(x), rm = UnsafeMutableRawPointer(m), rv = UnsafeMutableRawPointer(v), rg = UnsafeRawPointer(g)
        var i = 0
        while i + 8 <= n {
            let o = i * 4
            let gi = rg.loadUnaligned(fromByteOffset: o, as: V.self)
            let mi = V(repeating: b1) * rm.loadUnaligned(fromByteOffset: o, as: V.self) + V(repeating: 1 - b1) * gi
            let vi = V(repeating: b2) * rv.loadUnaligned(fromByteOffset: o, as: V.self) + V(repeating: 1 - b2) * gi * gi
            let xi = rx.loadUnaligned(fromByteOffset: o, as: V.self) - V(repeating: stepSize) * mi / (vi.squareRoot() / V(repeating: rootBc2) + V(repeating: eps))
            rm.storeBytes(of: mi, toByteOffset: o, as: V.self); rv.storeBytes(of: vi, toByteOffset: o, as: V.self)
            rx.storeBytes(of: xi, toByteOffset: o, as: V.self)
            i += 8
        }
        while i < n {
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
            x[i] -= stepSize * m[i] / (v[i].squareRoot() / rootBc2 + eps)
            i += 1
        }
    }

    /// torch.optim.Adagrad (initial accumulator 0, eps 1e-10): s += g²; x −= lr · g / (sqrt(s) + eps).
    @inline(__always) static func adagrad(_ x: UnsafeMutablePointer<Float>, _ s: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ n: Int, lr: Float) {
        for i in 0..<n {
            s[i] += g[i] * g[i]
            x[i] -= lr * g[i] / (s[i].squareRoot() + 1e-10)
        }
    }

    /// Forward and backward pass of one positive triple and its negatives into the worker's tables.
    /// `scale` is this positive's share of the batch loss (its weight over the batch's weight sum).
    /// Returns whether the head (rather than the tail) was corrupted.
    @discardableResult
    func sample(_ i: Int, seed: UInt64, scale: Float, batchSize: Int, scratch ws: WorkerScratch) -> Bool {
        var rng = SeededRandom(seed: seed)
        let h = heads[i], r = rels[i], t = tails[i]
        let corruptHead = rng.nextFloat() < headProbability[Int(r)]
        let anchor = corruptHead ? t : h, target = corruptHead ? h : t
        let kind = p.model, d = p.dimension
        let ent = model.entities, w = ent.cols, ne = ent.rows
        let q = ws.query.base, gq = ws.gradQuery.base
        let relRow = model.relations.row(Int(r))
        let phaseScale = model.phaseScale, gamma = model.gamma
        ScoreKernels.query(kind, anchor: ent.row(Int(anchor)), relation: relRow, tailSide: !corruptHead, d: d, phaseScale: phaseScale, out: q)
        let fPos = ScoreKernels.score(cmp, q: q, x: ent.row(Int(target)), w: w, gamma: gamma)
        ws.lastPositiveScore = fPos
        let n = p.negatives
        var cPos: Float = 0
        var loss: Double = 0
        ws.negatives.withUnsafeMutableBufferPointer { negs in
        ws.scores.withUnsafeMutableBufferPointer { f in
        ws.coefficients.withUnsafeMutableBufferPointer { c in
            for k in 0..<n {
                let e = Int32(truncatingIfNeeded: rng.nextInt(below: ne))
                negs[k] = e
                f[k] = ScoreKernels.score(cmp, q: q, x: ent.row(Int(e)), w: w, gamma: gamma)
            }
            switch p.loss {
            case .marginRanking(let margin):
                let share = scale / Float(n)
                for k in 0..<n {
                    let v = margin - fPos + f[k]
                    if v > 0 { loss += Double(share * v); c[k] = share; cPos -= share } else { c[k] = 0 }
                }
            case .logistic:
                // d/df [−log σ(−f)] = σ(f); d/df [−log σ(f)] = −σ(−f).
                let share = 0.5 * scale / Float(n)
                for k in 0..<n { loss -= Double(share * Self.logSigmoid(-f[k])); c[k] = share * Self.sigmoid(f[k]) }
                loss -= Double(0.5 * scale * Self.logSigmoid(fPos)); cPos = -0.5 * scale * Self.sigmoid(-fPos)
            case .selfAdversarial(let alpha):
                var top = -Float.infinity
                for k in 0..<n { top = max(top, alpha * f[k]) }
                var z: Float = 0
                for k in 0..<n { c[k] = expf(alpha * f[k] - top); z += c[k] }
                for k in 0..<n {
                    let pk = c[k] / z   // the softmax weight, a constant for the gradient
                    loss -= Double(0.5 * scale * pk * Self.logSigmoid(-f[k]))
                    c[k] = 0.5 * scale * pk * Self.sigmoid(f[k])
                }
                loss -= Double(0.5 * scale * Self.logSigmoid(fPos)); cPos = -0.5 * scale * Self.sigmoid(-fPos)
            }
            // Backward: candidates first (their rows), the query's gradient summed along the way.
            gq.update(repeating: 0, count: w)
            for k in 0..<n where c[k] != 0 {
                ScoreKernels.scoreBackward(cmp, q: q, x: ent.row(Int(negs[k])), w: w, coefficient: c[k], gradQuery: gq, gradCandidate: ws.gradEntity(negs[k]))
            }
        }}}
        if cPos != 0 {
            ScoreKernels.scoreBackward(cmp, q: q, x: ent.row(Int(target)), w: w, coefficient: cPos, gradQuery: gq, gradCandidate: ws.gradEntity(target))
        }
        ScoreKernels.queryBackward(kind, anchor: ent.row(Int(anchor)), relation: relRow, query: q, gradQuery: gq, tailSide: !corruptHead,
                                   d: d, phaseScale: phaseScale, gradAnchor: ws.gradEntity(anchor), gradRelation: ws.gradRelation(r))
        if p.regularizer != .none && p.regularizationWeight > 0 {
            let lam = p.regularizationWeight / Float(batchSize)
            loss += Double(regularize(ent.row(Int(h)), ws.gradEntity(h), w, lam))
            loss += Double(regularize(relRow, ws.gradRelation(r), model.relations.cols, lam))
            loss += Double(regularize(ent.row(Int(t)), ws.gradEntity(t), w, lam))
        }
        ws.loss += loss
        return corruptHead
    }

    /// Adds the regulariser's gradient for one row; returns its value.
    @inline(__always) func regularize(_ x: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ n: Int, _ lam: Float) -> Float {
        var value: Float = 0
        if p.regularizer == .n3 {
            for i in 0..<n { let a = abs(x[i]); value += a * a * a; g[i] += 3 * lam * a * x[i] }
        } else {
            for i in 0..<n { value += x[i] * x[i]; g[i] += 2 * lam * x[i] }
        }
        return lam * value
    }

    @inline(__always) static func sigmoid(_ x: Float) -> Float {
        x >= 0 ? 1 / (1 + expf(-x)) : { let e = expf(x); return e / (1 + e) }()
    }
    /// log σ(x) = −softplus(−x), computed without overflow.
    @inline(__always) static func logSigmoid(_ x: Float) -> Float {
        x >= 0 ? -log1pf(expf(-x)) : x - log1pf(expf(x))
    }
}
