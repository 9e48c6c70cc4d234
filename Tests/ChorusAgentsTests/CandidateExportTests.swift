import Testing
@testable import ChorusAgents
@testable import ChorusCore

/// `Engine.candidates`: the set the coordinator ranks, as recommend builds it.
@Suite struct CandidateExportTests {
    @Test func candidatesHoldTheServedSlateWithTheLayoutsFeatures() throws {
        let e = try clusteredEngine()
        try e.fit(fastParameters())
        let names = e.agentNames
        for user: Int64 in [1, 2, 7] {
            let c = try e.candidates(user: user, k: 10)
            let top = try e.recommend(users: [user], k: 10)[0].items
            #expect(top.count == 10)
            #expect(Set(top).isSubset(of: Set(c.items)), "user \(user): slate \(top) not among the candidates \(c.items)")
            #expect(Set(c.items).count == c.items.count)
            #expect(c.featureNames == names.map { $0 + ".score" } + names.map { $0 + ".rank" } + ["activity", "warmth"])
            #expect(c.features.count == c.items.count * (2 * names.count + 2))
            #expect(c.features.allSatisfy { $0.isFinite })
            // The user's activity is the same on every row; a proposed item has some agent's rank signal.
            let w = c.featureNames.count
            let activity = c.featureNames.firstIndex(of: "activity")!
            #expect(Set((0..<c.items.count).map { c.features[$0 * w + activity] }).count == 1)
            for j in 0..<c.items.count { #expect(c.row(j)[(j * w + names.count)..<(j * w + 2 * names.count)].contains { $0 > 0 }) }
        }
    }

    @Test func newItemsFromFeedbackAreCandidatesWithTheirIds() throws {
        let e = try clusteredEngine()
        try e.fit(fastParameters())
        // Item 999 is unknown to the model; users 3, 5 and 9 (odd cluster) consume it.
        try e.feedback(users: [3, 5, 9], items: [999, 999, 999], events: [.purchase, .purchase, .purchase])
        let c = try e.candidates(user: 1, k: 5)
        #expect(c.items.contains(999))
        #expect(c.items.allSatisfy { ($0 > 100 && $0 <= 120) || ($0 > 200 && $0 <= 220) || $0 == 999 })
        // The user who consumed it no longer gets it (masked like a seen item: no finite proposal).
        let top = try e.recommend(users: [3], k: 5)[0].items
        #expect(!top.contains(999))
        #expect(Set(top).isSubset(of: Set(try e.candidates(user: 3, k: 5).items)))
    }

    @Test func badRequestsAreErrors() throws {
        let e = try clusteredEngine()
        #expect(throws: ChorusError.self) { try e.candidates(user: 1) }  // not fitted
        try e.fit(fastParameters())
        var o = RecommendOptions(); o.agent = "als"
        #expect(throws: ChorusError.self) { try e.candidates(user: 1, options: o) }
        #expect(throws: ChorusError.self) { try e.candidates(user: 1, k: 0) }
        #expect(throws: ChorusError.self) { try e.candidates(user: 1, k: 100_000) }
        // An unknown user is served (cold fallback), so it has candidates.
        #expect(!(try e.candidates(user: 123_456, k: 3).items.isEmpty))
    }
}
