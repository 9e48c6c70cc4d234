#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
@testable import ChorusAgents
@testable import ChorusCore

/// An agent with a fixed score table (users x items): validation candidates for the coordinator's
/// models without fitting anything.
final class FixedScoresAgent: RecommenderAgent {
    let name: String
    let table: [[Float]]
    init(name: String, table: [[Float]]) { self.name = name; self.table = table }
    var modelBytes: Int { 0 }
    var itemVectors: FloatMatrix? { nil }
    func canScore(_ request: AgentRequest) -> Bool { request.user.map { Int($0) < table.count } ?? false }
    func score(_ request: AgentRequest, into scores: UnsafeMutableBufferPointer<Float>) {
        guard canScore(request), let u = request.user else { scores.update(repeating: 0); return }
        for i in scores.indices { scores[i] = table[Int(u)][i] }
    }
    func encode(into w: inout ByteWriter) {}
}

/// The ListNet loss the network is trained on, computed here in Double: per user with relevant
/// candidates, −(1/|R|) Σ_{i∈R} log softmax(f)_i; the mean over those users.
func listNetLoss(_ net: RankingMLP, _ cache: ValidationCandidates) -> Double {
    var total = 0.0, users = 0
    for u in 0..<cache.users where cache.relevantCount(u) > 0 {
        let f = (0..<cache.candidates(u)).map { Double(net.score(cache.features(u, $0))) }
        let top = f.max()!
        let logZ = top + log(f.reduce(0) { $0 + exp($1 - top) })
        var loss = 0.0
        for k in f.indices where cache.isRelevant(u, k) { loss -= f[k] - logZ }
        total += loss / Double(cache.relevantCount(u))
        users += 1
    }
    return total / Double(max(1, users))
}

