import ChorusCore
import ChorusCollaborative

/// The one home of the agent kinds: which agents a fit trains (in blend order), which factory
/// restores a snapshot's agent section by its name, and which agents the next fit would train.
/// Everything else asks agents for their `role`, never for a name.
enum AgentRegistry {
    /// What a fit hands the factories: its parameters and what the data store holds beside the
    /// interactions (decoding needs only the parameters).
    struct Inputs {
        var parameters: FitParameters
        /// The popularity half-life (< 0: no decay).
        var halfLife: Int64
        /// The fit's items' text vectors (the content agent), their knowledge-graph table (kg) and
        /// their trained graph embeddings (kge); nil leaves that agent out.
        var itemVectors: FloatMatrix? = nil
        var graph: KnowledgeGraphTable? = nil
        var graphVectors: FloatMatrix? = nil
        /// BPR's epochs as the validation phase chose them (nil: not chosen yet).
        var bprEpochs: Int? = nil
    }

    /// One agent kind.
    struct Kind: Sendable {
        let name: String
        /// The factory for a fit; nil when the fit's inputs leave the agent out, or when the agent
        /// is derived from the others (`derived`) rather than fitted.
        let forFit: @Sendable (Inputs) -> AgentFactory?
        /// The factory that restores the agent from its snapshot section.
        let forDecoding: @Sendable (Inputs) -> AgentFactory
        /// Whether the next fit on `data` has this agent.
        let planned: @Sendable (DataStore) -> Bool
    }

    /// Every kind, in blend order: popularity first (the cold-start fallback), the collaborative
    /// agents, the knowledge-graph ones, content, and query (derived from content).
    static let kinds: [Kind] = [
        Kind(name: "popularity", forFit: { PopularityAgent.Factory(halfLifeSeconds: $0.halfLife) },
             forDecoding: { PopularityAgent.Factory(halfLifeSeconds: $0.halfLife) }, planned: { _ in true }),
        Kind(name: "als", forFit: { ALSAgent.Factory(parameters: als($0.parameters)) },
             forDecoding: { ALSAgent.Factory(parameters: als($0.parameters)) }, planned: { _ in true }),
        Kind(name: "bpr", forFit: { bpr($0) }, forDecoding: { bpr($0) }, planned: { _ in true }),
        Kind(name: "itemknn", forFit: { ItemKNNAgent.Factory(parameters: neighbours($0.parameters)) },
             forDecoding: { ItemKNNAgent.Factory(parameters: neighbours($0.parameters)) }, planned: { _ in true }),
        Kind(name: "session", forFit: { SessionAgent.Factory(parameters: neighbours($0.parameters)) },
             forDecoding: { SessionAgent.Factory(parameters: neighbours($0.parameters)) }, planned: { _ in true }),
        Kind(name: "kg", forFit: { $0.graph.map { KnowledgeAgent.Factory(graph: $0) } },
             forDecoding: { _ in KnowledgeAgent.Factory(graph: nil) }, planned: { !$0.facts.isEmpty }),
        Kind(name: "kge", forFit: { $0.graphVectors.map { KnowledgeEmbeddingAgent.Factory(vectors: $0) } },
             forDecoding: { _ in KnowledgeEmbeddingAgent.Factory(vectors: nil) }, planned: { $0.knowledgeGraph.isTrained }),
        Kind(name: "content", forFit: { $0.itemVectors.map { ContentAgent.Factory(itemVectors: $0) } },
             forDecoding: { _ in ContentAgent.Factory(itemVectors: nil) }, planned: { !$0.texts.items.isEmpty }),
        Kind(name: "query", forFit: { _ in nil }, forDecoding: { _ in QueryAgent.Factory() }, planned: { !$0.texts.items.isEmpty }),
    ]

    /// The agents every fit trains, whatever the data store holds beside interactions.
    static let collaborative = ["popularity", "als", "bpr", "itemknn", "session"]

    /// The names a host may ask a fit for (`FitParameters.agents`): every kind but the derived
    /// query agent, which comes with content.
    static let trainable = kinds.map(\.name).filter { $0 != "query" }

    /// Whether the fit's parameters ask for `name` (popularity always: the cold-start fallback).
    static func wanted(_ name: String, _ p: FitParameters) -> Bool {
        name == "popularity" || p.agents.map { $0.contains(name) } ?? true
    }

    /// The factories of one fit, in blend order: the agents the parameters ask for that the
    /// inputs allow.
    static func factories(_ inputs: Inputs) -> [AgentFactory] {
        kinds.filter { wanted($0.name, inputs.parameters) }.compactMap { $0.forFit(inputs) }
    }

    /// What an agent the parameters name needs and the inputs lack, for the error of a fit that
    /// cannot train it; nil when every named agent can be trained.
    static func missingInput(_ inputs: Inputs) -> String? {
        for name in inputs.parameters.agents ?? [] {
            guard let kind = kinds.first(where: { $0.name == name }), kind.forFit(inputs) == nil else { continue }
            switch name {
            case "content": return "the content agent needs item texts (set_item_texts)"
            case "kg": return "the kg agent needs item facts (add_item_facts)"
            case "kge": return "the kge agent needs a trained knowledge graph with the items as entities"
            default: return "the \(name) agent cannot be trained on this data"
            }
        }
        return nil
    }

    /// The fitted agents completed by those derived from them (query, built on content).
    static func completed(_ fitted: [RecommenderAgent]) -> [RecommenderAgent] {
        fitted + (QueryAgent.derived(from: fitted).map { [$0] } ?? [])
    }

    /// The factory that restores a snapshot's agent `name`; nil for a name this library does not know.
    static func decoder(named name: String, _ inputs: Inputs) -> AgentFactory? {
        kinds.first { $0.name == name }?.forDecoding(inputs)
    }

    /// The agents the next fit on `data` would train, in blend order.
    static func planned(_ data: DataStore) -> [String] { kinds.filter { $0.planned(data) }.map(\.name) }

    private static func als(_ p: FitParameters) -> ALSParameters {
        var als = ALSParameters()
        als.factors = p.factors; als.regularization = p.regularization; als.alpha = p.alpha
        als.iterations = p.iterations; als.threads = p.threads; als.seed = p.seed
        return als
    }

    /// BPR with implicit's regularisation and a learning rate of 0.05 (validation NDCG@10 of BPR
    /// alone, best over 100 epochs: 0.135 against 0.121 at implicit's 0.01 on ml-100k, 0.071
    /// against 0.056 on ml-latest-small, and reached in fewer epochs); its epochs the host's, or
    /// the validation's choice, or early stopping while validating.
    private static func bpr(_ inputs: Inputs) -> BPRAgent.Factory {
        let p = inputs.parameters
        var b = BPRParameters()
        b.seed = p.seed
        b.learningRate = FitParameters.bprLearningRate
        if p.bprEpochs > 0 {
            b.iterations = p.bprEpochs
            return BPRAgent.Factory(parameters: b, earlyStopping: false)
        }
        b.iterations = inputs.bprEpochs ?? FitParameters.defaultBPREpochs
        return BPRAgent.Factory(parameters: b, earlyStopping: inputs.bprEpochs == nil)
    }

    private static func neighbours(_ p: FitParameters) -> ItemNeighbours.Parameters {
        var n = ItemNeighbours.Parameters()
        n.threads = p.threads
        return n
    }
}
