import ChorusCore

/// One served request as the serving policy logged it: the slate in order, and for each slot the
/// logging policy's probability of the item shown there (its propensity) and the reward observed.
/// A single action is a slate of one.
public struct LoggedSlate: Sendable, Equatable {
    /// Opaque context key (user, scenario, request bucket...): the estimators only hand it back to
    /// the target policy and the reward model.
    public var context: Int64
    /// The slate's items, slot 0 first.
    public var items: [Int64]
    /// μ(items[s] | context, s): the logging policy's marginal probability of that item at slot s,
    /// in (0, 1].
    public var propensities: [Double]
    /// The reward observed at each slot (finite).
    public var rewards: [Float]

    public init(context: Int64, items: [Int64], propensities: [Double], rewards: [Float]) {
        self.context = context
        self.items = items
        self.propensities = propensities
        self.rewards = rewards
    }

    /// A single logged action: a slate of one.
    public init(context: Int64, action: Int64, propensity: Double, reward: Float) {
        self.init(context: context, items: [action], propensities: [propensity], rewards: [reward])
    }
}

/// The policy to evaluate, given by its per-slot marginal probabilities.
public struct TargetPolicy {
    /// π(item | record's context, slot): the probability the target policy shows `item` at `slot`
    /// for this record, in [0, 1].
    public var probability: (LoggedSlate, Int, Int64) -> Double
    /// π(· | context, slot) over the candidates: every item the target policy can show at that slot
    /// with its probability (summing to 1). Needed only by the doubly robust estimator's direct term.
    public var candidates: ((LoggedSlate, Int) -> [(item: Int64, probability: Double)])?

    public init(probability: @escaping (LoggedSlate, Int, Int64) -> Double,
                candidates: ((LoggedSlate, Int) -> [(item: Int64, probability: Double)])? = nil) {
        self.probability = probability
        self.candidates = candidates
    }
}

/// An estimate of a policy's expected reward per request (summed over the slate's slots).
public struct OffPolicyEstimate: Sendable, Equatable {
    /// The estimated value: expected total reward of one slate.
    public let value: Double
    /// Standard error from the per-record terms (sample standard deviation / √N; for SNIPS the
    /// delta-method linearisation). Infinite with a single record: one term says nothing of the spread.
    public let standardError: Double
    /// Kish effective sample size of the importance weights, (Σ w)² / Σ w², per slot, the smallest
    /// over slots (the least supported slot bounds the precision). N for the on-policy mean.
    public let effectiveSampleSize: Double
    /// Records in the log.
    public let records: Int
    /// (record, slot) weights the clip lowered (0 without a clip).
    public let clippedWeights: Int
}

/// Off-policy estimators for logged slates under the item-position model: the reward at a slot
/// depends on the context and the item shown there only, so a slate's value is the sum over slots of
/// per-slot single-action values and each slot is importance-weighted by its marginal propensities
/// (README "Off-policy evaluation"). Inputs are validated in full before any arithmetic; every
/// problem is a `ChorusError.invalidArgument` naming the record, slot and field.
public enum OffPolicy {
    /// Checks every record and returns the slate length (the same for every record).
    /// - Throws: `ChorusError.invalidArgument` for an empty log, an empty slate, per-slot arrays of
    ///   different lengths, slates of different lengths, a propensity that is not finite or not in
    ///   (0, 1], or a reward that is not finite.
    /// - Complexity: O(total slots).
    @discardableResult
    public static func validate(_ log: [LoggedSlate]) throws -> Int {
        guard let first = log.first else {
            throw ChorusError.invalidArgument("log: empty; an estimate needs at least one logged record")
        }
        let slots = first.items.count
        for (i, r) in log.enumerated() {
            guard !r.items.isEmpty else {
                throw ChorusError.invalidArgument("log[\(i)].items: empty slate")
            }
            guard r.propensities.count == r.items.count else {
                throw ChorusError.invalidArgument(
                    "log[\(i)].propensities: \(r.propensities.count) values for \(r.items.count) items")
            }
            guard r.rewards.count == r.items.count else {
                throw ChorusError.invalidArgument(
                    "log[\(i)].rewards: \(r.rewards.count) values for \(r.items.count) items")
            }
            guard r.items.count == slots else {
                throw ChorusError.invalidArgument(
                    "log[\(i)].items: slate of \(r.items.count) where log[0] has \(slots); every record must have the same number of slots")
            }
            for s in 0..<slots {
                let p = r.propensities[s]
                guard p.isFinite, p > 0, p <= 1 else {
                    throw ChorusError.invalidArgument(
                        "log[\(i)].propensities[\(s)]: \(p) is not a probability in (0, 1]")
                }
                guard r.rewards[s].isFinite else {
                    throw ChorusError.invalidArgument("log[\(i)].rewards[\(s)]: \(r.rewards[s]) is not finite")
                }
            }
        }
        return slots
    }

