import Testing
@testable import ChorusCore
import CKernels

@Suite struct ExactTopKTests {
    /// The blocked, threaded, four-queries-at-a-time search gives exactly (indices and score bits)
    /// what scoring every item and selecting gives, for any thread count; ties go to the lower
    /// index across blocks and slices (duplicated rows make exact ties).
    @Test(arguments: [64, 65])
    func searchEqualsFullScoringAndSelection(dimension d: Int) {
        var rng = SeededRandom(seed: 21)
        let m = 5003
        var items = (0..<(m * d)).map { _ in rng.nextFloat() - 0.5 }
        // Exact ties: rows 4000... copy rows 10..., in other blocks and slices.
        for r in 0..<20 { for j in 0..<d { items[(4000 + r) * d + j] = items[(10 + r) * d + j] } }
        let queries = (0..<9).map { _ in (0..<d).map { _ in rng.nextFloat() - 0.5 } }
        items.withUnsafeBufferPointer { ip in
            let qs = queries.map { q in let p = UnsafeMutablePointer<Float>.allocate(capacity: d); p.initialize(from: q, count: d); return UnsafePointer(p) }
            defer { qs.forEach { UnsafeMutablePointer(mutating: $0).deallocate() } }
            var expected: [[(index: Int32, score: Float)]] = []
            for q in qs {
                var scores = [Float](repeating: 0, count: m)
                scores.withUnsafeMutableBufferPointer { ck_row_dots(ip.baseAddress!, m, d, q, $0.baseAddress!) }
                expected.append(scores.withUnsafeBufferPointer { TopK.select($0, k: 25) })
            }
            for threads in [1, 2, 3] {
                for n in [1, 4, 9] {
                    let got = ExactTopK.search(items: ip.baseAddress!, count: m, dimension: d, queries: Array(qs.prefix(n)), k: 25, threads: threads)
                    for q in 0..<n {
                        #expect(got[q].map(\.index) == expected[q].map(\.index), "d \(d) threads \(threads) queries \(n) query \(q)")
                        #expect(got[q].map(\.score.bitPattern) == expected[q].map(\.score.bitPattern))
                    }
                }
            }
            // k past the catalogue, and an empty query list.
            #expect(ExactTopK.search(items: ip.baseAddress!, count: 3, dimension: d, queries: [qs[0]], k: 10, threads: 2)[0].count == 3)
            #expect(ExactTopK.search(items: ip.baseAddress!, count: m, dimension: d, queries: [], k: 10, threads: 2).isEmpty)
        }
    }

    /// A slice boundary that is not a multiple of 4 rows would score the rows before it with the
    /// kernel's scalar tail instead of its 4-row vector path (other rounding): slices start at
    /// multiples of 4, so every item is scored as one scan over the whole matrix scores it. Rows
    /// 1024 and 1025 end the first of two slices of 1026 rows without that rule.
    @Test func sliceBoundariesKeepTheScoresOfOneScan() {
        var rng = SeededRandom(seed: 5)
        let d = 64, m = 2052
        var items = (0..<(m * d)).map { _ in rng.nextFloat() - 0.5 }
        let query = (0..<d).map { _ in rng.nextFloat() - 0.5 }
        for j in 0..<d { items[1025 * d + j] = query[j] * 10 + 0.01 * items[1025 * d + j]; items[1024 * d + j] = query[j] * 9 }
        items.withUnsafeBufferPointer { ip in query.withUnsafeBufferPointer { qp in
            var scores = [Float](repeating: 0, count: m)
            scores.withUnsafeMutableBufferPointer { ck_row_dots(ip.baseAddress!, m, d, qp.baseAddress!, $0.baseAddress!) }
            let expected = scores.withUnsafeBufferPointer { TopK.select($0, k: 5) }
            #expect(expected.prefix(2).map(\.index) == [1025, 1024])
            for threads in [1, 2, 3] {
                let got = ExactTopK.search(items: ip.baseAddress!, count: m, dimension: d, queries: [qp.baseAddress!], k: 5, threads: threads)[0]
                #expect(got.map(\.index) == expected.map(\.index), "threads \(threads)")
                #expect(got.map(\.score.bitPattern) == expected.map(\.score.bitPattern), "threads \(threads)")
            }
        } }
    }
}
