/// One interaction as the host gives it.
public struct Interaction: Sendable, Equatable {
    public var user: Int64
    public var item: Int64
    public var weight: Float
    public var timestamp: Int64
    public init(user: Int64, item: Int64, weight: Float = 1, timestamp: Int64 = 0) {
        self.user = user; self.item = item; self.weight = weight; self.timestamp = timestamp
    }
}

/// The append-only log of everything the host added: the training data of every agent.
/// Users and items are kept as dense indices (see `IdIndex`).
public struct InteractionLog: Sendable {
    public private(set) var users = IdIndex()
    public private(set) var items = IdIndex()
    public private(set) var userIndex: [Int32] = []
    public private(set) var itemIndex: [Int32] = []
    public private(set) var weights: [Float] = []
    public private(set) var timestamps: [Int64] = []
    /// The scenario of each row (an index into the engine's scenario table; 0 = the default).
    public private(set) var scenarios: [UInt16] = []

    public init() {}

    public var count: Int { userIndex.count }

    /// Validates a whole batch, then appends it: on error nothing is added.
    /// - Throws: `.invalidArgument` for a weight that is NaN, infinite, zero or negative, item id -1
    ///   (`noItem`), or a batch that could pass `maxDistinct` users or items.
    public mutating func append(users u: UnsafeBufferPointer<Int64>, items it: UnsafeBufferPointer<Int64>,
                                weights w: UnsafeBufferPointer<Float>?, timestamps ts: UnsafeBufferPointer<Int64>?,
                                scenario: UInt16 = 0) throws(ChorusError) {
        let n = u.count
        guard it.count == n, w == nil || w!.count == n, ts == nil || ts!.count == n else {
            throw .invalidArgument("interaction arrays differ in length")
        }
        for i in 0..<n where it[i] == Self.noItem { throw Self.noItemError(position: i) }
        if let w {
            for i in 0..<n where !(w[i].isFinite && w[i] > 0) {
                throw .invalidArgument("weight \(w[i]) at position \(i) (user \(u[i]), item \(it[i])) must be finite and > 0")
            }
        }
        try Self.checkRoom(users.count, items.count, adding: n)
        userIndex.reserveGrowing(n); itemIndex.reserveGrowing(n)
        weights.reserveGrowing(n); timestamps.reserveGrowing(n); scenarios.reserveGrowing(n)
        for i in 0..<n {
            userIndex.append(users.intern(u[i]))
            itemIndex.append(items.intern(it[i]))
            weights.append(w?[i] ?? 1)
            timestamps.append(ts?[i] ?? 0)
            scenarios.append(scenario)
        }
    }

    /// The empty-slot marker of recommendation lists (CHORUS_NO_ITEM): never an item id.
    public static let noItem: Int64 = -1

    /// Refuses the empty-slot marker among item ids brought by texts or facts.
    public static func validate(itemIds ids: [Int64]) throws(ChorusError) {
        if let i = ids.firstIndex(of: noItem) { throw noItemError(position: i) }
    }

    static func noItemError(position i: Int) -> ChorusError {
        .invalidArgument("item id -1 at position \(i) is CHORUS_NO_ITEM, the empty-slot marker of recommendation lists; it cannot name an item")
    }

    /// Adds items that have no interaction yet (an item known only by its text or facts), so the
    /// next fit puts them in the catalogue. Known ids are left as they are.
    /// - Throws: `.invalidArgument` when the ids could pass `maxDistinct` items.
    public mutating func register(items ids: [Int64]) throws(ChorusError) {
        try Self.checkRoom(0, items.count, adding: ids.count)
        for id in ids { _ = items.intern(id) }
    }

    /// Distinct users, and distinct items, a log can hold: their dense indices are Int32.
    public static let maxDistinct = Int(Int32.max)

    /// Refuses a batch of `n` that could take the distinct users or items past `maxDistinct`
    /// (counted as if every id were new: a refusal only near 2^31 ids, never a trap).
    public static func checkRoom(_ users: Int, _ items: Int, adding n: Int) throws(ChorusError) {
        guard users <= maxDistinct - n, items <= maxDistinct - n else {
            throw .invalidArgument("a batch of \(n) could take the engine past \(maxDistinct) distinct users or items (it holds \(users) users, \(items) items)")
        }
    }

    public mutating func append(_ batch: [Interaction], scenario: UInt16 = 0) throws(ChorusError) {
        let u = batch.map(\.user), it = batch.map(\.item), w = batch.map(\.weight), ts = batch.map(\.timestamp)
        try u.withUnsafeBufferPointer { (up) throws(ChorusError) in
            try it.withUnsafeBufferPointer { (ip) throws(ChorusError) in
                try w.withUnsafeBufferPointer { (wp) throws(ChorusError) in
                    try ts.withUnsafeBufferPointer { (tp) throws(ChorusError) in
                        try append(users: up, items: ip, weights: wp, timestamps: tp, scenario: scenario)
                    }
                }
            }
        }
    }

    /// Rebuilds a log from its parts (snapshot loading); checks every index is in range.
    public init(users: IdIndex, items: IdIndex, userIndex: [Int32], itemIndex: [Int32],
                weights: [Float], timestamps: [Int64], scenarios: [UInt16]? = nil, scenarioCount: Int = 1) throws(ChorusError) {
        let n = userIndex.count
        let scenarios = scenarios ?? [UInt16](repeating: 0, count: n)
        guard itemIndex.count == n, weights.count == n, timestamps.count == n, scenarios.count == n else {
            throw .format("interaction columns differ in length")
        }
        for i in 0..<n {
            guard userIndex[i] >= 0, Int(userIndex[i]) < users.count, itemIndex[i] >= 0, Int(itemIndex[i]) < items.count else {
                throw .format("interaction \(i) refers to a user or item outside the id tables")
            }
            guard weights[i].isFinite, weights[i] > 0 else { throw .format("interaction \(i) has an invalid weight") }
        }
        self.users = users; self.items = items; self.userIndex = userIndex; self.itemIndex = itemIndex
        guard scenarios.allSatisfy({ Int($0) < scenarioCount }) else { throw .format("an interaction refers to a scenario outside the scenario table") }
        self.weights = weights; self.timestamps = timestamps; self.scenarios = scenarios
    }
}

extension Array {
    /// Makes room for `extra` more elements, growing geometrically. `reserveCapacity(count + extra)`
    /// alone allocates exactly that much, so a log fed one interaction per call was copied whole on
    /// every call (quadratic); doubling keeps appends amortised O(1).
    @inlinable
    public mutating func reserveGrowing(_ extra: Int) {
        let needed = count + extra
        if needed > capacity { reserveCapacity(Swift.max(needed, 2 * capacity)) }
    }
}
