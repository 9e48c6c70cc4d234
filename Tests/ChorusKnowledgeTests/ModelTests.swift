#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import ChorusKnowledge
@testable import ChorusCore

func logSigmoid(_ x: Double) -> Double { x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)) }

/// The first sample seed from `start` whose side draw (the sample's first random number) corrupts
/// the head (or the tail) of a triple with this relation.
func sampleSeed(corruptingHead: Bool, relation: Int32, state: TrainingState, from start: UInt64) -> UInt64 {
    var seed = start
    while true {
        var rng = SeededRandom(seed: seed)
        if (rng.nextFloat() < state.headProbability[Int(relation)]) == corruptingHead { return seed }
        seed &+= 1
    }
}

/// Every model/loss combination the gradient check covers.
let gradientCases: [(KGModelKind, KGLoss, KGRegularizer, Int)] = [
    (.transE, .marginRanking(margin: 4), .none, 1),
    (.transE, .logistic, .none, 2),
    (.transE, .selfAdversarial(temperature: 1), .none, 1),
    (.distMult, .logistic, .n3, 1),
    (.distMult, .selfAdversarial(temperature: 0.5), .l2, 1),
    (.complEx, .logistic, .n3, 1),
    (.complEx, .selfAdversarial(temperature: 1), .l2, 1),
    (.rotatE, .selfAdversarial(temperature: 0.5), .none, 1),
    (.rotatE, .logistic, .none, 1),
]

@Suite struct ModelTests {
    /// The trainer's analytic gradient of one positive and its negatives against central finite
    /// differences of the loss written out here from `model.score` (tail-side scoring only, so the
    /// head-side rewrites are checked too). The self-adversarial weights are held at their
    /// starting values, as the method prescribes (no gradient through them).
    @Test(arguments: 0..<gradientCases.count)
    func gradientMatchesFiniteDifferences(_ c: Int) throws {
        // Seeds chosen per triple so that both corruption sides (tail-batch q = φ(h, r) and
        // head-batch q = ψ(r, t)) are exercised for every model; the check asserts it did.
        var sides = Set<Bool>()
        for (triple, wantHead) in [(5, false), (40, true), (77, false), (100, true)] {
            sides.formUnion(try checkGradients(gradientCases[c], sharing: 1, batch: [(triple, wantHead)], seed: UInt64(c) + 7).sides)
        }
        #expect(sides == [false, true], "\(gradientCases[c].0): only corruption sides \(sides) were checked")
    }

    /// The same check for a batch whose runs of 3 positives share their negatives (a full run and
    /// a partial one, both sides inside a run): the fused pass that sums a run's gradient on each
    /// shared negative must give the gradient of the summed loss. TransE is checked with its L2
    /// distance: five queries against the same rows put an L1 kink within the step of too many
    /// coordinates (the L1 kernels are the single-sample check's).
    @Test(arguments: 0..<gradientCases.count)
    func sharedNegativesGradientMatchesFiniteDifferences(_ c: Int) throws {
        var testCase = gradientCases[c]
        if testCase.0 == .transE { testCase.3 = 2 }
        let sides = try checkGradients(testCase, sharing: 3, batch: [(5, false), (40, true), (77, false), (100, true), (120, false)],
                                       seed: UInt64(c) + 101).sides
        #expect(sides == [false, true])
    }

    /// With known facts among the negatives left out (`filterKnownNegatives`), alone and with
    /// shared negatives: the loss written out here averages (or softmax-weighs) only the negatives
    /// that are not training triples, so a fact the trainer kept would show in the gradient.
    @Test(arguments: 0..<gradientCases.count)
    func filteredNegativesGradientMatchesFiniteDifferences(_ c: Int) throws {
        var testCase = gradientCases[c]
        if testCase.0 == .transE { testCase.3 = 2 }
        var dropped = 0
        for (sharing, seed) in [(1, UInt64(c) + 223), (3, UInt64(c) + 307)] {
            let checked = try checkGradients(testCase, sharing: sharing, batch: [(5, false), (40, true), (77, false), (100, true), (120, false)],
                                             seed: seed, filter: true)
            #expect(checked.sides == [false, true])
            dropped += checked.dropped
        }
        #expect(dropped > 0, "no drawn negative was a known fact: the filter was not exercised")
    }

