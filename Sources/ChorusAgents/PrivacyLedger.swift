#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore

/// A privacy accountant: one Gaussian mechanism per round (a noisy sum of clipped per-user
/// contributions, sensitivity C, noise σC), composed in Rényi differential privacy. A Gaussian
/// mechanism with noise multiplier σ is (α, α/(2σ²))-RDP at every order α > 1 (Mironov 2017,
/// Cor. 3); RDP composes by adding; (α, ρ)-RDP gives (ρ + log(1/δ)/(α − 1), δ)-DP (Prop. 3),
/// minimised over a grid of orders. A round without noise makes ε infinite.
///
/// Used by the merges a model descends from (`Engine.merge`, on the model) and by the learning
/// coordinator's private releases (`CoordinatorLearner`). Since every round's RDP is α times a
/// constant, the ledger keeps only the sum of the constants: it stays small however many rounds.
public struct PrivacyLedger: Sendable, Equatable {
    /// Rounds recorded (with or without noise).
    public private(set) var rounds: Int = 0
    /// Rounds without noise (each makes ε infinite).
    public private(set) var unprotectedRounds: Int = 0
    /// Σ over the noisy rounds of 1/(2σ²): the composed RDP at order α is α times this.
    public private(set) var rdpPerOrder: Double = 0
    /// The δ of the ε reported (the latest asked for).
    public var delta: Double = 1e-5

    public init(delta: Double = 1e-5) { self.delta = delta }

    /// A ledger of the given rounds (σ = 0: a round without noise).
    public init(noiseMultipliers: [Double], delta: Double = 1e-5) {
        self.delta = delta
        for sigma in noiseMultipliers { record(noiseMultiplier: sigma) }
    }

    /// Adds one round with noise multiplier σ (0: without noise).
    public mutating func record(noiseMultiplier sigma: Double) {
        rounds += 1
        if sigma > 0 { rdpPerOrder += 1 / (2 * sigma * sigma) } else { unprotectedRounds += 1 }
    }

    /// The orders of the grid: 1.1 ... 11 by 0.1, 12 ... 64, 128, 256, 512, 1024 (as TF Privacy's).
    static let orders: [Double] = (1...100).map { 1 + Double($0) / 10 } + (12...64).map(Double.init) + [128, 256, 512, 1024]

    /// The composed RDP ε at order α.
    public func rdp(order alpha: Double) -> Double { unprotectedRounds > 0 ? .infinity : alpha * rdpPerOrder }

    /// ε at `delta` (the ledger's δ by default): min over the orders of rdp(α) + log(1/δ)/(α − 1).
    /// 0 for a ledger with no round; infinite when a round had no noise.
    public func epsilon(delta: Double? = nil) -> Double {
        guard rounds > 0 else { return 0 }
        let d = delta ?? self.delta
        return Self.orders.map { rdp(order: $0) + log(1 / d) / ($0 - 1) }.min() ?? .infinity
    }

    /// The smallest noise multiplier σ whose `rounds` rounds spend at most ε at δ (bisection on the
    /// accountant itself); nil when no σ up to 10⁶ does, or the arguments are not positive.
    public static func noiseMultiplier(epsilon: Double, rounds: Int, delta: Double) -> Double? {
        guard epsilon > 0, epsilon.isFinite, rounds > 0, delta > 0, delta < 1 else { return nil }
        func spent(_ sigma: Double) -> Double { PrivacyLedger(noiseMultipliers: [], delta: delta).adding(rounds: rounds, sigma: sigma).epsilon() }
        var lo = 1e-4, hi = 1e6
        guard spent(hi) <= epsilon else { return nil }
        for _ in 0..<200 {
            let mid = (lo * hi).squareRoot()
            if spent(mid) > epsilon { lo = mid } else { hi = mid }
        }
        return hi
    }

    private func adding(rounds n: Int, sigma: Double) -> PrivacyLedger {
        var l = self
        l.rounds += n
        l.rdpPerOrder += Double(n) / (2 * sigma * sigma)
        return l
    }

    /// Version 2: δ, rounds, rounds without noise, Σ 1/(2σ²). Version 1 (a list of σ) is read too.
    func encode(into w: inout ByteWriter) {
        w.write(UInt32(2))
        w.write(delta)
        w.write(UInt64(rounds)); w.write(UInt64(unprotectedRounds)); w.write(rdpPerOrder)
    }

    static func decode(_ r: inout ByteReader) throws(ChorusError) -> PrivacyLedger {
        let version = try r.read(UInt32.self)
        guard version == 1 || version == 2 else { throw .unsupportedVersion("privacy ledger version \(version) is not supported (this library reads 1 and 2)") }
        let delta = try r.readDouble()
        guard delta.isFinite, delta > 0, delta < 1 else { throw .format("privacy ledger holds an invalid delta \(delta)") }
        if version == 1 {
            let sigmas = try r.readArray(Double.self, maxCount: 1 << 20)
            guard sigmas.allSatisfy({ $0.isFinite && $0 >= 0 }) else { throw .format("privacy ledger holds an invalid noise multiplier") }
            return PrivacyLedger(noiseMultipliers: sigmas, delta: delta)
        }
        let rounds = try r.read(UInt64.self), unprotected = try r.read(UInt64.self)
        let sum = try r.readDouble()
        guard rounds <= UInt64(Int32.max), unprotected <= rounds, sum.isFinite, sum >= 0, rounds > unprotected || sum == 0 else {
            throw .format("privacy ledger holds inconsistent rounds (\(rounds), \(unprotected) without noise) or sum \(sum)")
        }
        var l = PrivacyLedger(delta: delta)
        l.rounds = Int(rounds); l.unprotectedRounds = Int(unprotected); l.rdpPerOrder = sum
        return l
    }
}

/// The steps of a private release, shared by the merge and the learning coordinator.
enum PrivateRelease {
    /// Adds N(0, std²) to every value.
    static func addNoise(_ sums: inout [Double], std: Double, rng: inout SeededRandom) {
        guard std > 0 else { return }
        for j in sums.indices { sums[j] += std * Double(rng.nextGaussian()) }
    }

    /// Scales `values` to L2 norm at most `bound` (0: no bound). A non-finite norm zeroes them: a
    /// contribution that cannot be bounded is dropped rather than released.
    static func clip(_ values: inout [Double], to bound: Double) {
        guard bound > 0 else { return }
        let norm = values.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard norm.isFinite else { for i in values.indices { values[i] = 0 }; return }
        if norm > bound { let s = bound / norm; for i in values.indices { values[i] *= s } }
    }
}
