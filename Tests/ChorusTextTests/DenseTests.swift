import CKernels
import ChorusCore
import Testing
@testable import ChorusText

/// `Dense` (half-precision panels, `ck_linear_f16`, panels split over threads) against a
/// double-precision loop over the same weights rounded to binary16, on shapes that exercise every
/// tail: rows not a multiple of 6, widths not multiples of 16, inner lengths not multiples of 8, and a
/// part boundary inside a panel.
@Suite struct DenseTests {
    struct Case { let rows: Int, k: Int, widths: [Int], threads: Int }
    static let cases = [Case(rows: 1, k: 8, widths: [4], threads: 1), Case(rows: 2, k: 9, widths: [5, 3], threads: 2),
                        Case(rows: 7, k: 385, widths: [20, 13, 7], threads: 2), Case(rows: 50, k: 64, widths: [384], threads: 3),
                        Case(rows: 4, k: 1, widths: [1], threads: 2), Case(rows: 70, k: 385, widths: [20, 13, 7], threads: 2),
                        Case(rows: 64, k: 16, widths: [33], threads: 1), Case(rows: 100, k: 24, widths: [16, 16], threads: 2)]

    struct Data {
        let x: [Float], ws: [[Float]], bs: [[Float]]
        var total: Int { ws.indices.reduce(0) { $0 + bs[$1].count } }

        init(_ c: Case, seed: inout UInt64) {
            func next() -> Float {
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return Float(seed >> 40) / Float(1 << 24) - 0.5
            }
            x = (0..<c.rows * c.k).map { _ in next() }
            ws = c.widths.map { n in (0..<n * c.k).map { _ in next() } }
            bs = c.widths.map { n in (0..<n).map { _ in next() } }
        }

        /// y[r, j] in double, from the weights rounded to binary16 (what the kernel multiplies by).
        func expected(_ c: Case) -> [Double] {
            var y = [Double](repeating: 0, count: c.rows * total)
            var col = 0
            for (p, n) in c.widths.enumerated() {
                for r in 0..<c.rows { for j in 0..<n {
                    var s = Double(bs[p][j])
                    for i in 0..<c.k { s += Double(x[r * c.k + i]) * Double(Float(Float16(ws[p][j * c.k + i]))) }
                    y[r * total + col + j] = s
                } }
                col += n
            }
            return y
        }
    }

