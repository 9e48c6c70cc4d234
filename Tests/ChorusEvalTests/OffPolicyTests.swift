#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
import ChorusCore
@testable import ChorusEval

/// Off-policy estimators against hand-computed values (tolerance 1e-12: every expected value is a
/// short expression in double precision) and against analytic truths on seeded synthetic logs.
@Suite struct OffPolicyTests {
    let tol = 1e-12

    // MARK: - Hand-computed logs

    /// Three single actions, items 1 and 2, contexts 7 and 8:
    ///   A: x 7, item 1, μ 0.5,  r 1      π(·|7) = {1: 0.8, 2: 0.2}
    ///   B: x 7, item 2, μ 0.5,  r 0      π(·|8) = {1: 0.5, 2: 0.5}
    ///   C: x 8, item 1, μ 0.25, r 1
    /// Weights: A 0.8/0.5 = 1.6, B 0.2/0.5 = 0.4, C 0.5/0.25 = 2.
    static let singleLog = [
        LoggedSlate(context: 7, action: 1, propensity: 0.5, reward: 1),
        LoggedSlate(context: 7, action: 2, propensity: 0.5, reward: 0),
        LoggedSlate(context: 8, action: 1, propensity: 0.25, reward: 1),
    ]
    static func singlePi(_ x: Int64, _ a: Int64) -> Double {
        x == 7 ? (a == 1 ? 0.8 : 0.2) : 0.5
    }
    static var singleTarget: TargetPolicy { TargetPolicy(
        probability: { r, _, a in singlePi(r.context, a) },
        candidates: { r, _ in [(Int64(1), singlePi(r.context, 1)), (Int64(2), singlePi(r.context, 2))] }) }
    static func singleQ(_ x: Int64, _ a: Int64) -> Double {
        x == 7 ? (a == 1 ? 0.6 : 0.1) : (a == 1 ? 0.9 : 0.3)
    }

    @Test func singleActionIPS() throws {
        // Terms 1.6·1, 0.4·0, 2·1 = 1.6, 0, 2: V = 3.6 / 3 = 1.2. Deviations 0.4, −1.2, 0.8, squares
        // sum 2.24, variance 2.24 / 2 = 1.12, SE = √(1.12 / 3). ESS = 4² / (1.6² + 0.4² + 2²) = 16 / 6.72.
        let e = try OffPolicy.ips(Self.singleLog, target: Self.singleTarget)
        #expect(abs(e.value - 1.2) < tol)
        #expect(abs(e.standardError - (1.12 / 3).squareRoot()) < tol)
        #expect(abs(e.effectiveSampleSize - 16 / 6.72) < tol)
        #expect(e.records == 3 && e.clippedWeights == 0)
        // Clip 1.5: weights 1.5, 0.4, 1.5, terms 1.5, 0, 1.5, V = 1; deviations 0.5, −1, 0.5,
        // variance 1.5 / 2, SE = √(0.75 / 3) = 0.5; ESS = 3.4² / (2.25 + 0.16 + 2.25).
        let c = try OffPolicy.ips(Self.singleLog, target: Self.singleTarget, weightClip: 1.5)
        #expect(abs(c.value - 1.0) < tol)
        #expect(abs(c.standardError - 0.5) < tol)
        #expect(abs(c.effectiveSampleSize - 3.4 * 3.4 / 4.66) < tol)
        #expect(c.clippedWeights == 2)
    }

    @Test func singleActionSNIPS() throws {
        // Σ w r = 3.6, Σ w = 4: V = 0.9. Delta terms φ = w (r − 0.9) / (4/3):
        // A 1.6·0.1·0.75 = 0.12, B 0.4·(−0.9)·0.75 = −0.27, C 2·0.1·0.75 = 0.15 (sum 0);
        // variance (0.0144 + 0.0729 + 0.0225) / 2 = 0.0549, SE = √(0.0549 / 3).
        let e = try OffPolicy.snips(Self.singleLog, target: Self.singleTarget)
        #expect(abs(e.value - 0.9) < tol)
        #expect(abs(e.standardError - (0.0549 / 3).squareRoot()) < tol)
        #expect(abs(e.effectiveSampleSize - 16 / 6.72) < tol)
    }

