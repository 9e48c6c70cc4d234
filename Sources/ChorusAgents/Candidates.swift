import ChorusCore

/// The first stage of ranking: every agent proposes its best `quota` items for a request, and the
/// union becomes the candidate set that the coordinator ranks. Each candidate carries the features
/// the coordinator reads (`Features`): per agent its normalised score and a rank signal, plus the
/// user's activity and the item's warmth.
///
/// The same code builds candidates when serving and when fitting the coordinator on validation
/// users, so the coordinator is trained on exactly what it will see.
public enum Candidates {
    /// Feature layout for `agents` agents: [s_0 … s_{A−1}, r_0 … r_{A−1}, activity, warmth], where
    /// s_a is agent a's min-max normalised score (0 when the agent does not take part), r_a =
    /// 1 / log2(2 + rank) when the item is in agent a's proposals (0 otherwise), activity =
    /// log(1 + history length) / 8 and warmth = log(1 + users who interacted with the item) / 8.
    /// Warmth lets the ranking network learn whom to trust for items with few or no interactions
    /// (cold items: only the content and knowledge-graph agents know them).
    public struct Features: Sendable, Equatable {
        public let agents: Int
        public init(agents: Int) { self.agents = agents }
        public var count: Int { 2 * agents + 2 }
        @inline(__always) public func score(_ a: Int) -> Int { a }
        @inline(__always) public func rank(_ a: Int) -> Int { agents + a }
        public var activity: Int { 2 * agents }
        public var warmth: Int { 2 * agents + 1 }
    }

    /// One request's candidates: item indices and a row of features each (row-major).
    public struct Set: Sendable {
        public var items: [Int32] = []
        public var features: [Float] = []
        public init() {}
    }

    /// The one candidate routine of serving and of the coordinator's validation: every agent that
    /// can score `request` (or the `fallback` agent alone when none can) scores the catalogue into
    /// its row of `scratch`, min-max normalised (`Coordinator.normalize`); `mask` then sets what
    /// must not be proposed to -infinity (seen, blocked items), and the rows become the candidate
    /// set (`build`).
    /// - Parameters:
    ///   - scratch: agents.count rows of `itemCount` floats.
    ///   - rankScratch: `itemCount` Int32s, all -1 on entry and on return.
    ///   - score: how agent `a` fills its row, when not by `agents[a].score(request, ...)`: serving
    ///     takes rows a batch already scored and adds the items past the model's (online new items).
    ///   - indexed: serving over a large catalogue: agent `a`'s proposals from its index
    ///     (`RecommenderAgent.indexedProposals`), nil to score its whole row; with `maskValue`, what
    ///     `mask` does to one item's normalised score (-infinity: masked).
    /// - Returns: the agents that took part, ascending.
    @discardableResult
    static func collect(agents: [RecommenderAgent], request: AgentRequest, fallback: Int?, itemCount: Int, quota: Int,
                        activity: Float, warmth: UnsafePointer<Float>, scratch: FloatMatrix, rankScratch: UnsafeMutablePointer<Int32>,
                        score: ((Int, UnsafeMutableBufferPointer<Float>) -> Void)? = nil,
                        mask: (UnsafeMutableBufferPointer<Float>) -> Void,
                        indexed: ((Int) -> IndexedProposals?)? = nil, maskValue: ((Int32, Float) -> Float)? = nil,
                        into out: inout Set) -> [Int] {
        var used = agents.indices.filter { agents[$0].canScore(request) }
        if used.isEmpty, let fallback { used = [fallback] }
        var rows = [UnsafeMutablePointer<Float>?](repeating: nil, count: agents.count)
        var sources = [Indexed?](repeating: nil, count: agents.count)
        for a in used {
            if let maskValue, let p = indexed?(a) {
                sources[a] = Indexed(p, mask: maskValue)
                continue
            }
            let row = UnsafeMutableBufferPointer(start: scratch.row(a), count: itemCount)
            if let score { score(a, row) } else { agents[a].score(request, into: row) }
            Coordinator.normalize(row)
            mask(row)
            rows[a] = row.baseAddress
        }
        build(rows: rows, indexed: sources, itemCount: itemCount, quota: quota, activity: activity, warmth: warmth,
              rankScratch: rankScratch, into: &out)
        return used
    }

    /// An agent taking part through its index: its proposals normalised as `Coordinator.normalize`
    /// would normalise its row (by the index's score range) and masked, best first.
    struct Indexed {
        let proposals: IndexedProposals
        let mask: (Int32, Float) -> Float
        let lo: Float, inv: Float, flat: Bool
        /// Its proposals' normalised, masked scores, best first (masked ones dropped).
        let top: [(index: Int32, score: Float)]
        let scoreOf: [Int32: Float]

