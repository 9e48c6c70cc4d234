import Testing
@testable import ChorusAgents
@testable import ChorusCore
import ChorusCollaborative

// One conformance suite run against every agent kind, through the `AgentFactory` protocol only
// (implicit's `RecommenderBaseTestMixin`): a synthetic case with a known answer, the save/load
// round trip, batch equals single, the same scores for any thread count, and the `canScore` /
// `score` contract. Adding an agent kind is one entry in `AgentKind.all`.

// MARK: - The fixture

/// Two disjoint clusters, small enough to reason about by hand.
///
/// - Users 0, 2, 4, 6 (cluster A) interact with items 0...4, in that order; user 0 stops before
///   item 4, so item 4 is a cluster-A item user 0 has not seen.
/// - Users 1, 3, 5, 7 (cluster B) interact with items 5...9, in that order; item 7 weighs 3, every
///   other interaction 1.
/// - User 8 has no interaction; item 10 has none either (a cold item known by its text and facts).
/// - Texts (dimension 8, unit rows): cluster-A item i is e0 + ½ e(2+i), cluster-B item 5+k is
///   e1 + ½ e(2+k), item 10 is e0 + ½ e7, each scaled by 1/√1.25. Same-cluster cosines are 0.8,
///   cross-cluster ones 0 or 0.2.
/// - Facts: cluster-A items and item 10 have "genre: A", cluster-B items "genre: B"; items 0...9
///   also "kind: Film".
/// - Graph embeddings (kge): the text vectors of items 0...9; item 10 has none.
enum Clusters {
    static let userCount = 9
    static let itemCount = 11
    static let a: [Int32] = [0, 1, 2, 3, 4]
    static let b: [Int32] = [5, 6, 7, 8, 9]
    static let cold: Int32 = 10
    static let dimension = 8

    static let data: TrainingData = {
        var users: [Int32] = [], items: [Int32] = [], weights: [Float] = [], times: [Int64] = []
        var t: Int64 = 1_000
        for u in Int32(0)..<8 {
            for i in u % 2 == 0 ? a : b where !(u == 0 && i == 4) {
                users.append(u); items.append(i); weights.append(i == 7 ? 3 : 1); times.append(t)
                t += 10
            }
        }
        return TrainingData(userCount: userCount, itemCount: itemCount, users: users, items: items, weights: weights, timestamps: times)
    }()

    /// Item `i`'s text vector, written out from the description above.
    static func text(_ i: Int32) -> [Float] {
        var v = [Float](repeating: 0, count: dimension)
        switch i {
        case 0...4: v[0] = 1; v[2 + Int(i)] = 0.5
        case 5...9: v[1] = 1; v[2 + Int(i) - 5] = 0.5
        default: v[0] = 1; v[7] = 0.5
        }
        let scale = 1 / Float(1.25).squareRoot()
        return v.map { $0 * scale }
    }

    static func matrix(_ rows: [[Float]]) -> FloatMatrix {
        // An 11 x 8 allocation: only an out-of-memory machine fails it.
        let m = try! FloatMatrix(rows: rows.count, cols: dimension)
        for (r, row) in rows.enumerated() { for (c, x) in row.enumerated() { m.row(r)[c] = x } }
        return m
    }

    static let textVectors = matrix((0..<Int32(itemCount)).map(text))
    static let graphVectors = matrix((0..<Int32(itemCount)).map { $0 == cold ? [Float](repeating: 0, count: dimension) : text($0) })

    static let facts: KnowledgeGraphTable = {
        // Entities: 0 = "genre: A", 1 = "genre: B", 2 = "kind: Film".
        var start = [0], entities: [Int32] = []
        for i in Int32(0)..<Int32(itemCount) {
            if i == cold { entities += [0] } else { entities += [a.contains(i) ? 0 : 1, 2] }
            start.append(entities.count)
        }
        return KnowledgeGraphTable(itemStart: start, entities: entities, names: ["genre: A", "genre: B", "kind: Film"])
    }()

    static var als: ALSParameters {
        var p = ALSParameters()
        p.factors = 4; p.iterations = 10; p.regularization = 0.1
        return p
    }
    static var bpr: BPRParameters {
        var p = BPRParameters()
        p.factors = 4; p.iterations = 200; p.learningRate = 0.05
        return p
    }
}