    /// Draws the batch's samples through the trainer (`TrainingState.batchGradients`), then checks
    /// every coordinate of every touched row against central differences of the summed loss.
    /// Returns the corruption sides the samples took and how many drawn negatives were facts
    /// (left out of the loss when `filter` is on).
    @discardableResult
    func checkGradients(_ testCase: (KGModelKind, KGLoss, KGRegularizer, Int), sharing: Int, batch: [(Int, Bool)], seed: UInt64,
                        filter: Bool = false) throws -> (sides: Set<Bool>, dropped: Int) {
        var dropped = 0
        let (kind, loss, reg, norm) = testCase
        let (store, _, _) = try clusterGraph()
        var p = KGTrainingParameters.defaults(for: kind)
        p.dimension = 11; p.negatives = 5; p.loss = loss; p.threads = 1; p.norm = norm
        p.regularizer = reg; p.regularizationWeight = reg == .none ? 0 : 0.05
        p.unitEntities = false; p.gamma = 3; p.initRange = 0; p.negativeSharing = sharing
        p.filterKnownNegatives = filter
        let facts = Set((0..<store.count).map { store.triple($0) })
        let state = try TrainingState(store: store, parameters: p)
        var rng = SeededRandom(seed: seed)
        for i in 0..<state.model.entities.count { state.model.entities.base[i] = rng.nextFloat() * 2 - 1 }
        for i in 0..<state.model.relations.count { state.model.relations.base[i] = rng.nextFloat() * 2 - 1 }
        let model = state.model
        let seeds = batch.map { (triple, wantHead) in
            (triple, sampleSeed(corruptingHead: wantHead, relation: store.triple(triple).relation, state: state, from: UInt64(11 + triple)))
        }
        // The gradient of every touched row, through the trainer's own two phases.
        let (samples, entityGrads, relationGrads) = state.batchGradients(seeds, sampleBase: 3)
        #expect(samples.map(\.corruptHead) == batch.map(\.1))
        for (j, s) in samples.enumerated() where sharing > 1 {
            #expect(s.negatives == samples[j / sharing * sharing].negatives, "slot \(j) does not share its run's negatives")
        }
        // The negatives that count: with the filter, those that are not training triples.
        let counted = batch.indices.map { j in
            let t = store.triple(batch[j].0), corruptHead = samples[j].corruptHead
            return samples[j].negatives.filter { e in
                let candidate = corruptHead ? Triple(head: e, relation: t.relation, tail: t.tail) : Triple(head: t.head, relation: t.relation, tail: e)
                if facts.contains(candidate) { dropped += 1; return !filter }
                return true
            }
        }
        func sampleScores(_ j: Int) throws -> (Double, [Double]) {
            let t = store.triple(batch[j].0), corruptHead = samples[j].corruptHead
            let pos = Double(try model.score(head: t.head, relation: t.relation, tail: t.tail))
            let neg = try counted[j].map { e in
                Double(corruptHead ? try model.score(head: e, relation: t.relation, tail: t.tail)
                                   : try model.score(head: t.head, relation: t.relation, tail: e))
            }
            return (pos, neg)
        }
        let weights = try (0..<batch.count).map { j in
            let (_, neg0) = try sampleScores(j)
            guard case .selfAdversarial(let a) = loss else { return [Double](repeating: 1 / Double(neg0.count), count: neg0.count) }
            guard let m = neg0.max() else { return [] }
            let z = neg0.map { exp(Double(a) * ($0 - m)) }
            return z.map { $0 / z.reduce(0, +) }
        }
        func lossValue() throws -> Double {
            var l = 0.0
            for j in 0..<batch.count {
                let (pos, neg) = try sampleScores(j)
                switch loss {
                case .marginRanking(let m): l += neg.map { max(0, Double(m) - pos + $0) }.reduce(0, +) / Double(max(1, neg.count))
                case .logistic, .selfAdversarial:
                    l += -0.5 * logSigmoid(pos) - 0.5 * zip(weights[j], neg).map { $0 * logSigmoid(-$1) }.reduce(0, +)
                }
                guard reg != .none else { continue }
                let t = store.triple(batch[j].0)
                for (row, width) in [(model.entities.row(Int(t.head)), model.entities.cols), (model.relations.row(Int(t.relation)), model.relations.cols),
                                     (model.entities.row(Int(t.tail)), model.entities.cols)] {
                    for i in 0..<width {
                        let x = Double(row[i])
                        l += 0.05 * (reg == .n3 ? abs(x) * x * x : x * x)
                    }
                }
            }
            return l
        }
        // Check every coordinate of the rows the batch touched.
        var checked = 0, worst = 0.0, kinks = 0
        for (table, rows) in [(model.entities, entityGrads), (model.relations, relationGrads)] {
            for (r, grad) in rows {
                for i in 0..<table.cols {
                    let x = table.row(Int(r)) + i
                    let keep = x.pointee, h: Float = 1e-2
                    let base = try lossValue()
                    x.pointee = keep + h; let up = try lossValue()
                    x.pointee = keep - h; let down = try lossValue()
                    x.pointee = keep
                    // A kink (L1 distance, hinge) inside [x - h, x + h]: the one-sided slopes
                    // disagree and the central difference means nothing there.
                    let forward = (up - base) / Double(h), backward = (base - down) / Double(h)
                    if abs(forward - backward) > 0.05 * max(1, abs(forward) + abs(backward)) { kinks += 1; continue }
                    let numeric = (up - down) / Double(2 * h)
                    let analytic = Double(grad[i])
                    let err = abs(numeric - analytic) / max(1e-2, abs(numeric) + abs(analytic))
                    worst = max(worst, err)
                    checked += 1
                }
            }
        }
        #expect(checked >= 3 * model.entities.cols, "too few coordinates checked")
        #expect(kinks <= checked / 20, "\(kind) \(loss): \(kinks) non-differentiable points of \(checked)")
        #expect(worst < 0.03, "\(kind) \(loss) sharing \(sharing): worst relative gradient error \(worst)")
        return (Set(samples.map(\.corruptHead)), dropped)
    }