    @Test func singleActionDR() throws {
        // q̂: (7,1) 0.6, (7,2) 0.1, (8,1) 0.9, (8,2) 0.3. Direct terms: x 7: 0.8·0.6 + 0.2·0.1 = 0.5;
        // x 8: 0.5·0.9 + 0.5·0.3 = 0.6. Terms: A 0.5 + 1.6·(1 − 0.6) = 1.14, B 0.5 + 0.4·(0 − 0.1) = 0.46,
        // C 0.6 + 2·(1 − 0.9) = 0.8. V = 2.4 / 3 = 0.8; deviations 0.34, −0.34, 0: variance 0.1156,
        // SE = √(0.1156 / 3).
        let e = try OffPolicy.doublyRobust(Self.singleLog, target: Self.singleTarget, rewardModel: Self.singleQ)
        #expect(abs(e.value - 0.8) < tol)
        #expect(abs(e.standardError - (0.1156 / 3).squareRoot()) < tol)
    }

    @Test func singleActionOnPolicy() throws {
        // Rewards 1, 0, 1: V = 2/3; deviations 1/3, −2/3, 1/3: variance (6/9) / 2 = 1/3, SE = √(1/9) = 1/3.
        let e = try OffPolicy.onPolicy(Self.singleLog)
        #expect(abs(e.value - 2.0 / 3) < tol)
        #expect(abs(e.standardError - 1.0 / 3) < tol)
        #expect(e.effectiveSampleSize == 3)
    }

    /// Two slates of 2 in context 1:
    ///   R1: [10, 20], μ [0.5, 0.25], r [1, 0]
    ///   R2: [20, 10], μ [0.5, 0.5],  r [0, 1]
    /// Target marginals (it shows [10, 20] w.p. 0.75 and [20, 10] w.p. 0.25):
    ///   slot 0: {10: 0.75, 20: 0.25}; slot 1: {10: 0.25, 20: 0.75}.
    /// Weights: R1 [0.75/0.5, 0.75/0.25] = [1.5, 3]; R2 [0.25/0.5, 0.25/0.5] = [0.5, 0.5].
    static let slateLog = [
        LoggedSlate(context: 1, items: [10, 20], propensities: [0.5, 0.25], rewards: [1, 0]),
        LoggedSlate(context: 1, items: [20, 10], propensities: [0.5, 0.5], rewards: [0, 1]),
    ]
    static func slatePi(_ s: Int, _ a: Int64) -> Double { (s == 0) == (a == 10) ? 0.75 : 0.25 }
    static var slateTarget: TargetPolicy { TargetPolicy(
        probability: { _, s, a in slatePi(s, a) },
        candidates: { _, s in [(Int64(10), slatePi(s, 10)), (Int64(20), slatePi(s, 20))] }) }

    @Test func slateEstimatorsByHand() throws {
        // IPS terms: R1 1.5·1 + 3·0 = 1.5, R2 0.5·0 + 0.5·1 = 0.5: V = 1; variance 0.5, SE = √(0.5/2) = 0.5.
        // ESS per slot: slot 0 2² / (2.25 + 0.25) = 1.6, slot 1 3.5² / (9 + 0.25) = 49/37: min 49/37.
        let ips = try OffPolicy.ips(Self.slateLog, target: Self.slateTarget)
        #expect(abs(ips.value - 1.0) < tol)
        #expect(abs(ips.standardError - 0.5) < tol)
        #expect(abs(ips.effectiveSampleSize - 49.0 / 37) < tol)

        // SNIPS: slot 0 1.5 / 2 = 0.75, slot 1 0.5 / 3.5 = 1/7: V = 0.75 + 1/7 = 25/28.
        // Mean weights 1 and 1.75; φ_R1 = 1.5·0.25/1 + 3·(−1/7)/1.75 = 3/8 − 12/49 = 51/392, φ_R2 = −51/392;
        // variance 2·(51/392)², SE = √(variance / 2) = 51/392.
        let snips = try OffPolicy.snips(Self.slateLog, target: Self.slateTarget)
        #expect(abs(snips.value - 25.0 / 28) < tol)
        #expect(abs(snips.standardError - 51.0 / 392) < tol)

        // DR with q̂(1, 10) = 0.8, q̂(1, 20) = 0.2. Direct: slot 0 0.75·0.8 + 0.25·0.2 = 0.65,
        // slot 1 0.25·0.8 + 0.75·0.2 = 0.35: 1 per record. R1: 1 + 1.5·(1 − 0.8) + 3·(0 − 0.2) = 0.7;
        // R2: 1 + 0.5·(0 − 0.2) + 0.5·(1 − 0.8) = 1. V = 0.85; deviations ±0.15, variance 0.045,
        // SE = √(0.045 / 2) = 0.15.
        let dr = try OffPolicy.doublyRobust(Self.slateLog, target: Self.slateTarget,
                                            rewardModel: { _, a in a == 10 ? 0.8 : 0.2 })
        #expect(abs(dr.value - 0.85) < tol)
        #expect(abs(dr.standardError - 0.15) < tol)

        // On-policy: both slates total 1: V = 1, SE 0.
        let on = try OffPolicy.onPolicy(Self.slateLog)
        #expect(on.value == 1 && on.standardError == 0)
    }

