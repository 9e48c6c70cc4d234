import ChorusCore

/// Settings fixed when an engine is created.
public struct EngineConfig: Sendable, Equatable {
    /// Half-life of the popularity agent's time decay: > 0 fixed, < 0 no decay, 0 (the default)
    /// chosen by each fit on its validation hold-out among `halfLifeCandidates`.
    public var popularityHalfLifeSeconds: Int64
    /// A directory with the sentence encoder's weights; nil searches for them (see
    /// `TextEncoders.load`), falling back to the hashing encoder when they are absent.
    public var encoderPath: String?
    /// Fail instead of falling back to the hashing encoder when the weights cannot be loaded.
    public var requireEncoder: Bool
    /// Use the hashing encoder even when the transformer is available (fast, lower quality).
    public var hashingEncoder: Bool
    public init(popularityHalfLifeSeconds: Int64 = 0, encoderPath: String? = nil, requireEncoder: Bool = false,
                hashingEncoder: Bool = false) {
        self.popularityHalfLifeSeconds = popularityHalfLifeSeconds
        self.encoderPath = encoderPath
        self.requireEncoder = requireEncoder
        self.hashingEncoder = hashingEncoder
    }

    /// The half-lives an automatic fit tries: no decay, a week, a month, a quarter, a year.
    public static let halfLifeCandidates: [Int64] = [-1, 7 * 86_400, 30 * 86_400, 91 * 86_400, 365 * 86_400]
}

/// Hyper-parameters of one fit.
public struct FitParameters: Sendable, Equatable {
    public var factors = 64
    public var regularization: Float = 0.01
    public var alpha: Float = 1
    public var iterations = 15
    /// Worker threads; 0 = every CPU.
    public var threads = 0
    public var seed: UInt64 = 42
    /// Share of each user's latest interactions held out to fit the blend weights.
    public var validationFraction: Float = 0.1
    /// Items each agent proposes to the coordinator's candidate set.
    public var candidatesPerAgent = 100
    /// From this many items up, the model's factor agents (ALS, BPR) propose from an inverted-file
    /// index (`FactorAgent.servingIndex`) instead of scoring every item per request. Not saved: a
    /// loaded model uses the default.
    public var servingIndexMinimumItems = 100_000
    /// The agents to train, by name (`Engine.agentKinds`); nil = every agent the data allows.
    /// Popularity is always trained: it serves users the model does not know.
    public var agents: [String]? = nil
    /// BPR epochs; 0 = chosen on the validation hold-out: validation NDCG@10 is checked every
    /// `bprCheckEvery` epochs, the latest check within one standard error of the best is kept,
    /// training stops `bprPatience` epochs after it (never before `bprMinEpochs`, at most
    /// `maxAutoBPREpochs`: BPR's validation curve dips before it climbs), and the final fit runs
    /// as many epochs as the kept check. Keeping the latest rather than the best: on BPR's plateau
    /// more epochs help the blend (ml-latest-small, seeds 42-44: blend NDCG@10 0.1607 with the
    /// best check, 35-55 epochs; 0.1657 with the latest, 90-100). Without a hold-out, 0 means
    /// `defaultBPREpochs`.
    public var bprEpochs = 0
    public static let maxAutoBPREpochs = 100
    public static let defaultBPREpochs = 60
    public static let bprCheckEvery = 5
    public static let bprPatience = 20
    public static let bprMinEpochs = 25
    /// BPR's learning rate in the engine (see `AgentRegistry`).
    public static let bprLearningRate: Float = 0.05
    public init() {}