    /// The score written out from each paper's formula in Double, straight from the rows, against
    /// every way the library computes it: `score` (the tail-side query form), `scoreAll` in both
    /// directions (head prediction uses the head-batch rewrite, e.g. conj(r) ∘ t for ComplEx) and
    /// the trainer's positive score for a head- and a tail-corrupted sample. Dimensions 11 and 16
    /// cover the SIMD bodies and their scalar tails.
    @Test(arguments: KGModelKind.allCases)
    func scoreFormsAgreeInBothDirections(_ kind: KGModelKind) throws {
        let (store, _, _) = try clusterGraph()
        for (d, norm) in [(11, 1), (16, 2)] {
            var p = KGTrainingParameters.defaults(for: kind)
            p.dimension = d; p.threads = 1; p.gamma = 3; p.initRange = 0; p.norm = norm; p.unitEntities = false
            let state = try TrainingState(store: store, parameters: p)
            var rng = SeededRandom(seed: UInt64(d))
            for i in 0..<state.model.entities.count { state.model.entities.base[i] = rng.nextFloat() * 2 - 1 }
            for i in 0..<state.model.relations.count { state.model.relations.base[i] = rng.nextFloat() * 2 - 1 }
            let m = state.model
            func direct(_ h: Int32, _ r: Int32, _ t: Int32) -> Double {
                let hv = m.entities.row(Int(h)), rv = m.relations.row(Int(r)), tv = m.entities.row(Int(t))
                var s = 0.0
                for k in 0..<d {
                    let (a, b, c) = (Double(hv[k]), Double(rv[k]), Double(tv[k]))
                    switch kind {
                    case .transE: s += norm == 1 ? abs(a + b - c) : (a + b - c) * (a + b - c)
                    case .distMult: s += a * b * c
                    case .complEx:   // Re(h · r · conj(t)) with h = a + i·hi, r = b + i·ri, t = c + i·ti
                        let (hi, ri, ti) = (Double(hv[d + k]), Double(rv[d + k]), Double(tv[d + k]))
                        let pr = a * b - hi * ri, pi = a * ri + hi * b   // h · r
                        s += pr * c + pi * ti                           // Re((pr + i pi)(c − i ti))
                    case .rotatE:    // |h · e^{iθ} − t|, θ = r · π / range
                        let theta = b * Double(m.phaseScale), hi = Double(hv[d + k]), ti = Double(tv[d + k])
                        let re = a * cos(theta) - hi * sin(theta) - c, im = a * sin(theta) + hi * cos(theta) - ti
                        s += (re * re + im * im).squareRoot()
                    }
                }
                switch kind {
                case .transE: return Double(m.gamma) - (norm == 1 ? s : s.squareRoot())
                case .rotatE: return Double(m.gamma) - s
                default: return s
                }
            }
            var all = [Float](repeating: 0, count: m.entityCount)
            for i in stride(from: 0, to: store.count, by: 9) {
                let t = store.triple(i)
                let want = direct(t.head, t.relation, t.tail)
                let tol = 1e-4 * max(1, abs(want))
                #expect(abs(Double(try m.score(head: t.head, relation: t.relation, tail: t.tail)) - want) < tol, "\(kind) d \(d): score")
                try all.withUnsafeMutableBufferPointer { b in try m.scoreAll(anchor: t.head, relation: t.relation, predictTail: true, into: b) }
                #expect(abs(Double(all[Int(t.tail)]) - want) < tol, "\(kind) d \(d): tail prediction")
                try all.withUnsafeMutableBufferPointer { b in try m.scoreAll(anchor: t.tail, relation: t.relation, predictTail: false, into: b) }
                #expect(abs(Double(all[Int(t.head)]) - want) < tol, "\(kind) d \(d): head prediction")
                // Every candidate of the head query against the direct score with that head.
                for e in stride(from: Int32(0), to: Int32(m.entityCount), by: 5) {
                    let w = direct(e, t.relation, t.tail)
                    #expect(abs(Double(all[Int(e)]) - w) < 1e-4 * max(1, abs(w)), "\(kind) d \(d): head candidate \(e)")
                }
                for corruptHead in [false, true] {
                    let seed = sampleSeed(corruptingHead: corruptHead, relation: t.relation, state: state, from: UInt64(i) &* 31 &+ 1)
                    let ws = state.workers[0]
                    ws.lastPositiveScore = .nan
                    #expect(state.sample(i, slot: 0, seed: seed, scale: 1, scratch: ws) == corruptHead)
                    #expect(abs(Double(ws.lastPositiveScore) - want) < tol, "\(kind) d \(d): training score, head-batch \(corruptHead)")
                }
            }
        }
    }

