import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import ChorusText

/// The encoder's row kernels against direct double-precision computations.
@Suite struct ModelKernelTests {
    /// Units in the last place of `exact` (as a Float) that `value` is off by.
    func ulps(_ value: Float, _ exact: Double) -> Double {
        abs(Double(value) - exact) / Double(Float(exact).magnitude.ulp)
    }

    @Test func erfIsWithinOneAndAHalfUlp() {
        // A uniform grid over [-6, 6], plus a geometric one towards 0 (relative accuracy there).
        var xs: [Float] = []
        var x: Float = -6
        while x <= 6 { xs.append(x); x += 0.000_173 }
        var small: Float = 1e-30
        while small < 1 { xs.append(small); xs.append(-small); small *= 1.01 }
        var worst = 0.0, worstGlibc = 0.0
        for x in xs {
            let exact = Glibc.erf(Double(x))
            worst = max(worst, ulps(BertKernels.erf(x), exact))
            worstGlibc = max(worstGlibc, ulps(erff(x), exact))
        }
        #expect(worst <= 1.5, "max error \(worst) ulp (glibc erff: \(worstGlibc))")
        #expect(BertKernels.erf(0) == 0 && BertKernels.erf(-0.0).sign == .minus)
        #expect(BertKernels.erf(10) == 1 && BertKernels.erf(-10) == -1 && BertKernels.erf(.infinity) == 1)
        #expect(BertKernels.erf(-.infinity) == -1 && BertKernels.erf(.nan).isNaN)
    }

    @Test func geluMatchesTheErfForm() {
        var xs: [Float] = []
        var x: Float = -10
        while x <= 10 { xs.append(x); x += 0.0137 }
        var out = xs
        out.withUnsafeMutableBufferPointer { BertKernels.gelu($0.baseAddress!, $0.count) }
        for (v, g) in zip(xs, out) {
            let exact = 0.5 * Double(v) * (1 + Glibc.erf(Double(v) / 2.0.squareRoot()))
            #expect(abs(Double(g) - exact) <= 1e-6 * max(1, abs(exact)), "gelu(\(v)) = \(g), exact \(exact)")
        }
    }

    @Test func layerNormMatchesDefinition() {
        let n = 389  // not a multiple of 8
        var x = (0..<n).map { Float(sin(Double($0) * 0.37) * 3 + 0.5) }
        let gamma = (0..<n).map { Float(1 + 0.01 * Double($0 % 7)) }
        let beta = (0..<n).map { Float(0.1 * Double($0 % 3)) }
        let mean = x.reduce(0.0) { $0 + Double($1) } / Double(n)
        let variance = x.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(n)
        let expected = (0..<n).map { (Double(x[$0]) - mean) / (variance + 1e-12).squareRoot() * Double(gamma[$0]) + Double(beta[$0]) }
        x.withUnsafeMutableBufferPointer { BertKernels.layerNorm($0.baseAddress!, gamma: gamma, beta: beta, n, eps: 1e-12) }
        for k in 0..<n { #expect(abs(Double(x[k]) - expected[k]) < 1e-5) }
    }

    @Test func attentionMatchesSoftmaxDefinition() {
        let n = 7, d = 5, ld = 3 * d + 2  // q, k, v side by side in padded rows
        let rows = (0..<n * ld).map { Float(cos(Double($0) * 1.3)) }
        var out = [Float](repeating: .nan, count: n * d)
        var scratch = [Float](repeating: 0, count: n * (2 * d + 1))
        rows.withUnsafeBufferPointer { r in
            let q = r.baseAddress!
            out.withUnsafeMutableBufferPointer { o in
                scratch.withUnsafeMutableBufferPointer { s in
                    BertKernels.attention(q: q, k: q + d, v: q + 2 * d, ld: ld, n: n, headSize: d, scale: Float(d).squareRoot(),
                                          out: o.baseAddress!, ldOut: d, scratch: s.baseAddress!)
                }
            }
        }
        for i in 0..<n {
            let scores = (0..<n).map { j in (0..<d).reduce(0.0) { $0 + Double(rows[i * ld + $1]) * Double(rows[j * ld + d + $1]) } / Double(d).squareRoot() }
            let m = scores.max()!
            let e = scores.map { exp($0 - m) }
            let sum = e.reduce(0, +)
            for c in 0..<d {
                let expected = (0..<n).reduce(0.0) { $0 + e[$1] / sum * Double(rows[$1 * ld + 2 * d + c]) }
                #expect(abs(Double(out[i * d + c]) - expected) < 1e-5)
            }
        }
    }

    @Test func poolingAveragesAndNormalises() {
        let x: [Float] = [1, 2, 3, 4, 5, 6, 100, 100]  // 4 rows of 2; the last is not pooled
        var out: [Float] = [0, 0]
        out.withUnsafeMutableBufferPointer { BertKernels.meanPoolNormalize(x, rows: 3, cols: 2, ld: 2, into: $0.baseAddress!) }
        let norm = (9.0 * 9 + 12 * 12).squareRoot()
        #expect(abs(Double(out[0]) - 9 / norm) < 1e-7 && abs(Double(out[1]) - 12 / norm) < 1e-7)
        // A zero mean stays zero (division by max(norm, 1e-12)), not NaN.
        let zeros: [Float] = [0, 0]
        out.withUnsafeMutableBufferPointer { BertKernels.meanPoolNormalize(zeros, rows: 1, cols: 2, ld: 2, into: $0.baseAddress!) }
        #expect(out == [0, 0])
    }
}