@Suite struct RankingMLPTests {
    /// The 16 binary rows of width 4. With v = (8, 4, 2, 1) row r's linear score is r itself, so
    /// neighbours in the linear ranking are 1 apart. The hidden part starts small: |u_j| ≤ 0.01,
    /// |W_ji| ≤ √(2/4), b = c = 0, so |f(x) − vᵀx| ≤ 16 · 0.01 · 4 · √½ ≈ 0.453 < ½, whatever the seed.
    @Test(arguments: [UInt64(1), 2, 3, 99])
    func startsAtTheLinearBlendsRanking(seed: UInt64) {
        let net = RankingMLP(inputs: 4, hidden: 16, linear: [8, 4, 2, 1], seed: seed)
        let rows: [[Float]] = (0..<16).map { r in (0..<4).map { Float((r >> (3 - $0)) & 1) } }
        let f = rows.map { x in x.withUnsafeBufferPointer { net.score($0.baseAddress!) } }
        for r in 0..<16 { #expect(abs(f[r] - Float(r)) <= 0.453, "row \(r): \(f[r])") }
        let order = f.indices.sorted { f[$0] > f[$1] }
        #expect(order == Array((0..<16).reversed()))
    }

    /// Two agents: "good" scores each user's two relevant items in [0.8, 1) and the rest in
    /// [0, 0.7), so it separates them; "noise" is uniform. The network starts trusting only noise.
    @Test func trainingLowersTheListNetLossOnASeparableCase() throws {
        let users = 40, items = 12
        let relevant: @Sendable (Int) -> [Int32] = { u in [Int32(u % items), Int32((u + 5) % items)] }
        var rng = SeededRandom(seed: 3)
        var good = [[Float]](), noise = [[Float]]()
        for u in 0..<users {
            let r = Set(relevant(u))
            good.append((0..<items).map { r.contains(Int32($0)) ? 0.8 + 0.2 * rng.nextFloat() : 0.7 * rng.nextFloat() })
            noise.append((0..<items).map { _ in rng.nextFloat() })
        }
        let agents: [RecommenderAgent] = [FixedScoresAgent(name: "good", table: good), FixedScoresAgent(name: "noise", table: noise)]
        let cache = try ValidationCandidates(
            agents: agents, itemCount: items, quota: items, threads: 1, users: users,
            request: { u, body in body(AgentRequest(user: Int32(u))) }, seen: { _ in [] }, relevant: relevant,
            activity: { _ in 0 }, warmth: [Float](repeating: 0, count: items))
        #expect((0..<users).allSatisfy { cache.candidates($0) == items && cache.relevantCount($0) == 2 })

        var start = [Float](repeating: 0, count: cache.layout.count)
        start[cache.layout.score(1)] = 1
        var net = RankingMLP(inputs: cache.layout.count, hidden: 8, linear: start, seed: 5, agents: 2)
        let before = listNetLoss(net, cache)
        var settings = RankingMLP.Training()
        settings.epochs = 30; settings.learningRate = 0.05; settings.usersPerBatch = 8
        var epochs = 0
        net.train(cache, users: Array(0..<users), settings: settings, seed: 9) { _, _ in epochs += 1; return false }
        let after = listNetLoss(net, cache)
        #expect(epochs == 30)
        #expect(after < 0.5 * before, "ListNet loss \(before) -> \(after)")
        // It now ranks a relevant item first for every user.
        for u in 0..<users {
            let f = (0..<items).map { net.score(cache.features(u, $0)) }
            #expect(cache.isRelevant(u, f.indices.max { f[$0] < f[$1] }!), "user \(u)")
        }
        // The same seed trains the same network.
        var again = RankingMLP(inputs: cache.layout.count, hidden: 8, linear: start, seed: 5, agents: 2)
        again.train(cache, users: Array(0..<users), settings: settings, seed: 9)
        #expect(again == net)
    }

    /// The layout RankingMLP.parameters documents, for 6 inputs, 2 hidden units, 2 agents, 2
    /// scenarios and descriptions of width 3: W 2x6 (12), b 2, u 2, v 6, c 1, then Q (2 x 3) at 23
    /// and E (2 x 2) at 29; 33 in all.
    static func modulated() throws -> RankingMLP {
        var p = [Float](repeating: 0, count: 33)
        p.replaceSubrange(23..<29, with: [1, 2, 3, -1, 0, 0.5] as [Float])   // Q_0 = (1, 2, 3), Q_1 = (−1, 0, ½)
        p.replaceSubrange(29..<33, with: [0.1, 0.2, 0.3, 0.4] as [Float])    // E_0 = (0.1, 0.2), E_1 = (0.3, 0.4)
        return try RankingMLP(inputs: 6, hidden: 2, agents: 2, scenarios: 2, scenarioDimension: 3, parameters: p)
    }

    @Test func modulationIsQTimesTheDescriptionPlusTheScenarioOffset() throws {
        let net = try Self.modulated()
        let d: [Float] = [1, 1, 2]   // Q · d = (1 + 2 + 6, −1 + 0 + 1) = (9, 0)
        func close(_ a: [Float], _ b: [Float]) -> Bool { a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) < 1e-6 } }
        #expect(close(net.modulation(scenario: 0, description: d), [9.1, 0.2]))
        #expect(close(net.modulation(scenario: 1, description: d), [9.3, 0.4]))
        // A scenario the network was not trained on gets Q · d alone; a description of another
        // width (or none) adds nothing to E.
        #expect(close(net.modulation(scenario: 5, description: d), [9, 0]))
        #expect(close(net.modulation(scenario: 1, description: [1, 1]), [0.3, 0.4]))
        #expect(close(net.modulation(scenario: 7, description: []), [0, 0]))
        // W, b, u, v, c are 0: f(x, m) = Σ_a m_a x_a, and score(x) is the default scenario's.
        let x: [Float] = [0.5, 0.25, 1, 1, 1, 1]
        x.withUnsafeBufferPointer { x in
            let p = x.baseAddress!
            #expect(abs(net.score(p, modulation: [9.1, 0.2]) - (9.1 * 0.5 + 0.2 * 0.25)) < 1e-5)
            #expect(abs(net.score(p) - (0.1 * 0.5 + 0.2 * 0.25)) < 1e-6)
            #expect(net.score(p) == net.score(p, modulation: net.modulation(scenario: 0, description: [])))
        }
        #expect(RankingMLP(inputs: 6, hidden: 4, linear: [], seed: 1, agents: 3).modulation(scenario: 0, description: []).count == 3)
        #expect(throws: ChorusError.self) {
            _ = try RankingMLP(inputs: 6, hidden: 2, agents: 2, scenarios: 2, scenarioDimension: 3, parameters: [Float](repeating: 0, count: 32))
        }
    }

    @Test func encodeDecodeRoundTrip() throws {
        var net = try Self.modulated()
        for i in 0..<23 { net.parameters[i] = Float(i % 7) * 0.125 - 0.3 }   // a hidden part worth comparing
        var w = ByteWriter()
        net.encode(into: &w)
        var r = ByteReader(w.bytes, context: "network")
        let back = try RankingMLP.decode(&r)
        #expect(r.isAtEnd)
        #expect(back == net)
        let x: [Float] = [0.9, 0.1, 0.5, 0.25, 0.3, 0.7]
        x.withUnsafeBufferPointer { x in
            let m = net.modulation(scenario: 1, description: [0.2, 0.4, 0.6])
            #expect(back.score(x.baseAddress!, modulation: m).bitPattern == net.score(x.baseAddress!, modulation: m).bitPattern)
        }
        for cut in [0, 12, w.bytes.count - 1] {
            var t = ByteReader(Array(w.bytes[0..<cut]), context: "network")
            #expect(throws: ChorusError.self) { _ = try RankingMLP.decode(&t) }
        }
        net.parameters[3] = .nan
        var bad = ByteWriter()
        net.encode(into: &bad)
        var br = ByteReader(bad.bytes, context: "network")
        #expect(throws: ChorusError.self) { _ = try RankingMLP.decode(&br) }
    }
}
