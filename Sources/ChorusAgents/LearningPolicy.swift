#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore

/// How the coordinator keeps learning from feedback between fits (`chorus_learning_params`).
public struct LearningOptions: Sendable, Equatable {
    /// The raw values are the C API's `chorus_learning_mode` (pinned).
    public enum Mode: Int32, Sendable, CaseIterable {
        /// The fitted coordinator alone (the default).
        case off = 0
        /// A linear contextual bandit with upper-confidence exploration (LinUCB, Li et al. 2010).
        case linUCB = 1
        /// The same linear model with linear Thompson sampling (Agrawal and Goyal 2013).
        case thompson = 2
        /// A softmax policy over the candidates trained by REINFORCE with a baseline and the top-K
        /// off-policy correction of Chen et al. (WSDM 2019); slates are sampled (Plackett–Luce).
        case policyGradient = 3

        public var name: String {
            switch self {
            case .off: "off"
            case .linUCB: "linucb"
            case .thompson: "thompson"
            case .policyGradient: "policy"
            }
        }
    }

    public var mode: Mode = .off
    /// The exploration knob: LinUCB's α (width of the confidence bonus), Thompson's v (scale of the
    /// posterior sample), the policy's temperature τ. 0 = the mode's default; must be finite, >= 0.
    public var exploration: Float = 0
    /// The policy's step size (policy mode only). 0 = default.
    public var learningRate: Float = 0
    /// λ of the ridge prior pulling the bandit's weights toward the fitted coordinator (bandits). 0 = default.
    public var priorStrength: Float = 0
    /// Served-slate rows kept for the host to read (`SlateLog`). 0 = default.
    public var logCapacity: Int = 0
    /// Seeds the sampling (Thompson, policy) with the request id, and the privacy noise.
    public var seed: UInt64 = 42
    /// Differential privacy of what the learner learns from feedback (`PrivateLearning`): closed
    /// slates are learned in releases of `releaseSlates`, each user's part of a release clipped to
    /// L2 norm `clipNorm` (C) and N(0, σ²C²) added to every coordinate, σ = `noiseMultiplier`.
    /// 0 = no noise; needs `clipNorm` > 0. Either > 0 makes learning private (also the overlay:
    /// `OnlineState`'s shared statistics stop learning from feedback).
    public var noiseMultiplier: Double = 0
    /// C; 0 = no clipping.
    public var clipNorm: Double = 0
    /// δ of the ε the accountant reports; 0 = default 1e-5.
    public var delta: Double = 0
    /// Closed slates per private release; 0 = default 1,000.
    public var releaseSlates: Int = 0
    public init(mode: Mode = .off) { self.mode = mode }

    /// Whether learning from feedback is private (clipped, with or without noise).
    public var isPrivate: Bool { noiseMultiplier > 0 || clipNorm > 0 }

    /// Chosen on a validation replay (bench/online/README.md: ml-100k, fit on the first 30% by time,
    /// the next 20% streamed; seed 1): the bandits' hit@10 was flat in exploration from 0.01 to 0.3
    /// and best at prior strength 10 (0.195, against 0.193 at 1 and 100, 0.186 at 1000, online alone
    /// 0.187); the policy's best was temperature 0.1 with step 0.3 (0.165; 0.138 at step 0.05, and
    /// it diverged at step 1).
    public static let defaultExploration: [Mode: Float] = [.off: 0, .linUCB: 0.03, .thompson: 0.03, .policyGradient: 0.1]
    public static let defaultLearningRate: Float = 0.3
    public static let defaultPriorStrength: Float = 10
    public static let defaultLogCapacity = 100_000
    public static let maxLogCapacity = 100_000_000
    public static let defaultDelta = 1e-5
    public static let defaultReleaseSlates = 1_000
    public static let maxReleaseSlates = 10_000_000

    /// The options with every 0 replaced by its default.
    public var resolved: LearningOptions {
        var o = self
        if o.exploration == 0 { o.exploration = Self.defaultExploration[mode] ?? 0.03 }
        if o.learningRate == 0 { o.learningRate = Self.defaultLearningRate }
        if o.priorStrength == 0 { o.priorStrength = Self.defaultPriorStrength }
        if o.logCapacity == 0 { o.logCapacity = Self.defaultLogCapacity }
        if o.delta == 0 { o.delta = Self.defaultDelta }
        if o.releaseSlates == 0 { o.releaseSlates = Self.defaultReleaseSlates }
        return o
    }

