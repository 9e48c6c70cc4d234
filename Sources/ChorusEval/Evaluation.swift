import ChorusCore
import ChorusAgents

/// One line of an evaluation: the mean top-k metrics of one recommender (an agent alone or the
/// coordinator's blend) over the test users.
public struct EvaluationRow: Sendable, Equatable {
    /// The agent's name, or `Evaluation.blendName` for the blend.
    public var name: String
    public var k: Int
    /// Mean Recall@k (`hits / min(k, |relevant|)`, see `RankingMetrics.recall`).
    public var recall: Double
    /// Mean NDCG@k (binary relevance, log2 discount).
    public var ndcg: Double
    /// Share of test users with at least one hit in the top k.
    public var hitRate: Double
    /// Mean reciprocal rank of the first hit within k.
    public var mrr: Double
    /// Distinct items in all test users' top k / the engine's catalogue size.
    public var coverage: Double
    /// Test users evaluated (users with at least one relevant item).
    public var users: Int
    /// Test users the model did not know, served by the cold-start fallback.
    public var coldUsers: Int
    /// Wall time of the recommend calls.
    public var seconds: Double
    /// The agent's blend weight (nil for the blend row).
    public var weight: Float?
    /// Mean intra-list diversity of the lists (1 − cosine of item vectors over pairs); nil when
    /// the engine has no item vectors.
    public var diversity: Double? = nil
}

/// The outcome of `Evaluation.run`: one row per agent, then the blend.
public struct EvaluationResult: Sendable {
    public var k: Int
    public var rows: [EvaluationRow]
    public var agentNames: [String]
    public var blendWeights: [Float]
    /// Distinct items the engine was fitted on (the coverage denominator).
    public var catalogueSize: Int
    public var fitSeconds: Double

    public init(k: Int, rows: [EvaluationRow], agentNames: [String], blendWeights: [Float], catalogueSize: Int, fitSeconds: Double) {
        self.k = k; self.rows = rows; self.agentNames = agentNames; self.blendWeights = blendWeights
        self.catalogueSize = catalogueSize; self.fitSeconds = fitSeconds
    }
}

/// Offline evaluation of the engine through its public Swift API only: fit on a training set,
/// recommend the top k unseen items to every test user, and score the lists against the held-out
/// items (see `TemporalSplit`).
public enum Evaluation {
    public static let blendName = "blend"

    /// Scores a fitted engine on `test`.
    ///
    /// - Parameters:
    ///   - engine: a fitted engine.
    ///   - test: relevant items per test user; users with an empty set are skipped.
    ///   - k: the list length (1 ... engine.itemCount).
    ///   - recommenders: what to evaluate, as `RecommendOptions.agent` values: an agent name, or
    ///     nil for the blend. Default: every agent in `engine.agentNames`, then the blend.
    ///   - batchSize: users per `recommend` call.
    /// - Returns: one row per entry of `recommenders`, in that order.
    /// - Throws: `.invalidArgument` for k out of range; whatever `recommend` throws (`.notFitted`,
    ///   `.notFound` for an unknown agent).
    /// - Complexity: one recommend per test user and recommender; metrics O(k) per list.
    public static func evaluate(engine: Engine, test: [Int64: Set<Int64>], k: Int,
                                recommenders: [String?]? = nil, options base: RecommendOptions = RecommendOptions(),
                                label: String = "", batchSize: Int = 256) throws(ChorusError) -> [EvaluationRow] {
        let catalogue = engine.itemCount
        guard k >= 1 else { throw .invalidArgument("k must be at least 1, got \(k)") }
        guard k <= catalogue else { throw .invalidArgument("k = \(k) exceeds the \(catalogue) items the engine knows") }
        let batch = max(1, batchSize)
        let users = test.keys.filter { !(test[$0]!.isEmpty) }.sorted()
        let names = engine.agentNames
        let weights = engine.blendWeights
        // The query agent only answers requests with a query: alone it would be popularity again.
        let which = recommenders ?? (names.filter { $0 != "query" }.map { Optional($0) } + [nil])
        var rows: [EvaluationRow] = []
        for agent in which {
            var options = base
            options.agent = agent
            var acc = MetricAccumulator(k: k)
            var cold = 0
            var diversitySum = 0.0, diversityLists = 0
            let clock = Stopwatch()
            var start = 0
            while start < users.count {
                let chunk = Array(users[start..<min(users.count, start + batch)])
                for list in try engine.recommend(users: chunk, k: k, options: options) {
                    if list.coldFallback { cold += 1 }
                    acc.add(list.items, relevant: test[list.user] ?? [])
                    if let d = engine.intraListDiversity(list.items) { diversitySum += d; diversityLists += 1 }
                }
                start += batch
            }
            let weight = agent.flatMap { a in names.firstIndex(of: a).flatMap { $0 < weights.count ? weights[$0] : nil } }
            rows.append(EvaluationRow(name: (agent ?? blendName) + label, k: k, recall: acc.recall, ndcg: acc.ndcg,
                                      hitRate: acc.hitRate, mrr: acc.mrr, coverage: acc.coverage(catalogueSize: catalogue),
                                      users: acc.users, coldUsers: cold, seconds: clock.seconds, weight: weight,
                                      diversity: diversityLists > 0 ? diversitySum / Double(diversityLists) : nil))
        }
        return rows
    }

