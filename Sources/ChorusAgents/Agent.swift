import ChorusCore

/// What every agent trains on: the interactions in dense index space, for one id space shared by
/// all agents (users 0..<userCount, items 0..<itemCount).
///
/// The rows are those of the parallel columns `users`, `items`, `weights`, `timestamps` (a log's,
/// shared, not copied) that are not `excluded`: the validation phase trains on a log without its
/// held-out rows, and a copy of the rest would cost 20 bytes a row (380 MB at 20M interactions).
/// Read rows through `forEachRow` (or check `includes`): the columns hold the excluded rows too.
public struct TrainingData: Sendable {
    public let userCount: Int
    public let itemCount: Int
    /// The columns the rows come from (parallel arrays).
    public let users: [Int32]
    public let items: [Int32]
    public let weights: [Float]
    public let timestamps: [Int64]
    /// Per column row: true when it is not part of this data (nil: every row is).
    public let excluded: [Bool]?
    /// Rows in the data.
    public let count: Int
    /// users x items, weights of repeated pairs summed.
    public let userItems: SparseMatrix

    /// - Precondition: the columns, and `excluding` when given, have one entry per row.
    public init(userCount: Int, itemCount: Int, users: [Int32], items: [Int32], weights: [Float], timestamps: [Int64],
                excluding: [Bool]? = nil) {
        precondition(items.count == users.count && weights.count == users.count && timestamps.count == users.count)
        precondition(excluding.map { $0.count == users.count } ?? true)
        self.userCount = userCount; self.itemCount = itemCount
        self.users = users; self.items = items; self.weights = weights; self.timestamps = timestamps
        self.excluded = excluding
        self.count = excluding.map { $0.reduce(users.count) { $0 - ($1 ? 1 : 0) } } ?? users.count
        self.userItems = SparseMatrix(rows: userCount, cols: itemCount, rowIndex: users, colIndex: items, values: weights, excluding: excluding)
    }

    /// Whether column row `r` is part of the data.
    @inline(__always) public func includes(_ r: Int) -> Bool { !(excluded?[r] ?? false) }

    /// Calls `body` with each row of the data, in column order.
    @inline(__always) public func forEachRow(_ body: (Int) throws -> Void) rethrows {
        for r in 0..<users.count where includes(r) { try body(r) }
    }
}

/// Knobs every agent may read while fitting.
public struct FitContext: Sendable {
    public var threads: Int
    public var seed: UInt64
    /// Called with the fraction of this agent's work done; returns true to cancel.
    public var progress: (@Sendable (Double) -> Bool)?
    /// The validation hold-out, during the fit's validation phase (nil in the final fit): an
    /// iterative agent with an automatic budget stops by it and records what it chose.
    public var validation: ValidationProbe?
    /// In the final fit: the same agent as fitted on the validation split (same id space), which an
    /// iterative agent may start from instead of from scratch (nil in the validation phase). It
    /// is dropped after this fit, so the agent may train its factors in place.
    public var warmStart: RecommenderAgent?
    /// A fit started from another model (`Engine.fit(_:startingFrom:)`, a round of sharded
    /// training): that model's agent of the same name, its factors already laid out in this fit's
    /// id space (`ShardMerge.initialAgent`). Used when there is no `warmStart`.
    public var initial: RecommenderAgent?
    public init(threads: Int, seed: UInt64, progress: (@Sendable (Double) -> Bool)? = nil, validation: ValidationProbe? = nil,
                warmStart: RecommenderAgent? = nil, initial: RecommenderAgent? = nil) {
        self.threads = threads; self.seed = seed; self.progress = progress; self.validation = validation; self.warmStart = warmStart
        self.initial = initial
    }
}