    /// The plain mean of the logged slates' total rewards: the logging policy's own value, for
    /// comparison with the off-policy estimates.
    /// - Throws: `ChorusError.invalidArgument` as `validate`.
    public static func onPolicy(_ log: [LoggedSlate]) throws -> OffPolicyEstimate {
        try validate(log)
        var terms = [Double]()
        terms.reserveCapacity(log.count)
        for r in log { terms.append(r.rewards.reduce(0.0) { $0 + Double($1) }) }
        let (mean, se) = try meanAndError(terms, what: "on-policy mean")
        return OffPolicyEstimate(value: mean, standardError: se, effectiveSampleSize: Double(log.count),
                                 records: log.count, clippedWeights: 0)
    }

    /// Inverse propensity scoring: V = (1/N) Σ_i Σ_s w_is r_is, w_is = min(π(a_is|x_i,s) / μ_is, clip).
    /// Unbiased without a clip (given μ > 0 wherever π > 0); a clip trades bias (downwards for
    /// non-negative rewards) for variance.
    /// - Parameters:
    ///   - weightClip: the largest weight kept (finite, > 0); nil: no clip.
    /// - Throws: `ChorusError.invalidArgument` as `validate`, for a bad clip, a target probability
    ///   that is not in [0, 1], or an estimate that overflows.
    /// - Complexity: O(total slots) calls of `target.probability`.
    public static func ips(_ log: [LoggedSlate], target: TargetPolicy,
                           weightClip: Double? = nil) throws -> OffPolicyEstimate {
        let (weights, slots, clipped) = try importanceWeights(log, target: target, weightClip: weightClip)
        var terms = [Double](repeating: 0, count: log.count)
        for (i, r) in log.enumerated() {
            var t = 0.0
            for s in 0..<slots { t += weights[i * slots + s] * Double(r.rewards[s]) }
            terms[i] = t
        }
        let (mean, se) = try meanAndError(terms, what: "IPS")
        return OffPolicyEstimate(value: mean, standardError: se,
                                 effectiveSampleSize: effectiveSize(weights, records: log.count, slots: slots),
                                 records: log.count, clippedWeights: clipped)
    }

    /// Self-normalised IPS: V = Σ_s (Σ_i w_is r_is / Σ_i w_is). Biased by O(1/N) but bounded by the
    /// rewards' range at each slot and usually of much lower variance than IPS; invariant to a
    /// constant shift of the rewards. Standard error by the delta method: per-record terms
    /// φ_i = Σ_s w_is (r_is − V_s) / mean_i(w_is).
    /// - Throws: as `ips`, and when the target policy gives probability 0 to every logged item at
    ///   some slot (Σ_i w_is = 0: the log has no support for the target there).
    public static func snips(_ log: [LoggedSlate], target: TargetPolicy,
                             weightClip: Double? = nil) throws -> OffPolicyEstimate {
        let (weights, slots, clipped) = try importanceWeights(log, target: target, weightClip: weightClip)
        let n = log.count
        var slotValue = [Double](repeating: 0, count: slots)
        var slotMeanWeight = [Double](repeating: 0, count: slots)
        for s in 0..<slots {
            var wr = 0.0, w = 0.0
            for (i, r) in log.enumerated() {
                let wi = weights[i * slots + s]
                wr += wi * Double(r.rewards[s])
                w += wi
            }
            guard w > 0 else {
                throw ChorusError.invalidArgument(
                    "target: gives probability 0 to every logged item at slot \(s); SNIPS is undefined without support")
            }
            slotValue[s] = wr / w
            slotMeanWeight[s] = w / Double(n)
        }
        let value = slotValue.reduce(0, +)
        guard value.isFinite else { throw overflow("SNIPS") }
        var phi = [Double](repeating: 0, count: n)
        for (i, r) in log.enumerated() {
            var t = 0.0
            for s in 0..<slots {
                t += weights[i * slots + s] * (Double(r.rewards[s]) - slotValue[s]) / slotMeanWeight[s]
            }
            phi[i] = t
        }
        let (_, se) = try meanAndError(phi, what: "SNIPS")
        return OffPolicyEstimate(value: value, standardError: se,
                                 effectiveSampleSize: effectiveSize(weights, records: n, slots: slots),
                                 records: n, clippedWeights: clipped)
    }