    /// The ComplEx regression (FB15k-237, 3 minutes: MRR 0.046 against DistMult's 0.189 at the
    /// same settings): its default initialisation was twice DistMult's per float, so at the same
    /// floats per row (ComplEx d = 100, DistMult d = 200, the bench's settings) its initial scores
    /// spread about 11x wider and it needed about twice the epochs. With one range for both, the
    /// spreads differ only by √2 (ComplEx sums 4d triple products, DistMult 2d at equal width).
    @Test func complExStartsLikeDistMultAtTheSameWidth() throws {
        var store = TripleStore()
        for i in 0..<400 { try store.add(head: "e\(i)", relation: "r\(i % 7)", tail: "e\((i * 37 + 11) % 400)") }
        func initialSpread(_ kind: KGModelKind, dimension: Int) throws -> Double {
            var p = KGTrainingParameters.defaults(for: kind)
            p.dimension = dimension; p.epochs = 0; p.threads = 1
            let m = try KGTrainer.fit(store, parameters: p)
            var sum = 0.0, sq = 0.0, n = 0.0
            for h in stride(from: Int32(0), to: 400, by: 3) {
                for t in stride(from: Int32(1), to: 400, by: 7) {
                    let f = Double(try m.score(head: h, relation: h % 7, tail: t))
                    sum += f; sq += f * f; n += 1
                }
            }
            return (sq / n - (sum / n) * (sum / n)).squareRoot()
        }
        let distMult = try initialSpread(.distMult, dimension: 200), complEx = try initialSpread(.complEx, dimension: 100)
        // Uniform ±0.202: Var(x) = 0.202² / 3, so DistMult's spread is √200 · (0.0136)^{3/2} ≈ 0.022.
        #expect(distMult < 0.04, "DistMult initial score spread \(distMult)")
        #expect(complEx < 2 * distMult, "ComplEx initial score spread \(complEx) against DistMult's \(distMult)")
    }

    @Test func bernoulliSamplingMatchesTheProbabilities() throws {
        var s = TripleStore()
        for t in 0..<4 { try s.add(head: "h", relation: "has", tail: "t\(t)") }   // P(head) = 0.8
        for h in 0..<3 { try s.add(head: "x\(h)", relation: "in", tail: "box") }  // P(head) = 0.25
        for (sampling, expected) in [(KGNegativeSampling.bernoulli, (0.8, 0.25)), (.uniform, (0.5, 0.5))] {
            var p = KGTrainingParameters.defaults(for: .distMult)
            p.dimension = 4; p.negatives = 1; p.threads = 1; p.sampling = sampling
            let state = try TrainingState(store: s, parameters: p)
            let n = 20_000
            var heads = [0, 0]
            for k in 0..<n {
                for (slot, triple) in [(0, 0), (1, 5)] where state.sample(triple, slot: 0, seed: UInt64(k) &* 0x9E37_79B9_7F4A_7C15, scale: 1, scratch: state.workers[0]) {
                    heads[slot] += 1
                }
            }
            // Binomial standard error at n = 20,000 is < 0.0036: allow about 4 of them.
            #expect(abs(Double(heads[0]) / Double(n) - expected.0) < 0.015, "\(sampling) one-to-many: \(heads[0])")
            #expect(abs(Double(heads[1]) / Double(n) - expected.1) < 0.015, "\(sampling) many-to-one: \(heads[1])")
        }
    }