    /// Checks ranges; the C ABI maps the error to CHORUS_ERR_INVALID_ARGUMENT.
    public func validate() throws(ChorusError) {
        guard factors >= 1 && factors <= 1024 else { throw .invalidArgument("factors must be in 1...1024, got \(factors)") }
        guard regularization.isFinite && regularization >= 0 else { throw .invalidArgument("regularization must be finite and >= 0, got \(regularization)") }
        guard alpha.isFinite && alpha > 0 else { throw .invalidArgument("alpha must be finite and > 0, got \(alpha)") }
        guard iterations >= 1 && iterations <= 10_000 else { throw .invalidArgument("iterations must be in 1...10000, got \(iterations)") }
        guard threads >= 0 && threads <= 1024 else { throw .invalidArgument("threads must be in 0...1024, got \(threads)") }
        guard candidatesPerAgent >= 1 && candidatesPerAgent <= 100_000 else {
            throw .invalidArgument("candidates per agent must be in 1...100000, got \(candidatesPerAgent)")
        }
        guard validationFraction.isFinite && validationFraction >= 0 && validationFraction < 0.5 else {
            throw .invalidArgument("validation_fraction must be in [0, 0.5), got \(validationFraction)")
        }
        guard bprEpochs >= 0 && bprEpochs <= 100_000 else { throw .invalidArgument("bpr_epochs must be in 0...100000, got \(bprEpochs)") }
        if let agents {
            guard !agents.isEmpty else { throw .invalidArgument("agents is empty: name at least one agent (popularity is always trained)") }
            let known = AgentRegistry.trainable
            for name in agents where !known.contains(name) {
                throw .invalidArgument("unknown agent '\(name)' in agents; known: \(known.joined(separator: ", "))\(name == "query" ? " (query is derived from content: name content)" : "")")
            }
            guard Set(agents).count == agents.count else { throw .invalidArgument("agents names an agent twice: \(agents)") }
        }
    }
}

/// Filters and agent choice of one recommend call.
public struct RecommendOptions: Sendable {
    public var includeSeen = false
    /// Recommend only among these items (unknown ids are ignored).
    public var allow: Set<Int64>? = nil
    /// Never recommend these items.
    public var deny: Set<Int64> = []
    /// One agent alone by name; nil = the coordinator's blend.
    public var agent: String? = nil
    /// A natural-language request ("a light-hearted animated film for a family evening"): the
    /// query agent ranks items by how well their text matches it, and the coordinator mixes that
    /// with the user's personal ranking by a weight fitted on validation.
    public var query: String? = nil
    /// Items the user interacted with that the model may not know about (an anonymous visitor's
    /// clicks, the current session), most recent last; applies to every user of the call.
    /// Unknown ids are ignored.
    public var history: [Int64] = []
    /// Re-ranking for diversity (maximal marginal relevance): 0 = by score alone ... 1 = as
    /// different from each other as possible. Similarity is the cosine of item vectors (texts
    /// when items have them, else ALS factors).
    public var diversity: Float = 0
    /// The scenario of the request (defined with `Engine.defineScenario`); nil = the default.
    public var scenario: String? = nil
    /// One id per user of the call under which its slate is logged for the learning coordinator
    /// (`Engine.setLearning`): feedback naming the id rewards the slate's items. nil = not logged.
    /// Ids are the host's (any Int64 but -1); a repeated id replaces the open slate.
    public var requestIds: [Int64]? = nil
    public init() {}
}

/// One user's recommendations, best first.
public struct RecommendationList: Sendable {
    public let user: Int64
    /// The user is unknown to the model: the agents that need no history served them (popularity,
    /// and content when the user has a profile text).
    public let coldFallback: Bool
    public let items: [Int64]
    public let scores: [Float]
    /// Per item, each agent's share of its score (agent order as `Engine.agentNames`).
    public let shares: [[Float]]
}

/// Counters reported by `Engine.stats()`.
public struct EngineStats: Sendable {
    public var fitted: Bool
    public var users: Int
    public var items: Int
    public var interactions: Int
    public var modelUsers: Int
    public var modelItems: Int
    public var modelBytes: Int
    /// The popularity half-life the model uses (< 0: no decay); 0 before fit.
    public var popularityHalfLifeSeconds: Int64
    /// Items and users with a text.
    public var itemTexts: Int
    public var userTexts: Int
    /// Item facts (knowledge-graph triples about items).
    public var itemFacts: Int
    public var allocatedBytes: UInt64
    public var residentBytes: UInt64
}