    /// Doubly robust: V = (1/N) Σ_i Σ_s [ Σ_a π(a|x_i,s) q̂(x_i,a) + w_is (r_is − q̂(x_i,a_is)) ].
    /// Unbiased when either the propensities or the reward model are right; with a good model its
    /// variance is that of the residuals, well below IPS's.
    /// - Parameters:
    ///   - rewardModel: q̂(context, item), the expected reward of an item at any slot (finite).
    ///   - weightClip: as for `ips`.
    /// - Throws: as `ips`; when `target.candidates` is nil, a candidate probability is not in
    ///   [0, 1] or a slot's candidate probabilities do not sum to 1 (± 1e-6), or q̂ is not finite.
    /// - Complexity: O(total slots × candidates per slot) calls of the closures.
    public static func doublyRobust(_ log: [LoggedSlate], target: TargetPolicy,
                                    rewardModel: (Int64, Int64) -> Double,
                                    weightClip: Double? = nil) throws -> OffPolicyEstimate {
        guard let candidates = target.candidates else {
            throw ChorusError.invalidArgument(
                "target.candidates: nil; the doubly robust estimator needs the target policy's probabilities over the candidates")
        }
        let (weights, slots, clipped) = try importanceWeights(log, target: target, weightClip: weightClip)
        func q(_ context: Int64, _ item: Int64, _ i: Int, _ s: Int) throws -> Double {
            let v = rewardModel(context, item)
            guard v.isFinite else {
                throw ChorusError.invalidArgument(
                    "rewardModel: \(v) for context \(context), item \(item) (log[\(i)], slot \(s)) is not finite")
            }
            return v
        }
        var terms = [Double](repeating: 0, count: log.count)
        for (i, r) in log.enumerated() {
            var t = 0.0
            for s in 0..<slots {
                var direct = 0.0, total = 0.0
                for c in candidates(r, s) {
                    guard c.probability.isFinite, c.probability >= 0, c.probability <= 1 else {
                        throw ChorusError.invalidArgument(
                            "target.candidates: probability \(c.probability) of item \(c.item) at log[\(i)] slot \(s) is not in [0, 1]")
                    }
                    total += c.probability
                    if c.probability > 0 { direct += c.probability * (try q(r.context, c.item, i, s)) }
                }
                guard abs(total - 1) <= 1e-6 else {
                    throw ChorusError.invalidArgument(
                        "target.candidates: probabilities at log[\(i)] slot \(s) sum to \(total), not 1")
                }
                let w = weights[i * slots + s]
                t += direct
                if w > 0 { t += w * (Double(r.rewards[s]) - (try q(r.context, r.items[s], i, s))) }
            }
            terms[i] = t
        }
        let (mean, se) = try meanAndError(terms, what: "doubly robust")
        return OffPolicyEstimate(value: mean, standardError: se,
                                 effectiveSampleSize: effectiveSize(weights, records: log.count, slots: slots),
                                 records: log.count, clippedWeights: clipped)
    }

    // MARK: - Shared steps

    /// Validates the log and the clip, and returns the weights row-major (record × slot), the slate
    /// length and how many weights the clip lowered.
    static func importanceWeights(_ log: [LoggedSlate], target: TargetPolicy,
                                  weightClip: Double?) throws -> (weights: [Double], slots: Int, clipped: Int) {
        if let c = weightClip, !(c.isFinite && c > 0) {
            throw ChorusError.invalidArgument("weightClip: \(c) must be finite and > 0 (nil: no clip)")
        }
        let slots = try validate(log)
        var weights = [Double](repeating: 0, count: log.count * slots)
        var clipped = 0
        for (i, r) in log.enumerated() {
            for s in 0..<slots {
                let p = target.probability(r, s, r.items[s])
                guard p.isFinite, p >= 0, p <= 1 else {
                    throw ChorusError.invalidArgument(
                        "target.probability: \(p) for item \(r.items[s]) at log[\(i)] slot \(s) is not in [0, 1]")
                }
                var w = p / r.propensities[s]
                if let c = weightClip, w > c { w = c; clipped += 1 }
                weights[i * slots + s] = w
            }
        }
        return (weights, slots, clipped)
    }

    /// Mean and standard error (sample standard deviation, N − 1, over √N) of per-record terms.
    static func meanAndError(_ terms: [Double], what: String) throws -> (mean: Double, standardError: Double) {
        let n = Double(terms.count)
        let mean = terms.reduce(0, +) / n
        guard mean.isFinite else { throw overflow(what) }
        guard terms.count > 1 else { return (mean, .infinity) }
        var ss = 0.0
        for t in terms { ss += (t - mean) * (t - mean) }
        return (mean, (ss / (n - 1) / n).squareRoot())
    }

    /// Kish effective sample size per slot, the smallest over slots; 0 when a slot has no weight.
    static func effectiveSize(_ weights: [Double], records: Int, slots: Int) -> Double {
        var smallest = Double.infinity
        for s in 0..<slots {
            // Scaled by the largest weight so huge weights cannot overflow the squares.
            var largest = 0.0
            for i in 0..<records { largest = max(largest, weights[i * slots + s]) }
            var sum = 0.0, squares = 0.0
            if largest > 0 {
                for i in 0..<records {
                    let w = weights[i * slots + s] / largest
                    sum += w
                    squares += w * w
                }
            }
            smallest = min(smallest, squares > 0 ? sum * sum / squares : 0)
        }
        return smallest
    }

    static func overflow(_ what: String) -> ChorusError {
        .invalidArgument("log: the \(what) estimate is not finite (importance weights or rewards too large); pass a weightClip")
    }
}
