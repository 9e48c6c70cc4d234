import Testing
import ChorusCore
@testable import ChorusAgents

/// The candidate stage: the union of the agents' proposals and the features the coordinator reads.
@Suite struct CandidatesTests {
    @Test func itemWarmthCountsDistinctUsersPerItem() {
        // Users 0 and 1 both have item 2 (user 0 twice: one cell); item 1 has one user; item 0 none.
        let m = SparseMatrix(rows: 2, cols: 3, rowIndex: [0, 0, 1, 1], colIndex: [2, 2, 2, 1], values: [1, 1, 1, 1])
        let w = Candidates.itemWarmth(m)
        #expect(w == [0, Float(log1p(1.0) / 8), Float(log1p(2.0) / 8)])
    }

    @Test func featuresHoldScoresRanksActivityAndWarmth() {
        let items = 5
        var a: [Float] = [0.9, 0.5, 0.5, 0.1, -.infinity]   // item 4 masked
        var b: [Float] = [0, 0, 0, 0.2, 1]
        let warmth: [Float] = [0.1, 0.2, 0.3, 0.4, 0.5]
        let ranks = UnsafeMutablePointer<Int32>.allocate(capacity: items)
        ranks.initialize(repeating: -1, count: items)
        defer { ranks.deallocate() }
        var out = Candidates.Set()
        a.withUnsafeMutableBufferPointer { pa in
            b.withUnsafeMutableBufferPointer { pb in
                warmth.withUnsafeBufferPointer { w in
                    Candidates.build(rows: [pa.baseAddress, nil, pb.baseAddress], itemCount: items, quota: 3, activity: 0.25,
                                     warmth: w.baseAddress!, rankScratch: ranks, into: &out)
                }
            }
        }
        // Agent 0 proposes 0, then 1 and 2 (tied); agent 2 proposes 4, 3, then one of the zeros.
        #expect(Set(out.items) == [0, 1, 2, 3, 4])
        #expect(Array(out.items.prefix(3)) == [0, 1, 2])
        let layout = Candidates.Features(agents: 3)
        #expect(layout.count == 8)
        #expect(out.features.count == out.items.count * layout.count)
        func feature(_ item: Int32, _ index: Int) -> Float {
            out.features[out.items.firstIndex(of: item)! * layout.count + index]
        }
        #expect(feature(0, layout.score(0)) == 0.9)
        #expect(feature(0, layout.rank(0)) == 1)                                  // 1 / log2(2)
        #expect(feature(1, layout.rank(0)) == feature(2, layout.rank(0)))          // ties share a rank
        #expect(feature(1, layout.rank(0)) == 1 / log2(Float(3)))
        #expect(feature(4, layout.score(0)) == 0)                                  // masked: no score
        #expect(feature(4, layout.rank(2)) == 1)
        #expect(feature(3, layout.score(1)) == 0 && feature(3, layout.rank(1)) == 0)  // agent 1 absent
        for item in out.items {
            #expect(feature(item, layout.activity) == 0.25)
            #expect(feature(item, layout.warmth) == warmth[Int(item)])
        }
        #expect((0..<items).allSatisfy { ranks[$0] == -1 }, "the rank scratch is restored")
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