/// What an agent is asked to score: one user of the model (or none), plus what the request itself
/// brings: items the caller says the user interacted with (an anonymous or new user's history) and
/// the encoded profile text of the user, when the host gave one.
public struct AgentRequest {
    /// The user's index in the fitted model; nil for a user the model has never seen.
    public var user: Int32?
    /// Item indices given with the request (most recent last); empty for most requests.
    public var history: [Int32]
    /// The user's profile text as an encoder vector (L2-normalised), if any.
    public var profile: UnsafeBufferPointer<Float>?
    /// The request's natural-language query as an encoder vector, if any.
    public var query: UnsafeBufferPointer<Float>?
    /// The online overlay (`OnlineState`): the user's folded-in factor vectors by agent name
    /// (they replace the model's row, and give a user the model does not know a vector), and the
    /// popularity scores with the events since the model counted.
    public var folded: [String: [Float]] = [:]
    public var popularity: [Float]? = nil
    /// The transitions and co-occurrences between model items seen since the model, the rows of
    /// the request's history (`OnlineState.ModelPairs`), which the session and item-kNN agents add
    /// to their tables'.
    var transitions: OnlineState.ModelPairs? = nil

    public init(user: Int32?, history: [Int32] = [], profile: UnsafeBufferPointer<Float>? = nil,
                query: UnsafeBufferPointer<Float>? = nil) {
        // A negative index is no model user: agents then only bounds-check the top of the range.
        self.user = user.flatMap { $0 >= 0 ? $0 : nil }
        self.history = history; self.profile = profile; self.query = query
    }
}

/// What an agent is for beyond scoring. The coordinator and serving ask for agents by role, never
/// by name: a new agent kind declares its role and is served without touching them.
public struct AgentRole: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Scores every request, known user or not: the cold-start fallback, and what serves a request
    /// the asked-for agent cannot score (popularity).
    public static let fallback = AgentRole(rawValue: 1 << 0)
    /// Takes part only in requests with a query; the coordinator never blends it (validation users
    /// have no queries) but mixes it with the personal ranking by the fitted query weight (query).
    public static let query = AgentRole(rawValue: 1 << 1)
    /// Its item vectors describe what items are (their texts) and cover items nobody interacted
    /// with: preferred for item similarity and diversity, and what the query agent reads (content).
    public static let itemDescriptions = AgentRole(rawValue: 1 << 2)
}

/// One recommending agent: it trains on the shared data with its own objective and scores every
/// item of the catalogue for a request. The coordinator blends agents' scores; the engine never
/// depends on what is inside an agent.
///
/// Agents are immutable once fitted (a fit builds a new agent), so scoring is thread-safe.
public protocol RecommenderAgent: AnyObject, Sendable {
    /// A short stable name ("popularity", "als", "content"): the C API's agent selector and the
    /// key of its snapshot section (`AgentRegistry`).
    var name: String { get }
    /// What the engine may ask of it besides scores (`AgentRole`); empty for most agents.
    var role: AgentRole { get }
    /// True when the agent has something to say about this request (popularity always; ALS for a
    /// user it was trained on; content when there is a history or a profile text). The cold-start
    /// path blends only the agents that can score.
    func canScore(_ request: AgentRequest) -> Bool
    /// Bytes of numeric state held (model size reporting).
    var modelBytes: Int { get }
    /// Raw scores (higher is better) of every item for `request` into `scores` (count ==
    /// itemCount); all zeros when `canScore` is false. Scales differ between agents: the
    /// coordinator normalises them.
    func score(_ request: AgentRequest, into scores: UnsafeMutableBufferPointer<Float>)
    /// True when `scoreBatch` does better than one `score` per request (agents whose scores are dot
    /// products of a request vector with every item vector walk the catalogue once per batch).
    var scoresInBatches: Bool { get }
    /// Scores several requests at once: row r (itemCount floats at `rows[r]`) gets exactly what
    /// `score(requests[r], ...)` would write. The default scores one request at a time.
    func scoreBatch(_ requests: [AgentRequest], into rows: [UnsafeMutablePointer<Float>], itemCount: Int)
    /// Unit-length item vectors for item-to-item cosine similarity, if the agent has them (rows =
    /// items; an all-zero row for an item without a direction).
    var itemVectors: FloatMatrix? { get }
    /// For catalogues too large to score whole per request: the agent's best `k` items for
    /// `request` from an index, with its score range and a scorer for any other item; nil (the
    /// default) when the agent has no index or cannot score the request, and serving scores the
    /// whole catalogue instead (`Candidates.collect`).
    func indexedProposals(_ request: AgentRequest, k: Int) -> IndexedProposals?
    /// Serialises the fitted state (snapshot section payload).
    func encode(into w: inout ByteWriter)
    /// Why this agent scores `item` for `request` the way it does, in its own terms, when it can
    /// say ("users who interacted with X also did", "often next after X"); nil otherwise.
    func reason(_ request: AgentRequest, item: Int32) -> AgentReason?
}

