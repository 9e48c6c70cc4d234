import ChorusCore
import Testing
@testable import ChorusText

/// `Dense` (the `ck_linear` kernel, columns split over threads) against a double-precision loop,
/// on shapes that exercise every tail: rows not a multiple of 3, widths not multiples of 4 or 16,
/// inner lengths not multiples of 8, and a part boundary inside a column group.
@Suite struct DenseTests {
    @Test func matchesDirectProducts() throws {
        var seed: UInt64 = 7
        func next() -> Float {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Float(seed >> 40) / Float(1 << 24) - 0.5
        }
        for (rows, k, widths, threads) in [(1, 8, [4], 1), (2, 9, [5, 3], 2), (7, 385, [20, 13, 7], 2), (50, 64, [384], 3), (4, 1, [1], 2),
                                         (70, 385, [20, 13, 7], 2), (64, 16, [33], 1), (100, 24, [16, 16], 2)] {
            // Every case with panels (the packed kernel from CK_LINEAR_PACK_ROWS rows) and without.
            for panels in [nil, try ChorusCore.FloatMatrix(rows: threads, cols: 16 * (k + 1), zeroed: false)] {
            let x = (0..<rows * k).map { _ in next() }
            let ws = widths.map { n in (0..<n * k).map { _ in next() } }, bs = widths.map { n in (0..<n).map { _ in next() } }
            let total = widths.reduce(0, +)
            var y = [Float](repeating: .nan, count: rows * total)
            ws.withUnsafeBufferPointers { wp in bs.withUnsafeBufferPointers { bp in
                let dense = Dense(inDim: k, (0..<widths.count).map { (wp[$0].baseAddress!, bp[$0].baseAddress!, widths[$0]) })
                x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                    dense.apply(xp.baseAddress!, rows: rows, ldx: k, into: yp.baseAddress!, ldy: total, threads: threads, panels: panels)
                } }
            } }
            var col = 0
            for (p, n) in widths.enumerated() {
                for r in 0..<rows { for j in 0..<n {
                    var s = Double(bs[p][j])
                    for i in 0..<k { s += Double(x[r * k + i]) * Double(ws[p][j * k + i]) }
                    #expect(abs(Double(y[r * total + col + j]) - s) <= 1e-5 * Double(k), "rows \(rows) k \(k) part \(p) [\(r), \(j)]")
                } }
                col += n
            }
            }
        }
    }
}

extension Array where Element == [Float] {
    /// Calls `body` with a stable pointer to every inner array's storage.
    func withUnsafeBufferPointers<R>(_ body: ([UnsafeBufferPointer<Float>]) -> R) -> R {
        func go(_ i: Int, _ acc: [UnsafeBufferPointer<Float>]) -> R {
            if i == count { return body(acc) }
            return self[i].withUnsafeBufferPointer { go(i + 1, acc + [$0]) }
        }
        return go(0, [])
    }
}