    /// Also with shared negatives, in runs that divide the batch (4) and that do not (5: 5, 5, 5, 1).
    @Test(arguments: [1, 4, 5])
    func sameSeedAndThreadsGiveIdenticalVectors(_ sharing: Int) throws {
        let (store, _, _) = try clusterGraph()
        for kind in KGModelKind.allCases {
            var p = KGTrainingParameters.defaults(for: kind)
            p.dimension = 12; p.epochs = 3; p.batchSize = 16; p.negatives = 8; p.threads = 2; p.negativeSharing = sharing
            let a = try KGTrainer.fit(store, parameters: p), b = try KGTrainer.fit(store, parameters: p)
            #expect(a.entities.toArray() == b.entities.toArray(), "\(kind)")
            #expect(a.relations.toArray() == b.relations.toArray(), "\(kind)")
            // Every sum runs in sample order: the thread count changes nothing either.
            var one = p; one.threads = 1
            let single = try KGTrainer.fit(store, parameters: one)
            #expect(a.entities.toArray() == single.entities.toArray(), "\(kind): 1 and 2 threads differ")
            #expect(a.relations.toArray() == single.relations.toArray(), "\(kind): 1 and 2 threads differ")
            p.seed = 43
            let c = try KGTrainer.fit(store, parameters: p)
            #expect(a.entities.toArray() != c.entities.toArray(), "\(kind): the seed changed nothing")
        }
    }

    @Test(arguments: KGModelKind.allCases, [1, 8])
    func learnsASmallGraph(_ kind: KGModelKind, sharing: Int) throws {
        let (store, test, known) = try clusterGraph()
        var p = KGTrainingParameters.defaults(for: kind)
        p.dimension = 16; p.epochs = 100; p.batchSize = 32; p.negatives = 8; p.threads = 2; p.learningRate = 0.02
        p.negativeSharing = sharing
        if kind.usesMargin { p.gamma = 6 }
        let model = try KGTrainer.fit(store, parameters: p)
        let result = try LinkPrediction.evaluate(model, triples: test, known: known, threads: 2)
        // Random ranking among ~20 unfiltered candidates gives MRR about 0.18.
        let untrained = try KGTrainer.fit(store, parameters: { var q = p; q.epochs = 0; return q }())
        let base = try LinkPrediction.evaluate(untrained, triples: test, known: known, threads: 2)
        #expect(base.both.mrr < 0.35, "\(kind): untrained MRR \(base.both.mrr)")
        #expect(result.both.mrr > 0.6, "\(kind) sharing \(sharing): trained MRR \(result.both.mrr)")
        #expect(result.both.queries == 2 * test.count)
    }

    /// Filtered ranks by hand on a 1-dimensional DistMult (score = h · r · t), entities 1, 2, 3, 2,
    /// relation 1; test (e0, r, e3), train (e0, r, e2). Tail query (e0, r, ?): scores 1, 2, 3, 2;
    /// e2 is another known tail (filtered), e1 ties with the truth (2): rank 1 + 0 + 1/2 = 1.5.
    /// Head query (?, r, e3): scores 2, 4, 6, 4 against the truth 2: e1, e2 and e3 beat it, nothing
    /// is filtered (e0 is the truth itself): rank 4. So MRR (1/1.5 + 1/4) / 2 = 0.458333...,
    /// mean rank 2.75, Hits@1 0, Hits@3 0.5, Hits@10 1.
    @Test func filteredRanksMatchAHandComputation() throws {
        let entities = try FloatMatrix(rows: 4, cols: 1), relations = try FloatMatrix(rows: 1, cols: 1)
        for (e, v) in [Float(1), 2, 3, 2].enumerated() { entities.row(e)[0] = v }
        relations.row(0)[0] = 1
        let model = try KnowledgeGraphModel(kind: .distMult, dimension: 1, gamma: 0, norm: 1, embeddingRange: 1,
                                            entities: entities, relations: relations)
        let test = [Triple(head: 0, relation: 0, tail: 3)]
        let known = KnownTriples([[Triple(head: 0, relation: 0, tail: 2)], test])
        let r = try LinkPrediction.evaluate(model, triples: test, known: known, threads: 1)
        #expect(r.tail.meanRank == 1.5 && r.head.meanRank == 4)
        #expect(abs(r.both.mrr - (1 / 1.5 + 1.0 / 4) / 2) < 1e-12)
        #expect(r.both.meanRank == 2.75 && r.both.hitsAt1 == 0 && r.both.hitsAt3 == 0.5 && r.both.hitsAt10 == 1)
        #expect(r.both.queries == 2)
        // Unfiltered (only the test triple known), e2 would beat the truth: rank 2.5.
        let unfiltered = try LinkPrediction.evaluate(model, triples: test, known: KnownTriples([test]), threads: 1)
        #expect(unfiltered.tail.meanRank == 2.5)
    }