        init(_ p: IndexedProposals, mask: @escaping (Int32, Float) -> Float) {
            proposals = p; self.mask = mask
            let span = p.hi - p.lo
            flat = !(span > 0) || !span.isFinite
            lo = p.lo; inv = flat ? 0 : 1 / span
            var top: [(index: Int32, score: Float)] = []
            for (i, raw) in p.top {
                let v = mask(i, flat ? 0 : (raw - p.lo) * (1 / span))
                if v > -.infinity { top.append((i, v)) }
            }
            top.sort { $0.score > $1.score || ($0.score == $1.score && $0.index < $1.index) }
            self.top = top
            scoreOf = Dictionary(top.map { ($0.index, $0.score) }, uniquingKeysWith: { first, _ in first })
        }

        /// The normalised, masked score of any item (a dot product for one it did not propose).
        func value(_ item: Int32) -> Float {
            if let s = scoreOf[item] { return s }
            return mask(item, flat ? 0 : (proposals.score(item) - lo) * inv)
        }
    }

    /// Builds the candidate set from normalised, masked score rows (`rows[a]` for each agent that
    /// takes part, nil for the others; masked items hold -infinity in every row).
    /// - Parameters:
    ///   - quota: proposals per agent.
    ///   - warmth: `itemCount` item warmths (`itemWarmth`).
    ///   - rankScratch: `itemCount` Int32s, all -1 on entry and on return.
    public static func build(rows: [UnsafeMutablePointer<Float>?], itemCount: Int, quota: Int, activity: Float, warmth: UnsafePointer<Float>,
                             rankScratch: UnsafeMutablePointer<Int32>, into out: inout Set) {
        build(rows: rows, indexed: [Indexed?](repeating: nil, count: rows.count), itemCount: itemCount, quota: quota, activity: activity,
              warmth: warmth, rankScratch: rankScratch, into: &out)
    }

    /// `build` with agents taking part through their indexes (`indexed[a]`, with `rows[a]` nil).
    static func build(rows: [UnsafeMutablePointer<Float>?], indexed: [Indexed?], itemCount: Int, quota: Int, activity: Float,
                      warmth: UnsafePointer<Float>, rankScratch: UnsafeMutablePointer<Int32>, into out: inout Set) {
        let agents = rows.count
        let layout = Features(agents: agents)
        out.items.removeAll(keepingCapacity: true)
        out.features.removeAll(keepingCapacity: true)
        // Proposals, agent by agent; an item's first appearance decides its candidate slot.
        var proposals: [[(index: Int32, score: Float)]] = []
        proposals.reserveCapacity(agents)
        for a in 0..<agents {
            let top: [(index: Int32, score: Float)]
            if let row = rows[a] {
                top = TopK.select(UnsafeBufferPointer(start: row, count: itemCount), k: quota)
            } else if let source = indexed[a] {
                top = Array(source.top.prefix(quota))
            } else {
                proposals.append([]); continue
            }
            proposals.append(top)
            for t in top where rankScratch[Int(t.index)] < 0 {
                rankScratch[Int(t.index)] = Int32(out.items.count)
                out.items.append(t.index)
            }
        }
        let f = layout.count
        out.features = [Float](repeating: 0, count: out.items.count * f)
        out.features.withUnsafeMutableBufferPointer { feat in
            for (slot, item) in out.items.enumerated() {
                let base = slot * f
                for a in 0..<agents {
                    let s: Float
                    if let row = rows[a] { s = row[Int(item)] } else if let source = indexed[a] { s = source.value(item) } else { continue }
                    feat[base + layout.score(a)] = s.isFinite ? s : 0
                }
                feat[base + layout.activity] = activity
                feat[base + layout.warmth] = warmth[Int(item)]
            }
            for a in 0..<agents {
                // Tied scores share the rank of the first of them, so an agent that cannot tell
                // items apart (all of them cold to it, say) gives them the same rank signal.
                var rank = 0
                for (position, t) in proposals[a].enumerated() {
                    if position > 0 && t.score != proposals[a][position - 1].score { rank = position }
                    let slot = Int(rankScratch[Int(t.index)])
                    feat[slot * f + layout.rank(a)] = 1 / log2(Float(rank + 2))
                }
            }
        }
        for item in out.items { rankScratch[Int(item)] = -1 }
    }

    /// Each item's warmth, log(1 + n_i) / 8 with n_i the users who interacted with item i in
    /// `userItems` (users x items: the data the agents were fitted on).
    public static func itemWarmth(_ userItems: SparseMatrix) -> [Float] {
        var users = [Int32](repeating: 0, count: userItems.cols)
        for i in userItems.colIndex { users[Int(i)] += 1 }
        return users.map { Float(log1p(Double($0)) / 8) }
    }

    /// log(1 + n) / 8: a user's activity on a scale near [0, 1] for n up to a few thousand.
    @inline(__always) public static func activity(historyLength n: Int) -> Float { Float(log1p(Double(n)) / 8) }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