    /// - Throws: `.invalidArgument` naming the field.
    public func validate() throws(ChorusError) {
        guard exploration.isFinite, exploration >= 0, exploration <= 1e6 else {
            throw .invalidArgument("exploration must be finite and in [0, 1e6], got \(exploration)")
        }
        guard learningRate.isFinite, learningRate >= 0, learningRate <= 1e3 else {
            throw .invalidArgument("learning_rate must be finite and in [0, 1000], got \(learningRate)")
        }
        guard priorStrength.isFinite, priorStrength >= 0, priorStrength <= 1e6 else {
            throw .invalidArgument("prior_strength must be finite and in [0, 1e6], got \(priorStrength)")
        }
        guard logCapacity >= 0, logCapacity <= Self.maxLogCapacity else {
            throw .invalidArgument("log_capacity must be in 0...\(Self.maxLogCapacity), got \(logCapacity)")
        }
        guard noiseMultiplier.isFinite, noiseMultiplier >= 0, noiseMultiplier <= 1e6 else {
            throw .invalidArgument("noise_multiplier must be finite and in [0, 1e6], got \(noiseMultiplier)")
        }
        guard clipNorm.isFinite, clipNorm >= 0, clipNorm <= 1e12 else {
            throw .invalidArgument("clip_norm must be finite and in [0, 1e12], got \(clipNorm)")
        }
        guard delta.isFinite, delta >= 0, delta < 1 else { throw .invalidArgument("delta must be 0 (default) or in (0, 1), got \(delta)") }
        guard releaseSlates >= 0, releaseSlates <= Self.maxReleaseSlates else {
            throw .invalidArgument("release_slates must be in 0...\(Self.maxReleaseSlates), got \(releaseSlates)")
        }
        if noiseMultiplier > 0, clipNorm == 0 {
            throw .invalidArgument("noise_multiplier \(noiseMultiplier) needs clip_norm > 0: the noise is scaled to the clipped contribution of one user")
        }
    }
}

/// The learned part of the coordinator for one context segment: a linear model over a candidate's
/// features z = [the fitted coordinator's score, min-max normalised over the request's candidates;
/// the candidate's coordinator features (`Candidates.Features`); 1].
///
/// Context enters through the segment (what kind of request: a user the model knows, one known only
/// from feedback, a cold one; with or without a query; the scenario), since a feature that is the
/// same for every candidate of a request cannot change a linear ranking. Both forms start at the
/// fitted coordinator (weight 1 on its score, 0 elsewhere), so a fresh learner serves what the fit
/// chose.
struct SegmentModel: Sendable, Equatable {
    let dimension: Int
    /// Bandits: A⁻¹ (d × d, row-major) and b of ridge regression of reward on z, A = λI + Σ z zᵀ,
    /// b = λθ₀ + Σ r z; the mean weights are A⁻¹b.
    var inverse: [Double]
    var b: [Double]
    /// Policy: the softmax policy's weights, and the running mean reward (REINFORCE's baseline).
    var policy: [Double]
    var baseline: Double = 0
    /// Rewards learned from (served items with their outcome).
    var updates: UInt64 = 0
    /// Private releases (`PrivateLearning`): the variance of the noise added to each coordinate so
    /// far (Σ σ²C²), and the ridge shift added to A's diagonal (and toward θ₀ in b) to match it.
    var noiseVariance: Double = 0
    var noiseShift: Double = 0

    init(dimension d: Int, prior lambda: Double) {
        dimension = d
        inverse = [Double](repeating: 0, count: d * d)
        for i in 0..<d { inverse[i * d + i] = 1 / lambda }
        b = [Double](repeating: 0, count: d)
        b[0] = lambda // θ₀ = e₀: the fitted coordinator's score
        policy = [Double](repeating: 0, count: d)
        policy[0] = 1
    }

    init(dimension: Int, inverse: [Double], b: [Double], policy: [Double], baseline: Double, updates: UInt64,
         noiseVariance: Double = 0, noiseShift: Double = 0) {
        self.dimension = dimension; self.inverse = inverse; self.b = b; self.policy = policy
        self.baseline = baseline; self.updates = updates; self.noiseVariance = noiseVariance; self.noiseShift = noiseShift
    }

    /// The bandit's mean weights θ = A⁻¹b.
    var mean: [Double] {
        let d = dimension
        return (0..<d).map { i in (0..<d).reduce(0.0) { $0 + inverse[i * d + $1] * b[$1] } }
    }