/// A request, in a form that can be stored in the table (`AgentRequest` holds pointers).
struct Probe: Sendable, CustomStringConvertible {
    var label: String
    var user: Int32? = nil
    var history: [Int32] = []
    var profile: [Float]? = nil
    var query: [Float]? = nil

    var description: String { label }

    func withRequest<R>(_ body: (AgentRequest) -> R) -> R {
        Self.with(profile) { p in Self.with(query) { q in body(AgentRequest(user: user, history: history, profile: p, query: q)) } }
    }
    private static func with<R>(_ a: [Float]?, _ body: (UnsafeBufferPointer<Float>?) -> R) -> R {
        guard let a else { return body(nil) }
        return a.withUnsafeBufferPointer { body($0) }
    }

    static let userA = Probe(label: "cluster-A user 0", user: 0)
    static let userB = Probe(label: "cluster-B user 1", user: 1)
    static let nobody = Probe(label: "no user, nothing else")
    static let after5 = Probe(label: "anonymous history [5]", history: [5])
    static let profileLike6 = Probe(label: "anonymous, profile text = item 6's", profile: Clusters.text(6))
    static let query7 = Probe(label: "anonymous, query = item 7's text", query: Clusters.text(7))
    static let userAQuery7 = Probe(label: "user 0, query = item 7's text", user: 0, query: Clusters.text(7))

    /// Every request the contract checks run: the known-answer ones and the awkward ones.
    static let all: [Probe] = [
        userA, userB, Probe(label: "cluster-A user 2", user: 2), Probe(label: "cluster-B user 7", user: 7),
        Probe(label: "user 8 without interactions", user: 8),
        Probe(label: "user index 9, unknown to the model", user: 9),
        nobody, after5,
        Probe(label: "user 2 with history [7]", user: 2, history: [7]),
        Probe(label: "history of out-of-range items only", history: [-1, 11, 1_000]),
        Probe(label: "user 0 with an out-of-range history", user: 0, history: [-3, 11]),
        profileLike6,
        Probe(label: "profile of the wrong width", profile: [1, 0, 0]),
        query7, userAQuery7,
        Probe(label: "query of the wrong width", query: [0, 1]),
    ]
}

/// What an agent must answer on the fixture, worked out by hand (never by the code under test).
struct Known: Sendable {
    var probe: Probe
    /// The item scored strictly above every other item.
    var first: Int32? = nil
    /// Every item of `above` scores strictly above every item of `below`.
    var above: [Int32] = []
    var below: [Int32] = []
    var why: String
}

// MARK: - The table

/// One agent kind: its factory, the data it fits on, and its known answers.
struct AgentKind: Sendable, CustomTestStringConvertible {
    var factory: any AgentFactory
    /// Agents this one builds on: fitted first (and restored first) and handed over as
    /// `AgentDecodeContext.previous`, as the engine does.
    var builtOn: [any AgentFactory] = []
    /// True for an agent with no fit of its own (the query agent): it is restored from an empty
    /// section on top of `builtOn`.
    var derived = false
    var data: TrainingData = Clusters.data
    var known: [Known]

    var testDescription: String { factory.name }

