import ChorusCore

/// Every known fact, indexed for the "filtered" setting (Bordes et al. 2013): when ranking the
/// true tail of (h, r, ?), the other known tails of (h, r) are left out of the ranking, and
/// likewise for heads.
public struct KnownTriples: Sendable {
    var tailsOf: [UInt64: [Int32]] = [:]   // (h, r) -> tails
    var headsOf: [UInt64: [Int32]] = [:]   // (t, r) -> heads

    /// Indexes the union of the given lists (typically train, valid and test).
    public init(_ lists: [[Triple]]) {
        for list in lists {
            for t in list {
                tailsOf[Triple.pairKey(t.head, t.relation), default: []].append(t.tail)
                headsOf[Triple.pairKey(t.tail, t.relation), default: []].append(t.head)
            }
        }
    }

    public init(store: TripleStore, extra: [[Triple]] = []) {
        self.init([(0..<store.count).map(store.triple)] + extra)
    }
}

/// Filtered link-prediction metrics.
public struct LinkPredictionMetrics: Sendable, Equatable {
    /// Ranked queries (two per evaluated triple when both sides are ranked).
    public var queries = 0
    public var mrr = 0.0
    public var meanRank = 0.0
    public var hitsAt1 = 0.0, hitsAt3 = 0.0, hitsAt10 = 0.0

    init(ranks: ArraySlice<Double>) {
        queries = ranks.count
        guard queries > 0 else { return }
        for r in ranks {
            mrr += 1 / r; meanRank += r
            if r <= 1 { hitsAt1 += 1 }
            if r <= 3 { hitsAt3 += 1 }
            if r <= 10 { hitsAt10 += 1 }
        }
        let n = Double(queries)
        mrr /= n; meanRank /= n; hitsAt1 /= n; hitsAt3 /= n; hitsAt10 /= n
    }
}

/// Link prediction: for each test triple (h, r, t), every entity is scored as the tail of
/// (h, r, ?) and as the head of (?, r, t); the rank of the true entity among the candidates that
/// are not other known facts ("filtered") gives MRR and Hits@k.
///
/// Ties: the rank is the *realistic* rank, the mean of the optimistic rank (1 + #strictly better)
/// and the pessimistic rank (1 + #better or equal), as PyKEEN reports by default (Berrendorf et al.
/// 2020). It equals the expected rank under a random tie-break; the RotatE authors' code breaks
/// ties by the sort order instead, which only matters for exact ties (rare with float scores).
/// Triples whose entities or relation are missing from training never reach here:
/// `TripleFile.loadSplit` counts and drops them, so they are excluded from the metrics.
public enum LinkPrediction {
    public struct Result: Sendable, Equatable {
        /// Both directions together (what papers report).
        public var both: LinkPredictionMetrics
        /// Predicting heads (?, r, t) only, and tails (h, r, ?) only.
        public var head: LinkPredictionMetrics
        public var tail: LinkPredictionMetrics
    }

    /// - Throws: `.invalidArgument` for a triple whose ids fall outside the model.
    /// - Complexity: O(|triples| · entities · d), split across `threads` (0 = all CPUs).
    public static func evaluate(_ model: KnowledgeGraphModel, triples: [Triple], known: KnownTriples,
                                threads: Int = 0) throws(ChorusError) -> Result {
        for t in triples {
            try model.check(entity: t.head); try model.check(entity: t.tail); try model.check(relation: t.relation)
        }
        let n = triples.count
        let ne = model.entityCount
        let threads = threads > 0 ? threads : Parallel.cpuCount
        var ranks = [Double](repeating: 0, count: 2 * n)   // [heads..., tails...]
        let workers = max(1, min(threads, 2 * n))
        var scratch: [FloatMatrix] = []
        for _ in 0..<workers { scratch.append(try FloatMatrix(rows: 2, cols: max(ne, model.entities.cols), zeroed: false)) }
        ranks.withUnsafeMutableBufferPointer { out in
            let box = SendableBox((model, triples, known, scratch, out))
            Parallel.forEach(count: 2 * n, threads: workers, grain: 8) { w, k in
                let (model, triples, known, scratch, out) = box.value
                let predictTail = k >= triples.count
                let t = triples[predictTail ? k - triples.count : k]
                let scores = scratch[w].row(0), q = scratch[w].row(1)
                let anchor = predictTail ? t.head : t.tail, target = predictTail ? t.tail : t.head
                model.scoreAllUnchecked(anchor: anchor, relation: t.relation, predictTail: predictTail, query: q, into: scores)
                let truth = scores[Int(target)]
                let key = Triple.pairKey(anchor, t.relation)
                if let others = predictTail ? known.tailsOf[key] : known.headsOf[key] {
                    // Known triples may name entities the model never saw (added after training).
                    for e in others where e != target && Int(e) < ne { scores[Int(e)] = -.infinity }
                }
                scores[Int(target)] = -.infinity
                var better = 0, equal = 0
                for e in 0..<model.entityCount {
                    let s = scores[e]
                    if s > truth { better += 1 } else if s == truth { equal += 1 }
                }
                out[k] = 1 + Double(better) + Double(equal) / 2
            }
        }
        return Result(both: LinkPredictionMetrics(ranks: ranks[...]), head: LinkPredictionMetrics(ranks: ranks[0..<n]),
                      tail: LinkPredictionMetrics(ranks: ranks[n...]))
    }
}
