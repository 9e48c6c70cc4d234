#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore

/// The learned coordinator's second model: a small network over a candidate's features
/// (`Candidates.Features`): f(x) = vᵀx + uᵀ relu(W x + b) + c. The linear part starts from the
/// fitted blend weights, so training starts at the linear blend and learns what it misses
/// (interactions between agents, rank signals, user activity).
///
/// Trained listwise (ListNet-style softmax cross-entropy, Cao et al. 2007) on validation users:
/// per user, L = −(1/|R|) Σ_{i∈R} log softmax(f over the user's candidates)_i, with R the held-out
/// items among the candidates; Adam (Kingma & Ba 2015), minibatches of users, a fixed seed and a
/// fixed order, so the result is the same on every run.
///
/// Scenarios: the score of agent a's feature x_a is modulated per scenario s by
/// m_{s,a} = Q_a · d_s + E_{s,a}: f(x, s) = f(x) + Σ_a m_{s,a} x_a, with d_s the scenario's
/// description vector (Q is shared by all scenarios, so similar descriptions behave alike and a
/// scenario defined after the fit still gets Q · d_s) and E a per-scenario offset with a strong L2
/// pull to 0, so a scenario with little data stays close to the shared model (the seed's
/// r = u · s · i: a per-scenario modulation of user-item affinity).
public struct RankingMLP: Sendable, Equatable {
    public let inputs: Int
    public let hidden: Int
    /// Agents (the first `agents` inputs are their scores), scenarios trained, description width.
    public let agents: Int
    public let scenarios: Int
    public let scenarioDimension: Int
    /// Row-major hidden x inputs, then b (hidden), u (hidden), v (inputs), c (1), Q (agents x
    /// scenarioDimension), E (scenarios x agents).
    var parameters: [Float]

    var wOffset: Int { 0 }
    var bOffset: Int { hidden * inputs }
    var uOffset: Int { bOffset + hidden }
    var vOffset: Int { uOffset + hidden }
    var cOffset: Int { vOffset + inputs }
    var qOffset: Int { cOffset + 1 }
    var eOffset: Int { qOffset + agents * scenarioDimension }
    var baseCount: Int { qOffset }
    static func parameterCount(inputs: Int, hidden: Int, agents: Int, scenarios: Int, scenarioDimension: Int) -> Int {
        hidden * inputs + 2 * hidden + inputs + 1 + agents * scenarioDimension + scenarios * agents
    }

    /// A network whose linear part is `linear` (padded with zeros) and whose hidden part is small
    /// random (He-style scale), so its first scores are the linear blend's; no scenario modulation yet.
    public init(inputs: Int, hidden: Int, linear: [Float], seed: UInt64, agents: Int = 0, scenarios: Int = 1, scenarioDimension: Int = 0) {
        self.inputs = inputs; self.hidden = hidden
        self.agents = agents; self.scenarios = max(1, scenarios); self.scenarioDimension = scenarioDimension
        parameters = [Float](repeating: 0, count: Self.parameterCount(inputs: inputs, hidden: hidden, agents: agents,
                                                                       scenarios: max(1, scenarios), scenarioDimension: scenarioDimension))
        var rng = SeededRandom(seed: seed)
        let scale = (2 / Float(inputs)).squareRoot()
        for i in 0..<(hidden * inputs) { parameters[i] = (rng.nextFloat() * 2 - 1) * scale }
        for j in 0..<hidden { parameters[uOffset + j] = (rng.nextFloat() * 2 - 1) * 0.01 }
        for (i, w) in linear.prefix(inputs).enumerated() { parameters[vOffset + i] = w }
    }

    init(inputs: Int, hidden: Int, agents: Int, scenarios: Int, scenarioDimension: Int, parameters: [Float]) throws(ChorusError) {
        guard inputs >= 1, hidden >= 1, agents >= 0, agents <= inputs, scenarios >= 1,
              parameters.count == Self.parameterCount(inputs: inputs, hidden: hidden, agents: agents, scenarios: scenarios,
                                                      scenarioDimension: scenarioDimension),
              parameters.allSatisfy(\.isFinite) else { throw .format("the ranking network is malformed") }
        self.inputs = inputs; self.hidden = hidden; self.agents = agents; self.scenarios = scenarios
        self.scenarioDimension = scenarioDimension; self.parameters = parameters
    }