    /// Every agent kind. A new agent is one more entry here.
    static let all: [AgentKind] = [
        AgentKind(factory: PopularityAgent.Factory(halfLifeSeconds: 0), known: [
            Known(probe: .nobody, first: 7, above: Clusters.a + Clusters.b, below: [Clusters.cold],
                  why: "item 7 weighs 3 x 4 users = 12, every other item at most 4; item 10 has no interaction"),
            Known(probe: .userA, first: 7, why: "popularity is the same for every user"),
        ]),
        AgentKind(factory: ALSAgent.Factory(parameters: Clusters.als), known: [
            Known(probe: .userA, above: Clusters.a, below: Clusters.b, why: "user 0 shares items only with cluster A (item 4 unseen)"),
            Known(probe: .userB, above: Clusters.b, below: Clusters.a, why: "user 1 shares items only with cluster B"),
        ]),
        AgentKind(factory: BPRAgent.Factory(parameters: Clusters.bpr), known: [
            Known(probe: .userA, above: Clusters.a, below: Clusters.b, why: "user 0 shares items only with cluster A (item 4 unseen)"),
            Known(probe: .userB, above: Clusters.b, below: Clusters.a, why: "user 1 shares items only with cluster B"),
        ]),
        AgentKind(factory: ItemKNNAgent.Factory(parameters: ItemNeighbours.Parameters()), known: [
            Known(probe: .userA, above: Clusters.a, below: Clusters.b + [Clusters.cold],
                  why: "user 0's items co-occur with every cluster-A item and with nothing else"),
            Known(probe: .after5, above: [6, 7, 8, 9], below: Clusters.a + [5],
                  why: "item 5 co-occurs with 6...9 only, and is not its own neighbour"),
        ]),
        AgentKind(factory: SessionAgent.Factory(parameters: ItemNeighbours.Parameters()), known: [
            Known(probe: .after5, first: 6,
                  why: "6 always comes right after 5: T(5,6) = 4/√(4·4) = 1; 7 comes two steps later: T(5,7) = 4·½/4"),
            Known(probe: .userA, above: [1, 2, 3, 4], below: Clusters.b,
                  why: "user 0's items are followed only by cluster-A items (4 always follows 3)"),
        ]),
        AgentKind(factory: KnowledgeAgent.Factory(graph: Clusters.facts), known: [
            Known(probe: .userA, above: Clusters.a + [Clusters.cold], below: Clusters.b,
                  why: "user 0's items all have genre A, which cluster-B items lack (item 10 has only genre A)"),
            Known(probe: .userB, above: Clusters.b, below: Clusters.a + [Clusters.cold], why: "user 1's items all have genre B"),
        ]),
        AgentKind(factory: KnowledgeEmbeddingAgent.Factory(vectors: Clusters.graphVectors), known: [
            Known(probe: .userA, above: Clusters.a, below: Clusters.b,
                  why: "user 0's profile is mostly e0: cos 0.8+ with cluster A, at most 0.06 with cluster B"),
            Known(probe: .userB, above: Clusters.b, below: Clusters.a, why: "user 1's profile is mostly e1"),
        ]),
        AgentKind(factory: ContentAgent.Factory(itemVectors: Clusters.textVectors), known: [
            Known(probe: .userA, above: Clusters.a + [Clusters.cold], below: Clusters.b,
                  why: "user 0's profile is mostly e0, which every cluster-A text and item 10's have"),
            Known(probe: .profileLike6, first: 6, above: Clusters.b, below: Clusters.a + [Clusters.cold],
                  why: "cos with item 6's own text is 1, with other cluster-B texts 0.8, with the rest at most 0.2"),
        ]),
        AgentKind(factory: QueryAgent.Factory(), builtOn: [ContentAgent.Factory(itemVectors: Clusters.textVectors)], derived: true, known: [
            Known(probe: .query7, first: 7, why: "the query is item 7's text: cos 1 against at most 0.8"),
            Known(probe: .userAQuery7, first: 7, why: "the query agent ranks by the query alone"),
        ]),
    ]

    /// A fitted agent and the agents it was built on.
    func make(threads: Int = 2, seed: UInt64 = 7) throws -> (agent: RecommenderAgent, previous: [RecommenderAgent]) {
        let context = FitContext(threads: threads, seed: seed)
        var previous: [RecommenderAgent] = []
        for f in builtOn { previous.append(try f.fit(data, context)) }
        if derived {
            var empty = ByteReader([], context: factory.name)
            return (try factory.decode(&empty, decodeContext(previous)), previous)
        }
        return (try factory.fit(data, context), previous)
    }

    func decodeContext(_ previous: [RecommenderAgent]) -> AgentDecodeContext {
        AgentDecodeContext(userCount: data.userCount, itemCount: data.itemCount, previous: previous)
    }
}

// MARK: - Helpers

/// The agent's scores for `probe`, from a buffer filled with NaN first, so an item the agent does
/// not write shows up as non-finite.
func scores(_ agent: RecommenderAgent, _ probe: Probe, items: Int) -> [Float] {
    var out = [Float](repeating: .nan, count: items)
    probe.withRequest { r in out.withUnsafeMutableBufferPointer { agent.score(r, into: $0) } }
    return out
}

func bits(_ x: [Float]) -> [UInt32] { x.map(\.bitPattern) }

/// Scores of every probe, as bit patterns (for bitwise comparisons).
func allScores(_ agent: RecommenderAgent, items: Int) -> [[UInt32]] {
    Probe.all.map { bits(scores(agent, $0, items: items)) }
}

/// The `k` best items by sorting: score descending, then index ascending; -inf and NaN never chosen.
func sortedTop(_ s: [Float], k: Int) -> [(index: Int32, score: Float)] {
    let order = s.indices.filter { s[$0] > -Float.infinity }.sorted { s[$0] > s[$1] || (s[$0] == s[$1] && $0 < $1) }
    return order.prefix(k).map { (Int32($0), s[$0]) }
}