    /// Fits a fresh engine on `train` and evaluates every agent and the blend on `test`.
    ///
    /// - Parameters:
    ///   - itemTexts: texts of items (the ones in `train` are given to the engine, which adds the
    ///     content agent).
    ///   - itemFacts: movies whose genres and decade become item facts (the knowledge-graph agent).
    ///   - progress: the fit's progress callback (`(stage, fraction)`, return true to cancel).
    /// - Returns: the result and the fitted engine (for further queries).
    /// - Throws: whatever `add`, `fit` or `evaluate` throws.
    public static func run(train: [Interaction], test: [Int64: Set<Int64>], k: Int = 10,
                           config: EngineConfig = EngineConfig(), parameters: FitParameters = FitParameters(),
                           itemTexts: [Int64: String] = [:], itemFacts: [Int64: Movie] = [:], batchSize: Int = 256,
                           progress: ((String, Double) -> Bool)? = nil) throws(ChorusError) -> (result: EvaluationResult, engine: Engine) {
        let engine = Engine(config: config)
        try engine.add(train)
        let ids = Set(train.map(\.item)).filter { itemTexts[$0] != nil }.sorted()
        if !ids.isEmpty { try engine.setTexts(.item, ids: ids, texts: ids.map { itemTexts[$0]! }) }
        let facts = MovieLens.itemFacts(itemFacts, only: Set(train.map(\.item)))
        if !facts.items.isEmpty { try engine.addItemFacts(items: facts.items, relations: facts.relations, entities: facts.entities) }
        let clock = Stopwatch()
        try engine.fit(parameters, progress: progress)
        let fitSeconds = clock.seconds
        let rows = try evaluate(engine: engine, test: test, k: k, batchSize: batchSize)
        return (EvaluationResult(k: k, rows: rows, agentNames: engine.agentNames, blendWeights: engine.blendWeights,
                                 catalogueSize: engine.itemCount, fitSeconds: fitSeconds), engine)
    }

    /// A fixed-width text table of `rows`, one line each, after a header line and a rule:
    ///
    ///     recommender  weight  Recall@10  NDCG@10   HR@10  MRR@10  Cov@10  ILD@10  users   time
    ///     -----------  ------  ---------  -------  ------  ------  ------  ------  -----  -----
    ///     popularity     0.22     0.0712   0.0601  0.3311  0.1398  0.0041  0.7312    610  0.08 s
    ///
    /// Metrics have 4 decimals. Lines end in "\n".
    public static func formatTable(_ rows: [EvaluationRow]) -> String {
        let k = rows.first?.k ?? 10
        let columns: [(title: String, left: Bool)] = [
            ("recommender", true), ("weight", false), ("Recall@\(k)", false), ("NDCG@\(k)", false), ("HR@\(k)", false),
            ("MRR@\(k)", false), ("Cov@\(k)", false), ("ILD@\(k)", false), ("users", false), ("time", false),
        ]
        let cells: [[String]] = rows.map { r in
            [r.name, r.weight.map { TextFormat.fixed(Double($0), 2) } ?? "-",
             TextFormat.fixed(r.recall, 4), TextFormat.fixed(r.ndcg, 4), TextFormat.fixed(r.hitRate, 4),
             TextFormat.fixed(r.mrr, 4), TextFormat.fixed(r.coverage, 4), r.diversity.map { TextFormat.fixed($0, 4) } ?? "-",
             String(r.users), TextFormat.seconds(r.seconds)]
        }
        var widths = columns.map { $0.title.count }
        for line in cells { for (c, text) in line.enumerated() { widths[c] = max(widths[c], text.count) } }
        func render(_ texts: [String]) -> String {
            var parts: [String] = []
            for (c, text) in texts.enumerated() { parts.append(TextFormat.pad(text, widths[c], left: columns[c].left)) }
            var line = parts.joined(separator: "  ")
            while line.hasSuffix(" ") { line.removeLast() }
            return line + "\n"
        }
        var out = render(columns.map(\.title))
        out += render(widths.map { String(repeating: "-", count: $0) })
        for line in cells { out += render(line) }
        return out
    }
}
