import ChorusCore

/// An immutable trained model: what recommend reads. A fit builds a new one and publishes it, so
/// readers never see a half-trained state.
final class FittedModel: @unchecked Sendable {
    /// Id tables: prefixes of the engine log's tables (the model saw the first `trainedRows` rows).
    let users: IdIndex
    let items: IdIndex
    let trainedRows: Int
    /// users x items of the training data: what "already seen" means.
    let seen: SparseMatrix
    /// Each item's warmth in the training data (a coordinator feature, `Candidates.itemWarmth`).
    let itemWarmth: [Float]
    let agents: [RecommenderAgent]
    /// The coordinator: linear blend weights (always; they serve users the model does not know)
    /// and the ranking network when validation chose it.
    let weights: [Float]
    let ranker: RankingMLP?
    /// Proposals per agent in the candidate stage.
    let candidatesPerAgent: Int
    let layout: Candidates.Features
    /// For requests with a query: final = (1 − w) · personal + w · query (fitted on validation).
    var queryWeight: Float = 0.5
    /// How the coordinator was chosen (the validation comparison), for reports.
    var coordinatorReport = ""
    let parameters: FitParameters
    /// The popularity half-life in use (chosen on validation when the config says 0); < 0 = none.
    let popularityHalfLifeSeconds: Int64
    let popularityIndex: Int

    init(users: IdIndex, items: IdIndex, trainedRows: Int, seen: SparseMatrix, agents: [RecommenderAgent],
         weights: [Float], ranker: RankingMLP?, candidatesPerAgent: Int, parameters: FitParameters, popularityHalfLifeSeconds: Int64) {
        self.users = users; self.items = items; self.trainedRows = trainedRows; self.seen = seen
        self.itemWarmth = Candidates.itemWarmth(seen)
        self.agents = agents; self.weights = weights; self.ranker = ranker; self.candidatesPerAgent = candidatesPerAgent
        self.layout = Candidates.Features(agents: agents.count)
        self.parameters = parameters
        self.popularityHalfLifeSeconds = popularityHalfLifeSeconds
        self.popularityIndex = agents.firstIndex { $0.name == "popularity" } ?? 0
    }

    var itemCount: Int { items.count }
    /// Unit item vectors for similarity (the most similar liked item, diversity): the content
    /// agent's text vectors when items have texts (they describe what an item is, and cover items
    /// nobody has interacted with yet; an item without text counts as unlike every other), else
    /// the first agent that has vectors (ALS's unit factors).
    var diversityVectors: FloatMatrix? {
        agents.first { $0.name == "content" }?.itemVectors ?? agents.lazy.compactMap { $0.itemVectors }.first
    }
    var modelBytes: Int { agents.reduce(0) { $0 + $1.modelBytes } }
}