/// One slot per thread, written through the buffer's pointer. (A `var` array here would not do:
/// `slots.values[w] = x` is a modify access of the whole array, so threads writing different slots
/// at once break Swift's exclusivity rule; ThreadSanitizer reports it as a Swift access race.)
final class Slots<T>: @unchecked Sendable {
    let values: UnsafeMutableBufferPointer<T?>
    init(_ n: Int) {
        values = .allocate(capacity: n)
        values.initialize(repeating: nil)
    }
    deinit {
        _ = values.deinitialize()
        values.deallocate()
    }
}

// MARK: - The suite

@Suite struct AgentConformanceTests {
    @Test func theTableCoversEveryAgentKind() {
        // The kinds of Sources/ChorusAgents/README.md's table.
        let kinds = ["popularity", "als", "bpr", "itemknn", "session", "kg", "kge", "content", "query"]
        #expect(AgentKind.all.map(\.factory.name) == kinds)
    }

    @Test(arguments: AgentKind.all)
    func knownAnswer(_ kind: AgentKind) throws {
        let (agent, _) = try kind.make()
        #expect(agent.name == kind.factory.name)
        #expect(!kind.known.isEmpty)
        for k in kind.known {
            let p = k.probe
            #expect(p.withRequest { agent.canScore($0) }, "\(p): the agent says it cannot score")
            let s = scores(agent, p, items: kind.data.itemCount)
            if let first = k.first {
                for i in s.indices where i != Int(first) {
                    #expect(s[Int(first)] > s[i], "\(p): item \(first) (\(s[Int(first)])) not above item \(i) (\(s[i])): \(k.why)")
                }
            }
            for x in k.above {
                for y in k.below {
                    #expect(s[Int(x)] > s[Int(y)], "\(p): item \(x) (\(s[Int(x)])) not above item \(y) (\(s[Int(y)])): \(k.why)")
                }
            }
        }
    }

    @Test(arguments: AgentKind.all)
    func saveLoadRoundTrip(_ kind: AgentKind) throws {
        let (agent, previous) = try kind.make()
        // Restore what it builds on first, each from its own section, as a snapshot does.
        var restored: [RecommenderAgent] = []
        for (f, p) in zip(kind.builtOn, previous) {
            var w = ByteWriter()
            p.encode(into: &w)
            var r = ByteReader(w.bytes, context: f.name)
            restored.append(try f.decode(&r, kind.decodeContext(restored)))
            #expect(r.isAtEnd)
        }
        var w = ByteWriter()
        agent.encode(into: &w)
        var r = ByteReader(w.bytes, context: kind.factory.name)
        let loaded = try kind.factory.decode(&r, kind.decodeContext(restored))
        #expect(r.isAtEnd, "decode left \(r.remaining) of \(w.bytes.count) bytes")
        #expect(loaded.name == agent.name)
        #expect(allScores(loaded, items: kind.data.itemCount) == allScores(agent, items: kind.data.itemCount))
        for p in Probe.all {
            #expect(p.withRequest { loaded.canScore($0) } == p.withRequest { agent.canScore($0) }, "\(p)")
        }
        // Saving the restored agent writes the same bytes.
        var again = ByteWriter()
        loaded.encode(into: &again)
        #expect(again.bytes == w.bytes)
    }