/// An agent's proposals from an index (`RecommenderAgent.indexedProposals`): raw scores, on the
/// scale of its `score`.
public struct IndexedProposals {
    /// The best items found, best first (ties to the lower index).
    public var top: [(index: Int32, score: Float)]
    /// The agent's lowest and highest score over the catalogue, as well as the index can tell:
    /// what `Coordinator.normalize` would scale a whole row by.
    public var lo: Float
    public var hi: Float
    /// The raw score of any model item (index < the model's item count).
    public var score: (Int32) -> Float
    public init(top: [(index: Int32, score: Float)], lo: Float, hi: Float, score: @escaping (Int32) -> Float) {
        self.top = top; self.lo = lo; self.hi = hi; self.score = score
    }
}

/// An agent's own account of a score: a phrase, and the item of the user's history it rests on.
public struct AgentReason: Sendable, Equatable {
    public var phrase: String
    public var becauseItem: Int32?
    public init(phrase: String, becauseItem: Int32? = nil) { self.phrase = phrase; self.becauseItem = becauseItem }
}

extension RecommenderAgent {
    public var role: AgentRole { [] }

    public func reason(_ request: AgentRequest, item: Int32) -> AgentReason? { nil }

    public var scoresInBatches: Bool { false }

    public func indexedProposals(_ request: AgentRequest, k: Int) -> IndexedProposals? { nil }

    public func scoreBatch(_ requests: [AgentRequest], into rows: [UnsafeMutablePointer<Float>], itemCount: Int) {
        for (r, request) in requests.enumerated() { score(request, into: UnsafeMutableBufferPointer(start: rows[r], count: itemCount)) }
    }

    /// An agent's best `k` items for a request (its proposals to the candidate stage).
    public func propose(_ request: AgentRequest, k: Int, itemCount: Int) -> [(index: Int32, score: Float)] {
        var scores = [Float](repeating: 0, count: itemCount)
        scores.withUnsafeMutableBufferPointer { score(request, into: $0) }
        return scores.withUnsafeBufferPointer { TopK.select($0, k: k) }
    }
    /// Scores a model user with nothing else in the request.
    public func score(user: Int32?, into scores: UnsafeMutableBufferPointer<Float>) {
        score(AgentRequest(user: user), into: scores)
    }
}

/// What restoring an agent from a snapshot may read besides its own section.
public struct AgentDecodeContext {
    public var userCount: Int
    public var itemCount: Int
    /// The agents restored before this one (an agent may share another's state).
    public var previous: [RecommenderAgent]
    public init(userCount: Int, itemCount: Int, previous: [RecommenderAgent] = []) {
        self.userCount = userCount; self.itemCount = itemCount; self.previous = previous
    }
}

/// Creates and restores agents by name.
public protocol AgentFactory: Sendable {
    var name: String { get }
    /// Whether a fit against a validation probe keeps a copy of its best check's model while it
    /// trains on (early stopping): the validation phase trains such agents first, before the
    /// other agents' models are held, so the copy does not add to them at the fit's peak memory.
    var keepsBestCheck: Bool { get }
    func fit(_ data: TrainingData, _ context: FitContext) throws(ChorusError) -> RecommenderAgent
    func decode(_ r: inout ByteReader, _ context: AgentDecodeContext) throws(ChorusError) -> RecommenderAgent
}

extension AgentFactory {
    public var keepsBestCheck: Bool { false }
}