    /// f(x) for one feature row, default scenario without description.
    @inline(__always)
    public func score(_ x: UnsafePointer<Float>) -> Float {
        parameters.withUnsafeBufferPointer { p in
            var f = Self.forward(p.baseAddress!, inputs, hidden, x, nil)
            for a in 0..<agents { f += p[eOffset + a] * x[a] }
            return f
        }
    }

    /// m_{s,a} for a request: Q · `description` (when given and of the trained width) plus E_s
    /// (when scenario `s` was trained).
    public func modulation(scenario s: Int, description: [Float]) -> [Float] {
        var m = [Float](repeating: 0, count: agents)
        for a in 0..<agents {
            if s < scenarios { m[a] = parameters[eOffset + s * agents + a] }
            if description.count == scenarioDimension {
                var dot: Float = 0
                for j in 0..<scenarioDimension { dot += parameters[qOffset + a * scenarioDimension + j] * description[j] }
                m[a] += dot
            }
        }
        return m
    }

    /// f(x, s) with a precomputed `modulation`.
    @inline(__always)
    public func score(_ x: UnsafePointer<Float>, modulation m: [Float]) -> Float {
        parameters.withUnsafeBufferPointer { p in
            var f = Self.forward(p.baseAddress!, inputs, hidden, x, nil)
            for a in 0..<min(agents, m.count) { f += m[a] * x[a] }
            return f
        }
    }

    /// Forward pass; when `activations` is given, stores the hidden pre-activations there.
    @inline(__always)
    static func forward(_ p: UnsafePointer<Float>, _ n: Int, _ h: Int, _ x: UnsafePointer<Float>,
                        _ activations: UnsafeMutablePointer<Float>?) -> Float {
        let b = p + h * n, u = b + h, v = u + h, c = v + n
        var out = c[0]
        for i in 0..<n { out += v[i] * x[i] }
        for j in 0..<h {
            var z = b[j]
            let w = p + j * n
            for i in 0..<n { z += w[i] * x[i] }
            activations?[j] = z
            if z > 0 { out += u[j] * z }
        }
        return out
    }

    /// Adds dL/dθ for one candidate with dL/df = `g` to `grad`.
    @inline(__always)
    static func backward(_ p: UnsafePointer<Float>, _ n: Int, _ h: Int, _ x: UnsafePointer<Float>,
                         _ activations: UnsafePointer<Float>, _ g: Float, _ grad: UnsafeMutablePointer<Float>) {
        let bOff = h * n, uOff = bOff + h, vOff = uOff + h, cOff = vOff + n
        grad[cOff] += g
        for i in 0..<n { grad[vOff + i] += g * x[i] }
        for j in 0..<h where activations[j] > 0 {
            grad[uOff + j] += g * activations[j]
            let gz = g * p[uOff + j]
            grad[bOff + j] += gz
            let w = grad + j * n
            for i in 0..<n { w[i] += gz * x[i] }
        }
    }

    public struct Training: Sendable {
        public var epochs = 40
        public var learningRate: Float = 0.01
        public var usersPerBatch = 32
        /// L2 on the hidden weights and on Q.
        public var weightDecay: Float = 1e-4
        /// L2 on the per-scenario offsets E: strong, so scenarios borrow from the shared model.
        public var scenarioDecay: Float = 1e-2
        public init() {}
    }

