import ChorusCore

/// A per-user temporal hold-out: each user's latest interactions become the test set, the rest
/// stays for training. It mimics the deployed task (predict what a user does next from what they
/// did before) and, unlike a random split, never lets a model see a user's future.
public struct TemporalSplit: Sendable {
    /// The training interactions, in their original order.
    public var train: [Interaction]
    /// The relevant held-out items per test user. Users whose held-out interactions are all
    /// filtered out (by `minRating` or as repeats of training items) are absent.
    public var test: [Int64: Set<Int64>]
    /// Interactions held out (moved out of train), relevant or not.
    public var heldOut: Int
    /// Held-out interactions that were not relevant because their weight is below `minRating`.
    public var belowMinRating: Int
    /// Held-out interactions dropped from the test set because the same user has the same item in
    /// train: with seen items excluded from recommendations they could never be hits.
    public var repeatsDropped: Int
    /// Users with fewer than 2 interactions, kept entirely in train.
    public var usersTrainOnly: Int
    /// Relevant (user, item) test pairs whose item never occurs in train. They stay in the test set
    /// and count as misses: no collaborative model can recommend an item it has never seen.
    public var coldTestPairs: Int
    /// Distinct test items that never occur in train.
    public var coldTestItems: Int

    /// The number of relevant (user, item) pairs in the test set.
    public var relevantPairs: Int { test.values.reduce(0) { $0 + $1.count } }

    /// Splits `interactions` per user by time.
    ///
    /// For each user, interactions are ordered by timestamp, ties by their position in
    /// `interactions`; the last `h = round(n * fraction)` of the user's `n` interactions are held
    /// out, clamped to `1 ... n - 1` so every split user keeps at least one training interaction and
    /// holds out at least one. Users with `n < 2` stay entirely in train.
    ///
    /// - Parameters:
    ///   - interactions: every interaction (several per (user, item) pair are allowed).
    ///   - fraction: the share of each user's history to hold out, in (0, 1). Default 0.2.
    ///   - minRating: when set, only held-out interactions with `weight >= minRating` are relevant
    ///     (e.g. 4 for "liked" on a 5-star scale); the others are still removed from train. When
    ///     nil (the default), every held-out interaction is relevant.
    /// - Throws: `.invalidArgument` for a fraction outside (0, 1) or a non-finite `minRating`.
    /// - Complexity: O(n log n).
    public static func split(_ interactions: [Interaction], fraction: Double = 0.2, minRating: Float? = nil) throws(ChorusError) -> TemporalSplit {
        guard fraction > 0, fraction < 1 else {
            throw .invalidArgument("the hold-out fraction must be in (0, 1), got \(fraction)")
        }
        if let minRating, !minRating.isFinite { throw .invalidArgument("minRating must be finite, got \(minRating)") }

        let isTest = TemporalHoldOut.split(users: interactions.map(\.user), timestamps: interactions.map(\.timestamp),
                                           fraction: fraction, minimumRows: 2)
        var rowsPerUser: [Int64: Int] = [:]
        for x in interactions { rowsPerUser[x.user, default: 0] += 1 }
        let usersTrainOnly = rowsPerUser.values.filter { $0 < 2 }.count

        var train: [Interaction] = []
        train.reserveCapacity(interactions.count)
        var trainItems = Set<Int64>()
        var trainPairs = Set<Pair>()
        for (i, x) in interactions.enumerated() where !isTest[i] {
            train.append(x)
            trainItems.insert(x.item)
            trainPairs.insert(Pair(user: x.user, item: x.item))
        }

        var test: [Int64: Set<Int64>] = [:]
        var heldOut = 0, belowMinRating = 0, repeatsDropped = 0
        for (i, x) in interactions.enumerated() where isTest[i] {
            heldOut += 1
            if let minRating, x.weight < minRating { belowMinRating += 1; continue }
            if trainPairs.contains(Pair(user: x.user, item: x.item)) { repeatsDropped += 1; continue }
            test[x.user, default: []].insert(x.item)
        }
        var coldPairs = 0
        var coldItems = Set<Int64>()
        for (_, items) in test {
            for item in items where !trainItems.contains(item) { coldPairs += 1; coldItems.insert(item) }
        }
        return TemporalSplit(train: train, test: test, heldOut: heldOut, belowMinRating: belowMinRating,
                             repeatsDropped: repeatsDropped, usersTrainOnly: usersTrainOnly,
                             coldTestPairs: coldPairs, coldTestItems: coldItems.count)
    }

    struct Pair: Hashable { var user: Int64; var item: Int64 }
}