    @Test func matchesDirectProducts() throws {
        var seed: UInt64 = 7
        for c in DenseTests.cases {
            let d = Data(c, seed: &seed), total = d.total
            var y = [Float](repeating: .nan, count: c.rows * total)
            try d.ws.withUnsafeBufferPointers { wp in try d.bs.withUnsafeBufferPointers { bp in
                let dense = try Dense(inDim: c.k, (0..<c.widths.count).map { (wp[$0].baseAddress!, bp[$0].baseAddress!, c.widths[$0]) })
                d.x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
                    dense.apply(xp.baseAddress!, rows: c.rows, ldx: c.k, into: yp.baseAddress!, ldy: total, threads: c.threads)
                } }
            } }
            let e = d.expected(c)
            for i in 0..<y.count {
                #expect(abs(Double(y[i]) - e[i]) <= 1e-6 * Double(c.k), "rows \(c.rows) k \(c.k) [\(i / total), \(i % total)]")
            }
        }
    }

    /// The portable loop (CPUs without AVX2+FMA+F16C) against the same reference, and a row's result
    /// independent of how many rows share the call and of the panel split.
    @Test func portablePathAndRowIndependence() {
        var seed: UInt64 = 11
        for c in DenseTests.cases {
            let d = Data(c, seed: &seed), total = d.total, panels = (total + 15) / 16
            var packed = [UInt16](repeating: 0, count: panels * 16 * c.k), bias = [Float](repeating: 0, count: panels * 16)
            var col = 0
            for (p, n) in c.widths.enumerated() {
                d.ws[p].withUnsafeBufferPointer { w in packed.withUnsafeMutableBufferPointer { pk in
                    ck_linear_f16_pack(w.baseAddress!, n, c.k, c.k, pk.baseAddress!, col)
                } }
                for j in 0..<n { bias[col + j] = d.bs[p][j] }
                col += n
            }
            var portable = [Float](repeating: .nan, count: c.rows * total), oneByOne = portable
            packed.withUnsafeBufferPointer { pk in bias.withUnsafeBufferPointer { b in d.x.withUnsafeBufferPointer { x in
                portable.withUnsafeMutableBufferPointer { y in
                    ck_linear_f16_portable(x.baseAddress!, c.rows, c.k, c.k, pk.baseAddress!, b.baseAddress!, 0, panels, total, y.baseAddress!, total)
                }
                oneByOne.withUnsafeMutableBufferPointer { y in
                    for r in 0..<c.rows { for p in 0..<panels {
                        ck_linear_f16(x.baseAddress! + r * c.k, 1, c.k, c.k, pk.baseAddress!, b.baseAddress!, p, p + 1, total,
                                      y.baseAddress! + r * total, total)
                    } }
                }
            } } }
            let e = d.expected(c)
            for i in 0..<portable.count {
                #expect(abs(Double(portable[i]) - e[i]) <= 1e-6 * Double(c.k), "portable: rows \(c.rows) k \(c.k) [\(i / total), \(i % total)]")
            }
            // All rows in one call (Dense.apply, threads 1) equals one row and one panel at a time, exactly.
            var all = [Float](repeating: .nan, count: c.rows * total)
            try? d.ws.withUnsafeBufferPointers { wp in try d.bs.withUnsafeBufferPointers { bp in
                let dense = try Dense(inDim: c.k, (0..<c.widths.count).map { (wp[$0].baseAddress!, bp[$0].baseAddress!, c.widths[$0]) })
                d.x.withUnsafeBufferPointer { xp in all.withUnsafeMutableBufferPointer { yp in
                    dense.apply(xp.baseAddress!, rows: c.rows, ldx: c.k, into: yp.baseAddress!, ldy: total, threads: 1)
                } }
            } }
            #expect(all == oneByOne, "rows \(c.rows) k \(c.k): a row's result depends on the rows beside it")
        }
    }

    /// ck_float_to_half (F16C for runs of 8, the portable rounding for the rest) against Swift's
    /// Float16 conversion (round to nearest, ties to even), and ck_half_to_float on every binary16.
    @Test func halfConversions() {
        var values: [Float] = [0, -0, 1, -1, 65504, 65519.99, 65520, -65520, 1e9, .infinity, -.infinity,
                               6.1035156e-05, 6.097555e-05, 5.9604645e-08, 2.9802322e-08, 2.9802326e-08, 4.4703484e-08,
                               1e-10, -1e-10, 1.00048828125, 1.000732421875, 0.333333, .leastNonzeroMagnitude]
        var rng = SeededRandom(seed: 5)
        for _ in 0..<20_000 { values.append(Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) ) }
        let finite = values.filter { !$0.isNaN }
        var bulk = [UInt16](repeating: 0, count: finite.count)
        finite.withUnsafeBufferPointer { f in bulk.withUnsafeMutableBufferPointer { h in ck_float_to_half(f.baseAddress!, h.baseAddress!, finite.count) } }
        for (i, v) in finite.enumerated() {
            var one: UInt16 = 0
            withUnsafePointer(to: v) { ck_float_to_half($0, &one, 1) }
            let want = Float16(v).bitPattern
            #expect(bulk[i] == want && one == want, "\(v): \(bulk[i]) / \(one), want \(want)")
        }
        var nan: UInt16 = 0
        withUnsafePointer(to: Float.nan) { ck_float_to_half($0, &nan, 1) }
        #expect(Float16(bitPattern: nan).isNaN)
        for bits in 0...UInt16.max {
            let h = Float16(bitPattern: bits), f = ck_half_to_float(bits)
            #expect(h.isNaN ? f.isNaN : f.bitPattern == Float(h).bitPattern, "binary16 \(bits)")
        }
    }
}

extension Array where Element == [Float] {
    /// Calls `body` with a stable pointer to every inner array's storage.
    func withUnsafeBufferPointers<R>(_ body: ([UnsafeBufferPointer<Float>]) throws -> R) rethrows -> R {
        func go(_ i: Int, _ acc: [UnsafeBufferPointer<Float>]) throws -> R {
            if i == count { return try body(acc) }
            return try self[i].withUnsafeBufferPointer { try go(i + 1, acc + [$0]) }
        }
        return try go(0, [])
    }
}