    @Test func tiesUseTheRealisticRank() throws {
        // All-zero DistMult: every entity scores 0, so the truth ties with every candidate.
        let ne = 9
        let model = try KnowledgeGraphModel(kind: .distMult, dimension: 3, gamma: 0, norm: 1, embeddingRange: 1,
                                            entities: FloatMatrix(rows: ne, cols: 3), relations: FloatMatrix(rows: 1, cols: 3))
        let test = [Triple(head: 0, relation: 0, tail: 1)]
        // Filter one other tail (2) of (0, r): 7 tied competitors remain for the tail query.
        let known = KnownTriples([test, [Triple(head: 0, relation: 0, tail: 2)]])
        let r = try LinkPrediction.evaluate(model, triples: test, known: known, threads: 1)
        #expect(r.tail.meanRank == 1 + 7.0 / 2)   // mean of optimistic 1 and pessimistic 8
        #expect(r.head.meanRank == 1 + 8.0 / 2)
        #expect(r.tail.hitsAt1 == 0 && r.tail.hitsAt10 == 1)
    }

    @Test func cancellationThrows() throws {
        let (store, _, _) = try clusterGraph()
        var p = KGTrainingParameters.defaults(for: .rotatE)
        p.dimension = 4; p.epochs = 5; p.threads = 1
        var calls = 0
        #expect(throws: ChorusError.self) {
            _ = try KGTrainer.fit(store, parameters: p) { r in calls += 1; return r.epoch == 2 }
        }
        #expect(calls == 2)
    }

    @Test func unknownModelNameIsAClearError() {
        #expect(throws: ChorusError.invalidArgument("unknown knowledge-graph model 'transh' (known: transe, distmult, complex, rotate)")) {
            try KGModelKind(name: "transh")
        }
        #expect((try? KGModelKind(name: "RotatE")) == .rotatE)
    }

    @Test func invalidParametersAreRejected() throws {
        let (store, _, _) = try clusterGraph()
        var p = KGTrainingParameters(); p.negatives = 0
        #expect(throws: ChorusError.self) { try KGTrainer.fit(store, parameters: p) }
        #expect(throws: ChorusError.self) { try KGTrainer.fit(TripleStore(), parameters: KGTrainingParameters()) }
        for bad in [{ (q: inout KGTrainingParameters) in q.negativeSharing = 0 },
                    { $0.learningRateDecayEpochs = [5, 3] }, { $0.learningRateDecayEpochs = [0] },
                    { $0.learningRateDecayFactor = 0 }, { $0.learningRateDecayFactor = .nan }] {
            var q = KGTrainingParameters(); q.dimension = 4; q.epochs = 1
            bad(&q)
            #expect(throws: ChorusError.self) { try KGTrainer.fit(store, parameters: q) }
        }
        // Runs of 2 positives in batches of 4096 with 4096 negatives at width 200: 8 GiB of run
        // gradients, refused before anything is allocated.
        var big = KGTrainingParameters(); big.dimension = 100; big.batchSize = 4096; big.negatives = 4096; big.negativeSharing = 2
        var wide = TripleStore()
        for i in 0..<5000 { try wide.add(head: "e\(i)", relation: "r", tail: "e\(i + 1)") }
        #expect(throws: ChorusError.self) { try KGTrainer.fit(wide, parameters: big) }
    }

    /// Step decay: the rate drops by the factor after each listed epoch; a factor of 1 changes no
    /// bit, and a decay after the last epoch changes nothing either.
    @Test func learningRateSchedule() throws {
        var p = KGTrainingParameters.defaults(for: .rotatE)
        p.learningRate = 0.01; p.learningRateDecayEpochs = [2, 4]; p.learningRateDecayFactor = 0.5
        #expect((0..<6).map { p.learningRate(epoch: $0) } == [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025])
        let (store, _, _) = try clusterGraph()
        p.dimension = 8; p.epochs = 3; p.batchSize = 16; p.negatives = 4; p.threads = 2
        func vectors(_ change: (inout KGTrainingParameters) -> Void) throws -> [Float] {
            var q = p; change(&q)
            return try KGTrainer.fit(store, parameters: q).entities.toArray()
        }
        let constant = try vectors { $0.learningRateDecayEpochs = [] }
        #expect(try vectors { $0.learningRateDecayFactor = 1 } == constant)
        #expect(try vectors { $0.learningRateDecayEpochs = [3] } == constant)
        #expect(try vectors { $0.learningRateDecayEpochs = [2] } != constant)
    }

    /// A decay asked for after epoch k is the fixed step at k, bit for bit; `.finish` after epoch k is
    /// a budget of k epochs.
    @Test func afterEpochDecaysAndFinishesAsTheFixedSchedule() throws {
        let (store, _, _) = try clusterGraph()
        var p = KGTrainingParameters.defaults(for: .rotatE)
        p.dimension = 8; p.epochs = 4; p.batchSize = 16; p.negatives = 4; p.threads = 2; p.learningRate = 0.01
        var fixed = p; fixed.learningRateDecayEpochs = [2]
        let decayed = try KGTrainer.fit(store, parameters: p, afterEpoch: { r, _ in r.epoch == 2 ? .decayLearningRate : .continue })
        #expect(decayed.entities.toArray() == (try KGTrainer.fit(store, parameters: fixed)).entities.toArray())
        var epochs = 0
        let finished = try KGTrainer.fit(store, parameters: p, afterEpoch: { r, _ in epochs = r.epoch; return r.epoch == 3 ? .finish : .continue })
        var short = p; short.epochs = 3
        #expect(epochs == 3)
        #expect(finished.entities.toArray() == (try KGTrainer.fit(store, parameters: short)).entities.toArray())
    }

    /// The plateau rule on a hand-made validation curve: a gain under delta is no gain; after
    /// `patience` such checks the rate decays, and after the last allowed decay training ends.
    @Test func plateauScheduleFollowsTheValidationCurve() throws {
        var s = try PlateauSchedule(patience: 2, minDelta: 0.01, decays: 1)
        let curve: [Double] = [0.20, 0.25, 0.255, 0.259, 0.30, 0.32, 0.315, .nan]
        let decisions = curve.map { s.observe(mrr: $0) }
        #expect(decisions == [.continue, .continue, .continue, .decayLearningRate, .continue, .continue, .continue, .finish])
        #expect(s.best == 0.32 && s.decayed == 1)
        var never = try PlateauSchedule(patience: 1, minDelta: 0, decays: 0)
        #expect(never.observe(mrr: .nan) == .finish)   // a NaN first check is no progress either
        #expect(throws: ChorusError.self) { try PlateauSchedule(patience: 0, minDelta: 0, decays: 1) }
        #expect(throws: ChorusError.self) { try PlateauSchedule(patience: 1, minDelta: .nan, decays: 1) }
        #expect(throws: ChorusError.self) { try PlateauSchedule(patience: 1, minDelta: -1, decays: 1) }
        #expect(throws: ChorusError.self) { try PlateauSchedule(patience: 1, minDelta: 0, decays: -1) }
    }

    @Test(arguments: KGModelKind.allCases)
    func saveLoadRoundTripAndCorruption(_ kind: KGModelKind) throws {
        let (store, _, _) = try clusterGraph()
        var p = KGTrainingParameters.defaults(for: kind)
        p.dimension = 6; p.epochs = 1; p.threads = 1
        let m = try KGTrainer.fit(store, parameters: p)
        let bytes = m.encoded()
        let back = try KnowledgeGraphModel.decode(bytes)
        #expect(back.kind == kind && back.dimension == 6 && back.gamma == m.gamma && back.embeddingRange == m.embeddingRange)
        #expect(back.entities.toArray() == m.entities.toArray() && back.relations.toArray() == m.relations.toArray())
        #expect(try back.score(head: 1, relation: 0, tail: 2) == m.score(head: 1, relation: 0, tail: 2))
        #expect(try back.entityVector(3) == m.entityVector(3))

        var badMagic = bytes; badMagic[0] ^= 0xFF
        var badKind = bytes; badKind[8] = 9
        var badDim = bytes; badDim[10] = 0; badDim[11] = 0   // dimension 0 (low bytes at offset 10)
        var nan = bytes; let last = nan.count - 4
        nan.replaceSubrange(last..<nan.count, with: [0x00, 0x00, 0xC0, 0x7F])   // a NaN in the last relation value
        for (name, corrupt) in [("magic", badMagic), ("kind", badKind), ("dimension", badDim), ("truncated", Array(bytes.dropLast(3))),
                                ("trailing", bytes + [0]), ("nan", nan), ("empty", [])] {
            do {
                _ = try KnowledgeGraphModel.decode(corrupt)
                Issue.record("\(kind): \(name) corruption was accepted")
            } catch {
                #expect(error.message.hasPrefix("knowledge-graph model"), "\(name): \(error.message)")
            }
        }
    }

    @Test func accessorsCheckIds() throws {
        let (store, _, _) = try clusterGraph()
        var p = KGTrainingParameters.defaults(for: .complEx); p.dimension = 5; p.epochs = 0
        let m = try KGTrainer.fit(store, parameters: p)
        #expect(try m.entityVector(0).count == 10 && m.relationVector(0).count == 10)
        #expect(throws: ChorusError.self) { try m.entityVector(Int32(store.entityCount)) }
        #expect(throws: ChorusError.self) { try m.score(head: -1, relation: 0, tail: 0) }
        var buf = [Float](repeating: 0, count: store.entityCount)
        try buf.withUnsafeMutableBufferPointer { b in try m.scoreAll(anchor: 0, relation: 1, predictTail: true, into: b) }
        #expect(abs(buf[2] - (try m.score(head: 0, relation: 1, tail: 2))) < 1e-5)
    }
}