    @Test func oneRecordHasAnInfiniteStandardError() throws {
        let e = try OffPolicy.ips([Self.singleLog[0]], target: Self.singleTarget)
        #expect(abs(e.value - 1.6) < tol)
        #expect(e.standardError == Double.infinity)
    }

    // MARK: - Bad input

    static func invalid(_ body: () throws -> OffPolicyEstimate, mentions: String) {
        do {
            _ = try body()
            Issue.record("expected an error mentioning \(mentions)")
        } catch let ChorusError.invalidArgument(m) {
            #expect(m.contains(mentions), "message: \(m)")
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func badLogsAreRefusedWithTheField() {
        let t = Self.singleTarget
        let ok = Self.singleLog[0]
        func rec(_ p: Double = 0.5, _ r: Float = 1) -> LoggedSlate {
            LoggedSlate(context: 7, action: 1, propensity: p, reward: r)
        }
        Self.invalid({ try OffPolicy.ips([], target: t) }, mentions: "log: empty")
        Self.invalid({ try OffPolicy.onPolicy([]) }, mentions: "log: empty")
        Self.invalid({ try OffPolicy.snips([], target: t) }, mentions: "log: empty")
        Self.invalid({ try OffPolicy.doublyRobust([], target: t, rewardModel: Self.singleQ) }, mentions: "log: empty")
        for p in [0, -0.1, 1.0000001, .nan, .infinity, -.infinity, .leastNonzeroMagnitude * -1] {
            Self.invalid({ try OffPolicy.ips([ok, rec(p)], target: t) }, mentions: "log[1].propensities[0]")
        }
        for r in [Float.nan, .infinity, -.infinity] {
            Self.invalid({ try OffPolicy.onPolicy([ok, rec(0.5, r)]) }, mentions: "log[1].rewards[0]")
        }
        Self.invalid({ try OffPolicy.ips([LoggedSlate(context: 0, items: [], propensities: [], rewards: [])], target: t) },
                     mentions: "log[0].items: empty")
        Self.invalid({ try OffPolicy.ips([LoggedSlate(context: 0, items: [1, 2], propensities: [0.5], rewards: [1, 1])], target: t) },
                     mentions: "log[0].propensities")
        Self.invalid({ try OffPolicy.ips([LoggedSlate(context: 0, items: [1, 2], propensities: [0.5, 0.5], rewards: [1])], target: t) },
                     mentions: "log[0].rewards")
        Self.invalid({ try OffPolicy.ips([ok, Self.slateLog[0]], target: t) }, mentions: "log[1].items: slate of 2")
    }

    @Test func badTargetsAndOptionsAreRefused() {
        let log = Self.singleLog
        for p in [-0.5, 1.5, .nan, .infinity] {
            let bad = TargetPolicy(probability: { _, _, _ in p })
            Self.invalid({ try OffPolicy.ips(log, target: bad) }, mentions: "target.probability")
            Self.invalid({ try OffPolicy.snips(log, target: bad) }, mentions: "target.probability")
        }
        for c in [0, -1, .nan, .infinity] {
            Self.invalid({ try OffPolicy.ips(log, target: Self.singleTarget, weightClip: c) }, mentions: "weightClip")
        }
        // No support: π never picks a logged item.
        let elsewhere = TargetPolicy(probability: { _, _, _ in 0 })
        Self.invalid({ try OffPolicy.snips(log, target: elsewhere) }, mentions: "SNIPS is undefined")
        // IPS with no support is 0, as it should be (no reward can be credited).
        #expect((try? OffPolicy.ips(log, target: elsewhere).value) == 0)
        // DR needs the candidates, and they must form a distribution; q̂ must be finite.
        let noCandidates = TargetPolicy(probability: Self.singleTarget.probability)
        Self.invalid({ try OffPolicy.doublyRobust(log, target: noCandidates, rewardModel: Self.singleQ) },
                     mentions: "target.candidates: nil")
        let half = TargetPolicy(probability: Self.singleTarget.probability, candidates: { _, _ in [(Int64(1), 0.5)] })
        Self.invalid({ try OffPolicy.doublyRobust(log, target: half, rewardModel: Self.singleQ) }, mentions: "sum to 0.5")
        let negative = TargetPolicy(probability: Self.singleTarget.probability,
                                    candidates: { _, _ in [(Int64(1), 1.5), (Int64(2), -0.5)] })
        Self.invalid({ try OffPolicy.doublyRobust(log, target: negative, rewardModel: Self.singleQ) },
                     mentions: "target.candidates: probability")
        Self.invalid({ try OffPolicy.doublyRobust(log, target: Self.singleTarget, rewardModel: { _, _ in .nan }) },
                     mentions: "rewardModel")
        // Weights that overflow: an error, not inf.
        let tiny = [LoggedSlate(context: 7, action: 1, propensity: .leastNonzeroMagnitude, reward: .greatestFiniteMagnitude),
                    LoggedSlate(context: 7, action: 1, propensity: .leastNonzeroMagnitude, reward: .greatestFiniteMagnitude)]
        Self.invalid({ try OffPolicy.ips(tiny, target: Self.singleTarget) }, mentions: "not finite")
        Self.invalid({ try OffPolicy.doublyRobust(tiny, target: Self.singleTarget, rewardModel: Self.singleQ) },
                     mentions: "not finite")
        // ... which a clip cures.
        #expect((try? OffPolicy.ips(tiny, target: Self.singleTarget, weightClip: 10)) != nil)
        Self.invalid({ try OffPolicy.snips(tiny, target: Self.singleTarget) }, mentions: "not finite")
        #expect((try? OffPolicy.snips(tiny, target: Self.singleTarget, weightClip: 10)) != nil)
    }

    // MARK: - Synthetic problems with an analytic truth

    static func uniform(_ rng: inout SeededRandom) -> Double { Double(rng.next() >> 11) * 0x1p-53 }

    static func categorical(_ p: [Double], _ rng: inout SeededRandom) -> Int {
        var u = uniform(&rng) * p.reduce(0, +)
        for (i, v) in p.enumerated() {
            u -= v
            if u < 0 { return i }
        }
        return p.count - 1
    }

    static func softmax(_ scores: [Double], temperature: Double) -> [Double] {
        let m = scores.max() ?? 0
        let e = scores.map { exp(($0 - m) / temperature) }
        let z = e.reduce(0, +)
        return e.map { $0 / z }
    }

    /// Context groups, their probabilities, and Bernoulli reward probabilities per (group, action).
    static let groupProbability = [0.5, 0.3, 0.2]
    static let rewardProbability: [[Double]] = [
        [0.10, 0.20, 0.30, 0.50, 0.70],
        [0.60, 0.40, 0.30, 0.20, 0.05],
        [0.25, 0.75, 0.15, 0.35, 0.45],
    ]

    @Test func banditEstimatesLandOnTheAnalyticValue() throws {
        let p = Self.rewardProbability
        // μ leans to the worse actions, π to the better ones: the log's own mean is far from V(π).
        let mu = p.map { Self.softmax($0.map { -$0 }, temperature: 0.25) }
        let pi = p.map { Self.softmax($0, temperature: 0.1) }
        var truth = 0.0, logging = 0.0
        for g in 0..<3 {
            for a in 0..<5 {
                truth += Self.groupProbability[g] * pi[g][a] * p[g][a]
                logging += Self.groupProbability[g] * mu[g][a] * p[g][a]
            }
        }
        var rng = SeededRandom(seed: 17)
        var log: [LoggedSlate] = []
        log.reserveCapacity(200_000)
        for _ in 0..<200_000 {
            let g = Self.categorical(Self.groupProbability, &rng)
            let a = Self.categorical(mu[g], &rng)
            let r: Float = Self.uniform(&rng) < p[g][a] ? 1 : 0
            log.append(LoggedSlate(context: Int64(100 + g), action: Int64(a), propensity: mu[g][a], reward: r))
        }
        func group(_ r: LoggedSlate) -> Int { Int(r.context - 100) }
        let target = TargetPolicy(
            probability: { r, _, a in pi[group(r)][Int(a)] },
            candidates: { r, _ in pi[group(r)].enumerated().map { (Int64($0.offset), $0.element) } })
        let trueModel: (Int64, Int64) -> Double = { x, a in p[Int(x - 100)][Int(a)] }

        let on = try OffPolicy.onPolicy(log)
        let ips = try OffPolicy.ips(log, target: target)
        let snips = try OffPolicy.snips(log, target: target)
        let dr = try OffPolicy.doublyRobust(log, target: target, rewardModel: trueModel)
        // A constant, wrong reward model: DR stays unbiased through its IPS-weighted residual.
        let drWrong = try OffPolicy.doublyRobust(log, target: target, rewardModel: { _, _ in 0.5 })

        // The log's mean estimates the logging policy's value, and is far from the target's.
        #expect(abs(on.value - logging) <= 4 * on.standardError)
        #expect(abs(on.value - truth) > 0.2)
        #expect(abs(on.value - truth) > 50 * on.standardError)
        for (name, e) in [("IPS", ips), ("SNIPS", snips), ("DR", dr), ("DR, constant q", drWrong)] {
            #expect(abs(e.value - truth) <= 4 * e.standardError,
                    "\(name): \(e.value) ± \(e.standardError), truth \(truth)")
            #expect(e.standardError > 0 && e.standardError < 0.02, "\(name) SE \(e.standardError)")
        }
        // The true reward model leaves only the residual (Bernoulli) noise: DR beats IPS clearly
        // (seed 17: 0.56x IPS's standard error; SNIPS's self-normalisation gets about as far here).
        #expect(dr.standardError < 0.75 * ips.standardError)
        #expect(ips.effectiveSampleSize < 0.5 * 200_000 && ips.effectiveSampleSize > 1_000)

        // π = μ: every weight is 1, IPS is the on-policy mean and the ESS is N.
        let same = TargetPolicy(probability: { r, _, a in mu[group(r)][Int(a)] })
        let selfIPS = try OffPolicy.ips(log, target: same)
        #expect(abs(selfIPS.value - on.value) < 1e-12)
        #expect(abs(selfIPS.effectiveSampleSize - 200_000) < 1e-6)

        // A clip at 1 keeps every weight ≤ 1: with rewards ≥ 0 it can only lower the estimate, and here
        // (π puts mass where μ does not) it lowers it well below the truth.
        let clipped = try OffPolicy.ips(log, target: target, weightClip: 1)
        #expect(clipped.clippedWeights > 0)
        #expect(clipped.value < ips.value)
        #expect(clipped.value < truth - 10 * clipped.standardError)
    }

    /// Per-slot marginals of a Plackett–Luce ranking (draw without replacement in proportion to
    /// `weights`) over its first `slots` positions, by enumerating every prefix.
    static func plackettLuceMarginals(_ weights: [Double], slots: Int) -> [[Double]] {
        var marginal = [[Double]](repeating: [Double](repeating: 0, count: weights.count), count: slots)
        func walk(_ depth: Int, _ used: [Bool], _ remaining: Double, _ probability: Double) {
            guard depth < slots else { return }
            for a in weights.indices where !used[a] {
                let p = probability * weights[a] / remaining
                marginal[depth][a] += p
                var next = used
                next[a] = true
                walk(depth + 1, next, remaining - weights[a], p)
            }
        }
        walk(0, [Bool](repeating: false, count: weights.count), weights.reduce(0, +), 1)
        return marginal
    }

    static func plackettLuceSample(_ weights: [Double], slots: Int, _ rng: inout SeededRandom) -> [Int] {
        var w = weights
        var out: [Int] = []
        for _ in 0..<slots {
            let a = categorical(w, &rng)
            out.append(a)
            w[a] = 0
        }
        return out
    }

    @Test func plackettLuceMarginalsAreDistributions() {
        let m = Self.plackettLuceMarginals([1, 2, 3, 4], slots: 3)
        for s in 0..<3 { #expect(abs(m[s].reduce(0, +) - 1) < 1e-12) }
        // Slot 0 is the weights normalised; slot 1 of item 0: Σ_b p_b · p_0 / (1 − p_b).
        #expect(abs(m[0][0] - 0.1) < 1e-12)
        let p = [0.1, 0.2, 0.3, 0.4]
        let expected = (1..<4).reduce(0.0) { $0 + p[$1] * p[0] / (1 - p[$1]) }
        #expect(abs(m[1][0] - expected) < 1e-12)
    }

    @Test func slateEstimatesLandOnTheAnalyticValue() throws {
        let items = 10, slots = 3, groups = 3
        let groupProbability = [0.4, 0.35, 0.25]
        var rng = SeededRandom(seed: 2024)
        // Position-independent Bernoulli rewards per (group, item).
        let p = (0..<groups).map { _ in (0..<items).map { _ in 0.05 + 0.9 * Self.uniform(&rng) } }
        // Logging: Plackett–Luce leaning to the worse items; target: leaning hard to the better ones.
        let muWeights = p.map { $0.map { exp(-2 * $0) } }
        let piWeights = p.map { $0.map { exp(5 * $0) } }
        let mu = muWeights.map { Self.plackettLuceMarginals($0, slots: slots) }
        let pi = piWeights.map { Self.plackettLuceMarginals($0, slots: slots) }
        // V(π) = Σ_x p(x) Σ_s Σ_a π_s(a|x) p(x, a), and the same for μ.
        var truth = 0.0, logging = 0.0
        for g in 0..<groups {
            for s in 0..<slots {
                for a in 0..<items {
                    truth += groupProbability[g] * pi[g][s][a] * p[g][a]
                    logging += groupProbability[g] * mu[g][s][a] * p[g][a]
                }
            }
        }
        let n = 100_000
        var log: [LoggedSlate] = []
        log.reserveCapacity(n)
        for _ in 0..<n {
            let g = Self.categorical(groupProbability, &rng)
            let slate = Self.plackettLuceSample(muWeights[g], slots: slots, &rng)
            log.append(LoggedSlate(
                context: Int64(-5 - g),
                items: slate.map { Int64($0) },
                propensities: slate.enumerated().map { mu[g][$0.offset][$0.element] },
                rewards: slate.map { Self.uniform(&rng) < p[g][$0] ? 1 : 0 }))
        }
        func group(_ r: LoggedSlate) -> Int { Int(-5 - r.context) }
        let candidates: [[[(item: Int64, probability: Double)]]] = pi.map { perSlot in
            perSlot.map { $0.enumerated().map { (Int64($0.offset), $0.element) } }
        }
        let target = TargetPolicy(probability: { r, s, a in pi[group(r)][s][Int(a)] },
                                  candidates: { r, s in candidates[group(r)][s] })
        let trueModel: (Int64, Int64) -> Double = { x, a in p[Int(-5 - x)][Int(a)] }

        let on = try OffPolicy.onPolicy(log)
        let ips = try OffPolicy.ips(log, target: target)
        let snips = try OffPolicy.snips(log, target: target)
        let dr = try OffPolicy.doublyRobust(log, target: target, rewardModel: trueModel)

        #expect(abs(on.value - logging) <= 4 * on.standardError)
        #expect(abs(on.value - truth) > 0.3)
        #expect(abs(on.value - truth) > 50 * on.standardError)
        for (name, e) in [("IPS", ips), ("SNIPS", snips), ("DR", dr)] {
            #expect(abs(e.value - truth) <= 4 * e.standardError,
                    "\(name): \(e.value) ± \(e.standardError), truth \(truth)")
            #expect(e.standardError > 0 && e.standardError < 0.05, "\(name) SE \(e.standardError)")
        }
        // Seed 2024: 0.59x IPS's standard error.
        #expect(dr.standardError < 0.75 * ips.standardError)
    }
}