    /// Ridge update with one (features, reward): Sherman–Morrison on A⁻¹ (O(d²)).
    mutating func observe(_ z: UnsafePointer<Float>, reward r: Double) {
        let d = dimension
        var u = [Double](repeating: 0, count: d) // A⁻¹ z
        for i in 0..<d { var s = 0.0; for j in 0..<d { s += inverse[i * d + j] * Double(z[j]) }; u[i] = s }
        var denominator = 1.0
        for i in 0..<d { denominator += Double(z[i]) * u[i] }
        guard denominator.isFinite, denominator > 0 else { return }
        for i in 0..<d { for j in 0..<d { inverse[i * d + j] -= u[i] * u[j] / denominator } }
        for i in 0..<d { b[i] += r * Double(z[i]) }
        updates &+= 1
    }
}

/// One request's decision: scores the candidates with a segment's learned model and says which
/// to serve; pure functions of the model copy, the features and the random stream.
struct LearnedRanking {
    let mode: LearningOptions.Mode
    let exploration: Double
    let model: SegmentModel

    /// The decision score of each candidate (the slate is their top k): LinUCB θᵀz + α·sqrt(zᵀA⁻¹z);
    /// Thompson θ̃ᵀz with θ̃ ~ N(θ, v²A⁻¹); the policy's logit θᵀz / τ plus Gumbel noise (top k of
    /// logits + Gumbel = a Plackett–Luce sample without replacement).
    /// `z`: `count` rows of `model.dimension` floats.
    func decide(_ z: UnsafePointer<Float>, count: Int, random: inout SeededRandom) -> [Float] {
        let d = model.dimension
        var out = [Float](repeating: 0, count: count)
        switch mode {
        case .off:
            for j in 0..<count { out[j] = z[j * d] }
        case .linUCB:
            let theta = model.mean
            for j in 0..<count {
                let x = z + j * d
                var mean = 0.0, width = 0.0
                for i in 0..<d {
                    mean += theta[i] * Double(x[i])
                    var row = 0.0
                    for k in 0..<d { row += model.inverse[i * d + k] * Double(x[k]) }
                    width += Double(x[i]) * row
                }
                out[j] = Float(mean + exploration * max(0, width).squareRoot())
            }
        case .thompson:
            let theta = sample(&random)
            for j in 0..<count { out[j] = Float(dot(theta, z + j * d)) }
        case .policyGradient:
            let tau = max(exploration, 1e-6)
            for j in 0..<count {
                let u = max(Double(random.next() >> 11) * (1.0 / 9_007_199_254_740_992.0), 1e-300)
                out[j] = Float(dot(model.policy, z + j * d) / tau - log(-log(u)))
            }
        }
        return out
    }

    /// P(served[s] at slot s) under this ranking, for the slate log: 1 for deterministic rankings
    /// (off, LinUCB); for Thompson and the policy the share of `draws` further draws of the same
    /// ranking (each a fresh posterior sample, or fresh Gumbel noise) that put the item at that slot,
    /// counting the served draw itself (so never 0); the policy's slot 0 is its exact softmax.
    func propensities(_ z: UnsafePointer<Float>, count: Int, served: [Int], random: inout SeededRandom, draws: Int = 63) -> [Float] {
        guard mode == .thompson || mode == .policyGradient, !served.isEmpty else { return served.map { _ in 1 } }
        var hits = [Int](repeating: 1, count: served.count)
        for _ in 0..<draws {
            let scores = decide(z, count: count, random: &random)
            let top = scores.withUnsafeBufferPointer { TopK.select($0, k: served.count) }
            for (slot, t) in top.enumerated() where slot < served.count && Int(t.index) == served[slot] { hits[slot] += 1 }
        }
        var p = hits.map { Float($0) / Float(draws + 1) }
        if mode == .policyGradient { p[0] = Float(softmax(z, count: count)[served[0]]) }
        return p
    }

    /// The policy's softmax over the candidates (policy mode: the logged probability of each item
    /// as a single choice, β in the off-policy correction).
    func softmax(_ z: UnsafePointer<Float>, count: Int) -> [Double] {
        Self.softmax(weights: model.policy, tau: max(exploration, 1e-6), z, dimension: model.dimension, count: count)
    }

    static func softmax(weights: [Double], tau: Double, _ z: UnsafePointer<Float>, dimension d: Int, count: Int) -> [Double] {
        guard count > 0 else { return [] }
        var logits = (0..<count).map { dotStatic(weights, z + $0 * d) / tau }
        let top = logits.max() ?? 0
        var total = 0.0
        for j in 0..<count { logits[j] = exp(logits[j] - top); total += logits[j] }
        return logits.map { $0 / total }
    }

