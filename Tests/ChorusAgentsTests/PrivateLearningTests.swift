import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import ChorusAgents
@testable import ChorusCore

/// Private learning from feedback: the accountant's compact form and calibration, the release's
/// algebra (without noise it learns what the plain learner learns; clipping bounds a user; the
/// noise has the promised scale), and the engine: the overlay's shared statistics stop learning
/// from private feedback while the user's own overlay does not, and all of it survives a save.
@Suite struct PrivateLearningTests {
    @Test func theCompactLedgerComposesAndCalibrates() throws {
        // The compact sum gives what the per-round list gave.
        var l = PrivacyLedger(delta: 1e-5)
        for s in [1.0, 2, 3] { l.record(noiseMultiplier: s) }
        #expect(abs(l.rdp(order: 3) - 3 * (0.5 + 0.125 + 1.0 / 18)) < 1e-12)
        #expect(l.rounds == 3 && l.unprotectedRounds == 0)
        // Calibration: the σ found spends the ε asked for over the rounds, and a little less noise spends more.
        for (eps, rounds) in [(1.0, 1), (4.0, 80), (8.0, 1000)] {
            let sigma = try #require(PrivacyLedger.noiseMultiplier(epsilon: eps, rounds: rounds, delta: 1e-5))
            let spent = PrivacyLedger(noiseMultipliers: [Double](repeating: sigma, count: rounds)).epsilon()
            #expect(spent <= eps * (1 + 1e-9) && spent > eps * 0.999)
            #expect(PrivacyLedger(noiseMultipliers: [Double](repeating: sigma * 0.99, count: rounds)).epsilon() > eps)
        }
        #expect(PrivacyLedger.noiseMultiplier(epsilon: 0, rounds: 1, delta: 1e-5) == nil)
        #expect(PrivacyLedger.noiseMultiplier(epsilon: 1, rounds: 0, delta: 1e-5) == nil)
        // Version 2 round trip; a lying one is refused.
        var w = ByteWriter()
        l.encode(into: &w)
        var r = ByteReader(w.bytes, context: "test")
        #expect(try PrivacyLedger.decode(&r) == l)
        func v2(rounds: UInt64, unprotected: UInt64, sum: Double) -> [UInt8] {
            var w = ByteWriter()
            w.write(UInt32(2)); w.write(1e-5); w.write(rounds); w.write(unprotected); w.write(sum)
            return w.bytes
        }
        for bad in [v2(rounds: 1, unprotected: 2, sum: 0), v2(rounds: 1, unprotected: 0, sum: -1), v2(rounds: 1, unprotected: 0, sum: .nan),
                    v2(rounds: 1 << 40, unprotected: 0, sum: 1), v2(rounds: 2, unprotected: 2, sum: 1)] {
            var r = ByteReader(bad, context: "test")
            #expect(throws: ChorusError.self) { try PrivacyLedger.decode(&r) }
        }
    }

    @Test func theInverseOfAPositiveDefiniteMatrix() throws {
        let d = 5
        var rng = SeededRandom(seed: 4)
        var a = [Double](repeating: 0, count: d * d)
        for _ in 0..<12 {
            let z = (0..<d).map { _ in Double(rng.nextGaussian()) }
            for i in 0..<d { for j in 0..<d { a[i * d + j] += z[i] * z[j] } }
        }
        let inv = try #require(SegmentModel.invertPositiveDefinite(a, d))
        for i in 0..<d { for j in 0..<d {
            let p = (0..<d).reduce(0.0) { $0 + a[i * d + $1] * inv[$1 * d + j] }
            #expect(abs(p - (i == j ? 1 : 0)) < 1e-9)
        } }
        var notPD = a
        notPD[0] = -1
        #expect(SegmentModel.invertPositiveDefinite(notPD, d) == nil)
    }

