import ChorusCore

/// One request's candidate set as the coordinator ranks it: the union of the agents' proposals,
/// each with its feature row (`Candidates.Features`), so that a peer (a contextual bandit in
/// bench/online) can choose from the same items with the same features.
public struct CandidateSet: Sendable, Equatable {
    /// Item ids, in candidate order (an item's first proposal decides its place).
    public var items: [Int64]
    /// items.count rows of featureNames.count floats, row-major.
    public var features: [Float]
    /// Per agent "<agent>.score" (its min-max normalised score, 0 when it does not take part), then
    /// per agent "<agent>.rank" (1 / log2(2 + rank) among its proposals, else 0), then "activity"
    /// and "warmth".
    public var featureNames: [String]

    public init(items: [Int64], features: [Float], featureNames: [String]) {
        self.items = items; self.features = features; self.featureNames = featureNames
    }

    /// The feature row of candidate `j`.
    public func row(_ j: Int) -> ArraySlice<Float> {
        features[(j * featureNames.count)..<((j + 1) * featureNames.count)]
    }
}

extension Engine {
    /// The candidates the coordinator ranks for `user` under `options`, built by the serving path
    /// `recommend` uses (`ServingSnapshot.rank`: same overlay, masks, new items and quota). `k` is
    /// the slate size recommend would be asked for: each agent proposes max(its quota, k) items.
    /// With a query, the query agent's features are zeroed as the coordinator sees them.
    /// - Throws: `.notFitted`; `.invalidArgument` for `options.agent` (one agent alone ranks
    ///   without candidates) or k out of range; what `recommend` throws.
    public func candidates(user: Int64, k: Int = 10, options: RecommendOptions = RecommendOptions()) throws(ChorusError) -> CandidateSet {
        guard options.agent == nil else {
            throw .invalidArgument("options.agent is '\(options.agent!)': candidates come from the coordinator's blend, not one agent")
        }
        let snapshot = try serving(query: options.query)
        guard k >= 1, k <= snapshot.catalogueCount else {
            throw .invalidArgument("k = \(k) is not in 1...\(snapshot.catalogueCount) (the catalogue)")
        }
        let names = snapshot.model.agentNames
        let layout = snapshot.model.layout
        var result = CandidateSet(items: [], features: [],
                                  featureNames: names.map { $0 + ".score" } + names.map { $0 + ".rank" } + ["activity", "warmth"])
        guard layout.count == result.featureNames.count else {
            throw .internalError("the feature layout has \(layout.count) columns for \(names.count) agents")
        }
        var ids = [Int64](repeating: -1, count: k)
        var scores = [Float](repeating: 0, count: k)
        let captured = Lock<(items: [Int32], features: [Float])?>(nil)
        try [user].withUnsafeBufferPointer { (u) throws(ChorusError) in
            try ids.withUnsafeMutableBufferPointer { (i) throws(ChorusError) in
                try scores.withUnsafeMutableBufferPointer { (s) throws(ChorusError) in
                    try snapshot.rank(users: u, k: k, options: options, outIds: i.baseAddress!, outScores: s.baseAddress!,
                                      outShares: nil, outFlags: nil) { _, ranker in
                        captured.withLock { $0 = (ranker.candidates.items, ranker.candidates.features) }
                    }
                }
            }
        }
        guard let (items, features) = captured.withLock({ $0 }) else { throw .internalError("the request was not ranked") }
        result.items = items.map { snapshot.itemId($0) }
        result.features = features
        return result
    }
}