    @Test(arguments: AgentKind.all)
    func truncatedSectionsAreRefused(_ kind: AgentKind) throws {
        let (agent, previous) = try kind.make()
        var w = ByteWriter()
        agent.encode(into: &w)
        let bytes = w.bytes
        for cut in Set([0, 1, bytes.count / 2, bytes.count - 1]).sorted() where cut >= 0 && cut < bytes.count {
            var r = ByteReader(Array(bytes[0..<cut]), context: kind.factory.name)
            #expect(throws: ChorusError.self, "cut at \(cut) of \(bytes.count)") {
                _ = try kind.factory.decode(&r, kind.decodeContext(previous))
            }
        }
        if kind.derived {
            // Without what it builds on, a derived agent cannot be restored.
            var r = ByteReader(bytes, context: kind.factory.name)
            #expect(throws: ChorusError.self) { _ = try kind.factory.decode(&r, kind.decodeContext([])) }
        }
    }

    @Test(arguments: AgentKind.all)
    func batchEqualsSingle(_ kind: AgentKind) throws {
        let (agent, _) = try kind.make()
        let n = kind.data.itemCount
        let single = Probe.all.map { p in bits(scores(agent, p, items: n)) }
        // In reverse order, and interleaved with other requests (each scored twice, another between).
        for (i, p) in Probe.all.enumerated().reversed() { #expect(bits(scores(agent, p, items: n)) == single[i], "\(p), reversed") }
        for (i, p) in Probe.all.enumerated() {
            let other = Probe.all[(i * 7 + 3) % Probe.all.count]
            let first = bits(scores(agent, p, items: n))
            _ = scores(agent, other, items: n)
            #expect(first == single[i] && bits(scores(agent, p, items: n)) == single[i], "\(p), interleaved with \(other)")
        }
        // From four threads at once, each in its own order.
        let workers = 4
        let results = Slots<[[UInt32]]>(workers)
        let probes = Probe.all
        Parallel.forEachChunk(count: workers, threads: workers) { _, range in
            for w in range {
                var mine = [[UInt32]](repeating: [], count: probes.count)
                for step in 0..<probes.count {
                    let i = (step * (2 * w + 1) + w) % probes.count
                    mine[i] = bits(scores(agent, probes[i], items: n))
                }
                results.values[w] = mine
            }
        }
        for w in 0..<workers { #expect(results.values[w] == single, "thread \(w)") }
        // `propose` is the score's top k.
        for p in Probe.all {
            let s = scores(agent, p, items: n)
            for k in [1, 3, n] {
                let proposed = p.withRequest { agent.propose($0, k: k, itemCount: n) }
                let expected = sortedTop(s, k: k)
                #expect(proposed.map(\.index) == expected.map(\.index), "\(p), k = \(k)")
                #expect(bits(proposed.map(\.score)) == bits(expected.map(\.score)), "\(p), k = \(k)")
            }
        }
    }

    @Test(arguments: AgentKind.all)
    func theSameScoresForAnyThreadCount(_ kind: AgentKind) throws {
        let n = kind.data.itemCount
        let one = allScores(try kind.make(threads: 1).agent, items: n)
        for threads in [2, 4] {
            let many = allScores(try kind.make(threads: threads).agent, items: n)
            #expect(many == one, "\(threads) threads")
        }
        // And the same again for the same seed.
        let again = allScores(try kind.make(threads: 1).agent, items: n)
        #expect(again == one)
    }

    @Test(arguments: AgentKind.all)
    func canScoreAndScoreAgree(_ kind: AgentKind) throws {
        let (agent, _) = try kind.make()
        let n = kind.data.itemCount
        var silent = 0
        for p in Probe.all {
            let s = scores(agent, p, items: n)
            #expect(s.allSatisfy { $0.isFinite }, "\(p): \(s)")
            if !p.withRequest({ agent.canScore($0) }) {
                silent += 1
                #expect(s.allSatisfy { $0 == 0 }, "\(p): canScore is false but the scores are \(s)")
            }
        }
        // Every agent but popularity has requests it cannot score ("no user, nothing else").
        #expect(kind.factory.name == "popularity" ? silent == 0 : silent > 0)
    }

    @Test(arguments: AgentKind.all)
    func itemVectorsAndReasonsKeepTheirPromises(_ kind: AgentKind) throws {
        let (agent, _) = try kind.make()
        let n = kind.data.itemCount
        if let v = agent.itemVectors {
            #expect(v.rows == n)
            for i in 0..<v.rows {
                let norm = (0..<v.cols).reduce(Float(0)) { $0 + v.row(i)[$1] * v.row(i)[$1] }
                #expect(norm == 0 || abs(norm - 1) < 1e-5, "item \(i): squared norm \(norm)")
            }
        }
        // A reason rests on an item of the user's training history or of the request.
        let histories = UserHistories(kind.data)
        for p in Probe.all {
            var own = Set(p.history)
            if let u = p.user, Int(u) < histories.users { own.formUnion(histories.of(Int(u))) }
            for item in Int32(0)..<Int32(n) {
                guard let why = p.withRequest({ agent.reason($0, item: item) }) else { continue }
                #expect(!why.phrase.isEmpty)
                if let because = why.becauseItem { #expect(own.contains(because), "\(p), item \(item): because of \(because)") }
            }
        }
    }
}