    /// Trains on `users` of `cache` for `epochs`, calling `afterEpoch(epoch, model)` after each
    /// (return true to stop early). `descriptions[s]` is scenario s's description vector.
    public mutating func train(_ cache: ValidationCandidates, users: [Int], settings t: Training, seed: UInt64,
                               descriptions: [[Float]] = [],
                               afterEpoch: (Int, RankingMLP) -> Bool = { _, _ in false }) {
        let n = inputs, h = hidden, count = parameters.count
        let nA = agents, dS = scenarioDimension, qOff = qOffset, eOff = eOffset
        var gm = [Float](repeating: 0, count: max(1, nA))
        var m = [Float](repeating: 0, count: count), s = [Float](repeating: 0, count: count)
        var grad = [Float](repeating: 0, count: count)
        var order = users
        var rng = SeededRandom(seed: seed)
        var step: Float = 0
        let beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8
        var act = [Float](repeating: 0, count: h)
        var f: [Float] = []
        for epoch in 0..<t.epochs {
            // Fisher-Yates with the seeded generator: a fixed order per seed.
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.nextInt(below: i + 1)) }
            var start = 0
            while start < order.count {
                let batch = order[start..<min(order.count, start + t.usersPerBatch)]
                start += t.usersPerBatch
                for i in 0..<count { grad[i] = 0 }
                var used = 0
                parameters.withUnsafeBufferPointer { p in
                    grad.withUnsafeMutableBufferPointer { g in
                        for u in batch {
                            let c = cache.candidates(u)
                            let relevant = cache.relevantCount(u)
                            guard relevant > 0, c > 1 else { continue }
                            used += 1
                            let sc = min(cache.scenario(u), scenarios - 1)
                            let d = sc < descriptions.count && descriptions[sc].count == dS ? descriptions[sc] : []
                            // This query's modulation m_a = Q_a · d + E_{s,a}.
                            var mod = [Float](repeating: 0, count: nA)
                            for a in 0..<nA {
                                var v = p[eOff + sc * nA + a]
                                if !d.isEmpty { for j in 0..<dS { v += p[qOff + a * dS + j] * d[j] } }
                                mod[a] = v
                            }
                            f.removeAll(keepingCapacity: true)
                            var top = -Float.infinity
                            for k in 0..<c {
                                let x = cache.features(u, k)
                                var v = Self.forward(p.baseAddress!, n, h, x, nil)
                                for a in 0..<nA { v += mod[a] * x[a] }
                                f.append(v); top = max(top, v)
                            }
                            for a in 0..<nA { gm[a] = 0 }
                            var z: Float = 0
                            for k in 0..<c { f[k] = expf(f[k] - top); z += f[k] }
                            let invR = 1 / Float(relevant)
                            act.withUnsafeMutableBufferPointer { a in
                                for k in 0..<c {
                                    let gk = f[k] / z - (cache.isRelevant(u, k) ? invR : 0)
                                    if abs(gk) < 1e-7 { continue }
                                    let x = cache.features(u, k)
                                    _ = Self.forward(p.baseAddress!, n, h, x, a.baseAddress!)
                                    Self.backward(p.baseAddress!, n, h, x, a.baseAddress!, gk, g.baseAddress!)
                                    for j in 0..<nA { gm[j] += gk * x[j] }
                                }
                            }
                            for a in 0..<nA {
                                g[eOff + sc * nA + a] += gm[a]
                                if !d.isEmpty { for j in 0..<dS { g[qOff + a * dS + j] += gm[a] * d[j] } }
                            }
                        }
                    }
                }
                guard used > 0 else { continue }
                step += 1
                let scale = 1 / Float(used)
                let c1 = 1 - powf(beta1, step), c2 = 1 - powf(beta2, step)
                for i in 0..<count {
                    var gi = grad[i] * scale
                    if i < h * n || (i >= qOff && i < eOff) { gi += t.weightDecay * parameters[i] }
                    if i >= eOff { gi += t.scenarioDecay * parameters[i] }
                    m[i] = beta1 * m[i] + (1 - beta1) * gi
                    s[i] = beta2 * s[i] + (1 - beta2) * gi * gi
                    parameters[i] -= t.learningRate * (m[i] / c1) / ((s[i] / c2).squareRoot() + eps)
                }
            }
            if afterEpoch(epoch, self) { break }
        }
    }

    func encode(into w: inout ByteWriter) {
        w.write(UInt32(inputs)); w.write(UInt32(hidden))
        w.write(UInt32(agents)); w.write(UInt32(scenarios)); w.write(UInt32(scenarioDimension))
        w.writeArray(parameters)
    }

    static func decode(_ r: inout ByteReader) throws(ChorusError) -> RankingMLP {
        let n = Int(try r.read(UInt32.self)), h = Int(try r.read(UInt32.self))
        let a = Int(try r.read(UInt32.self)), s = Int(try r.read(UInt32.self)), d = Int(try r.read(UInt32.self))
        guard n >= 1, n <= 4096, h >= 1, h <= 4096, a <= n, s >= 1, s <= 65_535, d <= 65_536 else {
            throw .format("ranking network shape is implausible")
        }
        return try RankingMLP(inputs: n, hidden: h, agents: a, scenarios: s, scenarioDimension: d, parameters: try r.readArray(Float.self))
    }
}