    /// Two engines serve and hear the same slates: one learns plainly, the other privately with a
    /// release per slate, a clip no contribution reaches and no noise. They learn the same bandit.
    /// (The feedback is skips: positive events would reach the plain engine's shared statistics and
    /// not the private one's, and the two would serve different candidates.)
    @Test func withoutNoiseOrClippingPrivateLearningIsPlainLearning() throws {
        let plain = try fittedEngine(), priv = try fittedEngine()
        try plain.setLearning(LearningOptions(mode: .linUCB))
        var o = LearningOptions(mode: .linUCB)
        o.clipNorm = 1e9; o.releaseSlates = 1
        try priv.setLearning(o)
        var options = RecommendOptions()
        for round in 0..<40 {
            let user = Int64(1 + round % 10)
            options.requestIds = [Int64(round)]
            let a = try plain.recommend(users: [user], k: 4, options: options)[0]
            let b = try priv.recommend(users: [user], k: 4, options: options)[0]
            #expect(a.items == b.items, "round \(round)")
            for e in [plain, priv] {
                try e.feedback(users: [user], items: [a.items[round % 4]], events: [FeedbackEvent.skip.rawValue], requestIds: [Int64(round)])
            }
        }
        plain.closeSlates(); priv.closeSlates()
        let p = plain.learner.state.withLock { $0.segments }, q = priv.learner.state.withLock { $0.segments }
        #expect(p.keys.sorted() == q.keys.sorted() && !p.isEmpty)
        for (k, m) in p {
            let n = try #require(q[k])
            for (x, y) in zip(m.mean, n.mean) { #expect(abs(x - y) < 1e-6 * max(1, abs(x))) }
            #expect(m.updates == n.updates)
        }
        for (x, y) in zip(plain.learner.stats.credits, priv.learner.stats.credits) { #expect(abs(x - y) < 1e-9) }
        // Clipping without noise: every release is a round, and ε is infinite.
        let spent = priv.learningPrivacySpent
        #expect(spent.releases == 40 && spent.epsilon == .infinity && spent.plainSlates == 0)
        #expect(plain.learningPrivacySpent.epsilon == .infinity && plain.learningPrivacySpent.plainSlates == 40)
    }

    /// Synthetic batches released directly: a user's whole contribution is bounded by C, and the
    /// noise added to a release has standard deviation σC.
    @Test func aReleaseClipsEachUserAndAddsNoiseOfScaleSigmaC() {
        let d = 2 * 2 + 4
        var s = CoordinatorLearner.State()
        s.agents = ["als", "popularity"]; s.credits = [0, 0]
        var o = LearningOptions(mode: .linUCB)
        o.clipNorm = 0.5
        s.options = o.resolved
        let size = PrivateLearning.banditBlock(d)
        // User 1 floods segment 0 and 3 with huge statistics; user 2 adds a little to segment 0.
        s.batch.bandit[1] = [0: [Double](repeating: 1e6, count: size), 3: [Double](repeating: -1e6, count: size)]
        s.batch.bandit[2] = [0: [Double](repeating: 1e-3, count: size)]
        s.batch.credits[1] = [1e6, 1e6]
        s.batch.slates = 3
        let before = SegmentModel(dimension: d, prior: Double(s.options.priorStrength))
        PrivateLearning.release(&s)
        // What changed in b is the clipped sum: user 1's part at most C over all its blocks and credits.
        var moved = 0.0
        for k in [0, 3] { for i in 0..<d { let x = s.segments[k]!.b[i] - before.b[i]; moved += x * x } }
        let creditNorm = s.credits.reduce(0) { $0 + $1 * $1 }
        #expect((moved + creditNorm).squareRoot() <= 0.5 + Double(size) * 1e-3 + 1e-9)
        #expect(s.ledger.rounds == 1 && s.ledger.epsilon() == .infinity && s.batch.slates == 0)

        // Noise: releases of empty batches move b by N(0, (σC)²) per coordinate (b₀ also by the
        // ridge's pull toward θ₀, left out), and the ridge grows as 20·sqrt(d·Σσ²C²).
        s.options.noiseMultiplier = 3
        var deltas: [Double] = []
        for _ in 0..<300 {
            let b0 = s.segments[0]!.b
            s.batch.slates = 1
            PrivateLearning.release(&s)
            deltas += zip(s.segments[0]!.b, b0).dropFirst().map { $0 - $1 }
        }
        #expect(abs(s.segments[0]!.noiseShift - 20 * (Double(d) * 300 * 1.5 * 1.5).squareRoot()) < 1e-6)
        let mean = deltas.reduce(0, +) / Double(deltas.count)
        let std = (deltas.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(deltas.count - 1)).squareRoot()
        #expect(abs(std - 1.5) < 0.1)
        #expect(abs(mean) < 0.1)
        #expect(s.ledger.rounds == 301)
        // A private release keeps A positive definite however much noise it took.
        for m in s.segments.values { #expect(LearnedRanking.cholesky(m.inverse, d) != nil) }
    }

    /// Feedback under private learning reaches the user's own overlay (the consumed item leaves
    /// their list) but not what every user reads: a new item many users bought is not served to
    /// others, and popularity does not move. After a save and load the same holds.
    @Test func privateFeedbackStaysWithItsUser() throws {
        let plain = try fittedEngine(), priv = try fittedEngine()
        var o = LearningOptions(mode: .linUCB)
        o.clipNorm = 1; o.noiseMultiplier = 1; o.releaseSlates = 1
        try priv.setLearning(o)
        #expect(priv.learningPrivacySpent.epsilon == 0 && priv.learningPrivacySpent.releases == 0)
        // One logged slate, answered and closed: one release, ε of one Gaussian round at σ = 1.
        var logged = RecommendOptions()
        logged.requestIds = [5]
        let slate = try priv.recommend(users: [2], k: 3, options: logged)[0].items
        try priv.feedback(users: [2], items: [slate[0]], events: [FeedbackEvent.skip.rawValue], requestIds: [5])
        priv.closeSlates()
        let oneRound = PrivacyLedger(noiseMultipliers: [1]).epsilon()
        #expect(priv.learningPrivacySpent.releases == 1 && abs(priv.learningPrivacySpent.epsilon - oneRound) < 1e-12)
        var popularity = RecommendOptions()
        popularity.agent = "popularity"
        let coldBefore = try priv.recommend(users: [9_999], k: 5, options: popularity)[0].items
        let mine = try priv.recommend(users: [1], k: 3)[0].items[0]
        for e in [plain, priv] {
            // Thirty users buy a brand-new item 777; user 1 buys its top item.
            try e.feedback(users: (1...30).map(Int64.init), items: [Int64](repeating: 777, count: 30),
                           events: [Int32](repeating: FeedbackEvent.purchase.rawValue, count: 30))
            try e.feedback(users: [1], items: [mine], events: [FeedbackEvent.purchase.rawValue])
        }
        #expect(try plain.recommend(users: [9_999], k: 5, options: popularity)[0].items.contains(777))
        #expect(try priv.recommend(users: [9_999], k: 5, options: popularity)[0].items == coldBefore)
        #expect(try !priv.recommend(users: [1], k: 5)[0].items.contains(mine))
        let path = "/tmp/chorus-private-\(getpid()).chorus"
        defer { unlink(path) }
        try priv.save(path: path)
        let loaded = try Engine.load(path: path)
        #expect(loaded.learner.options == priv.learner.options)
        #expect(loaded.learner.privateRows == priv.learner.privateRows && loaded.learner.privateRows.count == 1)
        #expect(loaded.learningPrivacySpent == priv.learningPrivacySpent)
        #expect(try loaded.recommend(users: [9_999], k: 5, options: popularity)[0].items == coldBefore)
        #expect(try !loaded.recommend(users: [1], k: 5)[0].items.contains(mine))
        // Learning made public again: later feedback is shared; the private rows stay private.
        o.clipNorm = 0; o.noiseMultiplier = 0
        try loaded.setLearning(o)
        #expect(loaded.learner.privateRows.count == 2)
        try loaded.feedback(users: (31...40).map(Int64.init), items: [Int64](repeating: 888, count: 10),
                            events: [Int32](repeating: FeedbackEvent.purchase.rawValue, count: 10))
        let after = try loaded.recommend(users: [9_999], k: 5, options: popularity)[0].items
        #expect(after.contains(888) && !after.contains(777))
    }

    @Test func badPrivacyOptionsAreRefused() throws {
        let e = try fittedEngine()
        func refused(_ change: (inout LearningOptions) -> Void) {
            var o = LearningOptions(mode: .linUCB)
            change(&o)
            #expect(throws: ChorusError.self) { try e.setLearning(o) }
        }
        refused { $0.noiseMultiplier = 1 }                       // noise needs a clip
        refused { $0.clipNorm = .nan }
        refused { $0.clipNorm = -1 }
        refused { $0.noiseMultiplier = .infinity; $0.clipNorm = 1 }
        refused { $0.delta = 1; $0.clipNorm = 1 }
        refused { $0.releaseSlates = -1 }
        refused { $0.releaseSlates = LearningOptions.maxReleaseSlates + 1 }
        #expect(e.learner.privateRows.isEmpty)
    }

    private func fittedEngine() throws -> Engine {
        let e = try clusteredEngine()
        try e.fit(fastParameters())
        return e
    }
}
