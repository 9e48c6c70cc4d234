import ChorusCore

/// What ranks the agents' candidates, as one fit chose it on validation: the linear blend's
/// weights (always: they serve users the model does not know), the ranking network when it beat
/// the blend, and the weight of the query agent against the personal ranking. The piece a merge of
/// shard models averages beside the agents' own state.
struct CoordinatorModel: Sendable {
    /// One weight per agent of the model, on the simplex.
    let weights: [Float]
    let ranker: RankingMLP?
    /// For requests with a query: final = (1 − w) · personal + w · query.
    let queryWeight: Float
    /// Proposals per agent in the candidate stage.
    let candidatesPerAgent: Int
    /// How it was chosen (the validation comparison), for reports; "" when not recorded.
    let report: String
    /// Blend weights for requests of users the model does not know, by kind (`ColdRequest`), fitted
    /// on validation users served as such requests (with too few of them, equal weights over the
    /// agents that can score the kind); a kind without its own weights (a model from before they
    /// existed, or with fewer than two such agents) uses `weights` renormalised over the agents that
    /// can score it.
    var coldWeights: [ColdRequest: [Float]] = [:]
}

/// The kinds of request from a user the model does not know that get their own blend: with items
/// of the request's history (an anonymous session), or with only a profile text.
enum ColdRequest: String, CaseIterable, Sendable {
    case history, profile

    /// The kind of a request (nil: a user the model knows, or known from feedback, or a request with
    /// neither history nor profile: the fallback's).
    static func of(_ request: AgentRequest) -> ColdRequest? {
        guard request.user == nil, request.folded.isEmpty else { return nil }
        if !request.history.isEmpty { return .history }
        return request.profile != nil ? .profile : nil
    }
}

/// An immutable trained model: what requests read. A fit builds a new one and the engine publishes
/// it whole, so readers never see a half-trained state and never need a lock while they rank.
final class FittedModel: Sendable {
    /// Id tables: prefixes of the engine log's tables (the model saw the first `trainedRows` rows).
    let users: IdIndex
    let items: IdIndex
    let trainedRows: Int
    /// users x items of the training data: what "already seen" means.
    let seen: SparseMatrix
    /// Each item's warmth in the training data (a coordinator feature, `Candidates.itemWarmth`).
    let itemWarmth: [Float]
    let agents: [RecommenderAgent]
    let coordinator: CoordinatorModel
    let layout: Candidates.Features
    let parameters: FitParameters
    /// The popularity half-life in use (chosen on validation when the config says 0); < 0 = none.
    let popularityHalfLifeSeconds: Int64
    /// Agents by role (`AgentRole`): the fallback, the query agent (if any), and the unit item
    /// vectors for similarity and diversity (see `similarityVectors`).
    let fallbackIndex: Int
    let queryIndex: Int?
    var similarityVectors: FloatMatrix? { similaritySource?.itemVectors }
    /// The agent `similarityVectors` come from. A factor agent makes its unit rows at the first
    /// ask (`FactorAgent.UnitRows`): a model whose host never asks for similarity, diversity or
    /// explanations never holds them (256 MiB at 1M items x 64 factors).
    private let similaritySource: RecommenderAgent?
    /// The privacy spent by the merges this model descends from (`ShardMerge`, `PrivacyLedger`):
    /// nil for a model no private merge made. A fit started from a model inherits its ledger.
    let privacy: PrivacyLedger?
    /// Serving's per-request buffers, reused across calls (`RankerScratchPool`).
    let scratchPool = RankerScratchPool()

    init(users: IdIndex, items: IdIndex, trainedRows: Int, seen: SparseMatrix, agents: [RecommenderAgent],
         coordinator: CoordinatorModel, parameters: FitParameters, popularityHalfLifeSeconds: Int64, privacy: PrivacyLedger? = nil) {
        self.privacy = privacy
        self.users = users; self.items = items; self.trainedRows = trainedRows; self.seen = seen
        self.itemWarmth = Candidates.itemWarmth(seen)
        // A large catalogue's factor agents serve from an index (`FactorAgent.servingIndex`).
        self.agents = agents.map {
            ($0 as? FactorAgent)?.indexedForServing(minimumItems: parameters.servingIndexMinimumItems, threads: Parallel.cpuCount) ?? $0
        }
        self.coordinator = coordinator
        self.layout = Candidates.Features(agents: agents.count)
        self.parameters = parameters
        self.popularityHalfLifeSeconds = popularityHalfLifeSeconds
        self.fallbackIndex = agents.firstIndex { $0.role.contains(.fallback) } ?? 0
        self.queryIndex = agents.firstIndex { $0.role.contains(.query) }
        // The agent whose vectors describe items (texts) when there is one: they cover items
        // nobody has interacted with yet (an item without text counts as unlike every other);
        // else the first factor agent (ALS's unit factors, made at the first ask).
        self.similaritySource = self.agents.first { $0.role.contains(.itemDescriptions) && $0.itemVectors != nil }
            ?? self.agents.first { $0 is FactorAgent }
    }

    var itemCount: Int { items.count }
    var modelBytes: Int { agents.reduce(0) { $0 + $1.modelBytes } }
    var agentNames: [String] { agents.map(\.name) }
}