    /// θ̃ = θ + v·L·ε, L the Cholesky factor of A⁻¹ (A⁻¹ = LLᵀ), ε standard normal.
    func sample(_ random: inout SeededRandom) -> [Double] {
        let d = model.dimension
        var theta = model.mean
        guard let l = Self.cholesky(model.inverse, d) else { return theta }
        let e = (0..<d).map { _ in Double(random.nextGaussian()) }
        for i in 0..<d {
            var s = 0.0
            for k in 0...i { s += l[i * d + k] * e[k] }
            theta[i] += exploration * s
        }
        return theta
    }

    /// Lower Cholesky factor of a symmetric positive definite d × d matrix; nil when it is not
    /// (rounding after many updates): the caller then serves the mean.
    static func cholesky(_ a: [Double], _ d: Int) -> [Double]? {
        var l = [Double](repeating: 0, count: d * d)
        for i in 0..<d {
            for j in 0...i {
                var s = a[i * d + j]
                for k in 0..<j { s -= l[i * d + k] * l[j * d + k] }
                if i == j {
                    guard s > 0, s.isFinite else { return nil }
                    l[i * d + i] = s.squareRoot()
                } else {
                    l[i * d + j] = s / l[j * d + j]
                }
            }
        }
        return l
    }

    @inline(__always) func dot(_ w: [Double], _ x: UnsafePointer<Float>) -> Double { Self.dotStatic(w, x) }
    @inline(__always) static func dotStatic(_ w: [Double], _ x: UnsafePointer<Float>) -> Double {
        var s = 0.0
        for i in 0..<w.count { s += w[i] * Double(x[i]) }
        return s
    }
}

extension SegmentModel {
    /// One REINFORCE step from a closed slate (policy mode), with the top-K off-policy correction of
    /// Chen et al. (WSDM 2019): for served item j with reward r_j,
    /// θ += η · min(c, π_θ(j)/β(j)) · K(1 − π_θ(j))^(K−1) · (r_j − b) · (z_j − Σ_k π_θ(k) z_k) / τ,
    /// where π_θ is the current policy's softmax over the candidates kept with the slate, β(j) the
    /// probability the serving policy gave j, K the slate's length and b the running mean reward.
    /// - Parameters:
    ///   - z: the kept candidates' features (`count` rows); `served[i]` the row of slate item i.
    mutating func reinforce(z: UnsafePointer<Float>, count: Int, served: [Int], logged: [Double], rewards: [Double],
                            tau: Double, rate: Double, clip: Double = 10) {
        guard let step = reinforceStep(z: z, count: count, served: served, logged: logged, rewards: rewards, tau: tau, clip: clip) else { return }
        for i in 0..<dimension { policy[i] += rate * step[i] }
        for r in rewards { baseline += 0.01 * (r - baseline) }
        updates &+= UInt64(served.count)
    }

    /// The REINFORCE step of one closed slate (before the step size), its norm clipped at 1 so one
    /// slate moves the policy by at most the step size whatever the rewards' scale (the host's) and
    /// the temperature; nil for a slate that cannot be learned from.
    func reinforceStep(z: UnsafePointer<Float>, count: Int, served: [Int], logged: [Double], rewards: [Double],
                       tau: Double, clip: Double = 10) -> [Double]? {
        let d = dimension, k = served.count
        guard count > 0, k > 0, logged.count == k, rewards.count == k, served.allSatisfy({ $0 >= 0 && $0 < count }) else { return nil }
        let pi = LearnedRanking.softmax(weights: policy, tau: tau, z, dimension: d, count: count)
        var expected = [Double](repeating: 0, count: d)
        for j in 0..<count { for i in 0..<d { expected[i] += pi[j] * Double(z[j * d + i]) } }
        var step = [Double](repeating: 0, count: d)
        for (s, row) in served.enumerated() {
            let ratio = min(clip, pi[row] / max(logged[s], 1e-12))
            let topK = Double(k) * pow(1 - pi[row], Double(k - 1))
            let scale = ratio * topK * (rewards[s] - baseline) / tau
            for i in 0..<d { step[i] += scale * (Double(z[row * d + i]) - expected[i]) }
        }
        let norm = step.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard norm.isFinite else { return nil }
        if norm > 1 { for i in 0..<d { step[i] /= norm } }
        return step
    }
}
