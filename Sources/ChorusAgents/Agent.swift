import ChorusCore

/// What every agent trains on: the interactions in dense index space, for one id space shared by
/// all agents (users 0..<userCount, items 0..<itemCount).
public struct TrainingData: Sendable {
    public let userCount: Int
    public let itemCount: Int
    /// Rows of the interactions used (parallel arrays).
    public let users: [Int32]
    public let items: [Int32]
    public let weights: [Float]
    public let timestamps: [Int64]
    /// users x items, weights of repeated pairs summed.
    public let userItems: SparseMatrix

    public init(userCount: Int, itemCount: Int, users: [Int32], items: [Int32], weights: [Float], timestamps: [Int64]) {
        self.userCount = userCount; self.itemCount = itemCount
        self.users = users; self.items = items; self.weights = weights; self.timestamps = timestamps
        self.userItems = SparseMatrix(rows: userCount, cols: itemCount, rowIndex: users, colIndex: items, values: weights)
    }
}

/// Knobs every agent may read while fitting.
public struct FitContext: Sendable {
    public var threads: Int
    public var seed: UInt64
    /// Called with the fraction of this agent's work done; returns true to cancel.
    public var progress: (@Sendable (Double) -> Bool)?
    public init(threads: Int, seed: UInt64, progress: (@Sendable (Double) -> Bool)? = nil) {
        self.threads = threads; self.seed = seed; self.progress = progress
    }
}

/// One recommending agent: it trains on the shared data with its own objective and scores every
/// item of the catalogue for a user. The coordinator blends agents' scores; the engine never
/// depends on what is inside an agent.
///
/// Agents are immutable once fitted (a fit builds a new agent), so scoring is thread-safe.
public protocol RecommenderAgent: AnyObject, Sendable {
    /// A short stable name ("popularity", "als"): the C API's agent selector.
    var name: String { get }
    /// True when the agent can score a user it has never seen (popularity): the cold-start fallback.
    var scoresUnknownUsers: Bool { get }
    /// Bytes of numeric state held (model size reporting).
    var modelBytes: Int { get }
    /// Raw scores (higher is better) of every item for `user` (`nil` for a user outside the
    /// training data) into `scores` (count == itemCount). Scales differ between agents: the
    /// coordinator normalises them.
    func score(user: Int32?, into scores: UnsafeMutableBufferPointer<Float>)
    /// Unit-length item vectors for item-to-item cosine similarity, if the agent has them (rows =
    /// items; an all-zero row for an item without a direction).
    var itemVectors: FloatMatrix? { get }
    /// Serialises the fitted state (snapshot section payload).
    func encode(into w: inout ByteWriter)
}

/// Creates and restores agents by name.
public protocol AgentFactory: Sendable {
    var name: String { get }
    func fit(_ data: TrainingData, _ context: FitContext) throws(ChorusError) -> RecommenderAgent
    func decode(_ r: inout ByteReader, userCount: Int, itemCount: Int) throws(ChorusError) -> RecommenderAgent
}