@Suite struct OptimizerTests {
    /// Both updates against PyTorch's formulas written out in Double, over three steps with a
    /// gradient that changes sign (lengths 11: the SIMD body and the scalar tail).
    @Test func adamAndAdagradFollowPyTorch() {
        let n = 11
        var x = (0..<n).map { Float($0) * 0.1 - 0.5 }, m = [Float](repeating: 0, count: n), v = m, s = m
        var xa = x
        var rx = x.map(Double.init), rm = [Double](repeating: 0, count: n), rv = rm
        var ra = rx, rs = rm
        let lr = 0.01
        for t in 1...3 {
            let g = (0..<n).map { Float(($0 % 3) - 1) * Float(t) * 0.3 + 0.05 }
            let bc1 = 1 - pow(0.9, Double(t)), bc2 = 1 - pow(0.999, Double(t))
            x.withUnsafeMutableBufferPointer { xp in m.withUnsafeMutableBufferPointer { mp in v.withUnsafeMutableBufferPointer { vp in
                TrainingState.adam(xp.baseAddress!, mp.baseAddress!, vp.baseAddress!, g, n, stepSize: Float(lr / bc1), rootBc2: Float(bc2.squareRoot()))
            }}}
            xa.withUnsafeMutableBufferPointer { xp in s.withUnsafeMutableBufferPointer { sp in
                TrainingState.adagrad(xp.baseAddress!, sp.baseAddress!, g, n, lr: Float(lr))
            }}
            for i in 0..<n {
                let gi = Double(g[i])
                rm[i] = 0.9 * rm[i] + 0.1 * gi
                rv[i] = 0.999 * rv[i] + 0.001 * gi * gi
                rx[i] -= lr / bc1 * rm[i] / (rv[i].squareRoot() / bc2.squareRoot() + 1e-8)
                rs[i] += gi * gi
                ra[i] -= lr * gi / (rs[i].squareRoot() + 1e-10)
            }
        }
        for i in 0..<n {
            #expect(abs(Double(x[i]) - rx[i]) < 1e-6, "adam \(i): \(x[i]) vs \(rx[i])")
            #expect(abs(Double(xa[i]) - ra[i]) < 1e-6, "adagrad \(i): \(xa[i]) vs \(ra[i])")
        }
    }

    @Test func adagradTrainsTheSmallGraph() throws {
        let (store, test, known) = try clusterGraph()
        var p = KGTrainingParameters.defaults(for: .distMult)
        p.dimension = 16; p.epochs = 60; p.batchSize = 32; p.negatives = 8; p.threads = 2
        p.optimizer = .adagrad; p.learningRate = 0.1
        let model = try KGTrainer.fit(store, parameters: p)
        let r = try LinkPrediction.evaluate(model, triples: test, known: known, threads: 2)
        #expect(r.both.mrr > 0.6, "adagrad DistMult MRR \(r.both.mrr)")
    }
}
