import Testing
import ChorusCore
@testable import ChorusEval

@Suite struct TemporalSplitTests {
    func x(_ u: Int64, _ i: Int64, _ t: Int64, _ w: Float = 1) -> Interaction {
        Interaction(user: u, item: i, weight: w, timestamp: t)
    }

    @Test func holdsOutTheLatestFractionPerUser() throws {
        // User 1: 10 interactions, items 100...109 at times 109...100 (reverse file order):
        //   round(10 * 0.2) = 2 held out: the two latest, items 100 (t=109) and 101 (t=108).
        // User 2: 3 interactions: round(0.6) = 1 held out: the latest, item 202 (t=5).
        // User 3: 2 interactions: round(0.4) = 0 -> clamped up to 1: item 301 (t=2).
        // User 4: 1 interaction: stays in train.
        var data: [Interaction] = []
        for j in 0..<10 { data.append(x(1, Int64(100 + j), Int64(109 - j))) }
        data += [x(2, 200, 1), x(2, 202, 5), x(2, 201, 3)]
        data += [x(3, 301, 2), x(3, 300, 1)]
        data += [x(4, 400, 7)]
        let s = try TemporalSplit.split(data)
        #expect(s.test[1] == [100, 101])
        #expect(s.test[2] == [202])
        #expect(s.test[3] == [301])
        #expect(s.test[4] == nil)
        #expect(s.heldOut == 4)
        #expect(s.usersTrainOnly == 1)
        #expect(s.train.count == data.count - 4)
        // Train keeps the original order.
        #expect(s.train == data.filter { ![100, 101, 202, 301].contains($0.item) })
        // Items 202 and 301 never occur in train (items 100, 101 do not either): 4 cold pairs, 4 cold items.
        #expect(s.coldTestPairs == 4)
        #expect(s.coldTestItems == 4)
        #expect(s.relevantPairs == 4)
    }

    @Test func keepsAtLeastOneInTrain() throws {
        // fraction 0.9 on 2 interactions: round(1.8) = 2 -> clamped to n - 1 = 1.
        let s = try TemporalSplit.split([x(1, 1, 1), x(1, 2, 2)], fraction: 0.9)
        #expect(s.train == [x(1, 1, 1)])
        #expect(s.test == [1: [2]])
    }

    @Test func tiesKeepFileOrder() throws {
        // All at the same time: the later position counts as later, so the last 2 of 5
        // (round(5 * 0.4) = 2) are held out: items 4 and 5.
        let data = (1...5).map { x(7, Int64($0), 42) }
        let s = try TemporalSplit.split(data, fraction: 0.4)
        #expect(s.test[7] == [4, 5])
        #expect(s.train.map(\.item) == [1, 2, 3])
    }

    @Test func minRatingFiltersRelevance() throws {
        // 5 ratings, last 2 held out (round(5 * 0.4) = 2): item 4 rated 2 (below 4) and item 5 rated 5.
        // Both leave train; only item 5 is relevant.
        let data = [x(1, 1, 1, 5), x(1, 2, 2, 3), x(1, 3, 3, 4), x(1, 4, 4, 2), x(1, 5, 5, 5),
                    // User 2: its one held-out rating (round(0.4 * 2) = 1, item 21) is a 1: the user leaves the test set.
                    x(2, 20, 1, 5), x(2, 21, 2, 1)]
        let s = try TemporalSplit.split(data, fraction: 0.4, minRating: 4)
        #expect(s.test == [1: [5]])
        #expect(s.heldOut == 3)
        #expect(s.belowMinRating == 2)
        #expect(s.train.count == 4)
    }

    @Test func repeatsOfTrainItemsAreDropped() throws {
        // User 1 consumes item 1 at t=1 and again at t=3 (held out): it could never be a hit with
        // seen items excluded, so it leaves the test set; the user then has nothing relevant.
        // Item 2 is in train (user 2), so it is not cold.
        let s = try TemporalSplit.split([x(1, 1, 1), x(1, 2, 2), x(1, 1, 3), x(2, 2, 1), x(2, 3, 2)], fraction: 0.34)
        // User 1: round(3 * 0.34) = 1 held out (item 1 at t=3); user 2: round(0.68) = 1 (item 3, cold).
        #expect(s.repeatsDropped == 1)
        #expect(s.test == [2: [3]])
        #expect(s.coldTestPairs == 1)
    }

    @Test func rejectsBadFractions() {
        #expect(throws: ChorusError.self) { try TemporalSplit.split([], fraction: 0) }
        #expect(throws: ChorusError.self) { try TemporalSplit.split([], fraction: 1) }
        #expect(throws: ChorusError.self) { try TemporalSplit.split([], fraction: .nan) }
        #expect(throws: ChorusError.self) { try TemporalSplit.split([], minRating: .infinity) }
    }
}
