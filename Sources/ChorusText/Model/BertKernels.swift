#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CKernels
import ChorusCore

/// The row-wise pieces of a BERT layer, each written to follow PyTorch's order of operations
/// (so that the result matches the original model to float rounding, not just approximately).
/// Rows are contiguous `Float` vectors; lengths need not be multiples of 8.
enum BertKernels {
    /// x = LayerNorm(x) with weight `gamma` and bias `beta`: (x - mean) / sqrt(var + eps) * gamma + beta,
    /// with the biased variance, as `torch.nn.LayerNorm`.
    @inline(__always)
    static func layerNorm(_ x: UnsafeMutablePointer<Float>, gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, _ n: Int, eps: Float) {
        let rx = UnsafeMutableRawPointer(x), rg = UnsafeRawPointer(gamma), rb = UnsafeRawPointer(beta)
        var acc = SIMD8<Float>()
        var k = 0
        while k + 8 <= n { acc += rx.loadUnaligned(fromByteOffset: k * 4, as: SIMD8<Float>.self); k += 8 }
        var sum = acc.sum()
        while k < n { sum += x[k]; k += 1 }
        let mean = sum / Float(n)
        let m8 = SIMD8<Float>(repeating: mean)
        acc = SIMD8<Float>()
        k = 0
        while k + 8 <= n {
            let d = rx.loadUnaligned(fromByteOffset: k * 4, as: SIMD8<Float>.self) - m8
            acc += d * d
            k += 8
        }
        var sq = acc.sum()
        while k < n { let d = x[k] - mean; sq += d * d; k += 1 }
        let rstd = 1 / (sq / Float(n) + eps).squareRoot()
        let r8 = SIMD8<Float>(repeating: rstd)
        k = 0
        while k + 8 <= n {
            let d = rx.loadUnaligned(fromByteOffset: k * 4, as: SIMD8<Float>.self) - m8
            let v = d * r8 * rg.loadUnaligned(fromByteOffset: k * 4, as: SIMD8<Float>.self) + rb.loadUnaligned(fromByteOffset: k * 4, as: SIMD8<Float>.self)
            rx.storeBytes(of: v, toByteOffset: k * 4, as: SIMD8<Float>.self)
            k += 8
        }
        while k < n { x[k] = (x[k] - mean) * rstd * gamma[k] + beta[k]; k += 1 }
    }

    /// x = LayerNorm(y + x): a dense layer's output (bias included) plus the residual, then the
    /// layer's LayerNorm (BertSelfOutput / BertOutput), in place in x.
    @inline(__always)
    static func residualLayerNorm(_ y: UnsafePointer<Float>, residual x: UnsafeMutablePointer<Float>,
                                  gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>, _ n: Int, eps: Float) {
        let rx = UnsafeMutableRawPointer(x), ry = UnsafeRawPointer(y)
        var k = 0
        while k + 8 <= n {
            let v = ry.loadUnaligned(fromByteOffset: k * 4, as: SIMD8<Float>.self) + rx.loadUnaligned(fromByteOffset: k * 4, as: SIMD8<Float>.self)
            rx.storeBytes(of: v, toByteOffset: k * 4, as: SIMD8<Float>.self)
            k += 8
        }
        while k < n { x[k] = y[k] + x[k]; k += 1 }
        layerNorm(x, gamma: gamma, beta: beta, n, eps: eps)
    }

    /// x = GELU(x), the erf form used by BERT (`torch.nn.functional.gelu`, approximate="none"):
    /// x * 0.5 * (1 + erf(x / sqrt 2)), with `erf` below, in C (`ck_gelu`: the same polynomials,
    /// 8 lanes with FMA on AVX2 CPUs; the library is built for baseline x86-64, where this Swift loop
    /// ran 4 lanes without FMA).
    @inline(__always)
    static func gelu(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        ck_gelu(x, n)
    }

    /// erf(x) in float, within 1.3 ulp of the exact value (glibc's `erff`: 0.9 ulp; measured on
    /// a grid of 4M points over [-6, 6]), branch-free so that loops calling it vectorise:
    /// |x| < 0.8: x + x R(x²); 0.8 <= |x| < 2.2 and 2.2 <= |x| < 3.92: polynomials in |x| - centre
    /// (least-squares Chebyshev fits); beyond 3.92, ±1 (erfc(3.92) is below half an ulp of 1).
    @inline(__always)
    static func erf(_ x: Float) -> Float {
        let a = x.magnitude
        let s = a * a
        var r: Float = -0.0006546708173118532
        r = r * s + 0.005086978897452354
        r = r * s - 0.02682185173034668
        r = r * s + 0.11283136904239655
        r = r * s - 0.3761260211467743
        r = r * s + 0.12837916612625122
        let small = a + a * r
        let t = a - 1.5
        var m: Float = 1.8446069589117542e-05
        m = m * t + 5.612700624624267e-05
        m = m * t - 0.0002546709729358554
        m = m * t - 7.895402086433023e-05
        m = m * t + 0.0017098780954256654
        m = m * t - 0.0023672485258430243
        m = m * t - 0.0047430619597435
        m = m * t + 0.019326945766806602
        m = m * t - 0.014866285026073456
        m = m * t - 0.04459892213344574
        m = m * t + 0.13875199854373932
        m = m * t - 0.17839543521404266
        m = m * t + 0.11893028765916824
        m = m * t + 0.9661051630973816
        let u = a - 3.06
        var l: Float = -0.00010205424769083038
        l = l * u + 0.00034714516368694603
        l = l * u - 0.0006034258403815329
        l = l * u + 0.0007711942307651043
        l = l * u - 0.0007720413850620389
        l = l * u + 0.0005732719437219203
        l = l * u - 0.00029663799796253443
        l = l * u + 9.67454761848785e-05
        l = l * u + 0.9999849200248718
        let y = a < 0.8 ? small : (a < 2.2 ? m : (a >= 3.92 ? 1 : l))  // NaN falls through to l: NaN
        return Float(signOf: x, magnitudeOf: y)
    }

    /// Scaled dot-product attention of one head over one sequence of `n` tokens (rows `ld` floats
    /// apart): for each query i, p = softmax(q_i · k_j / scale) over j < n, out_i = Σ_j p_j v_j,
    /// where `scale` is sqrt(d) (BERT divides the scores by it).
    ///
    /// Only the sequence's own tokens take part: with padding, BERT would add the most negative
    /// float to the scores of padding keys, whose exp is exactly 0, so the sums are the same.
    /// The head's keys and values are first copied into contiguous blocks so that both products
    /// run in the C row-dot kernel (`ck_row_dots`, AVX2+FMA when the CPU has it).
    /// - Parameters:
    ///   - scratch: room for `n * (2 * d + 1)` floats.
    @inline(__always)
    static func attention(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int,
                          n: Int, headSize d: Int, scale: Float,
                          out: UnsafeMutablePointer<Float>, ldOut: Int, scratch: UnsafeMutablePointer<Float>) {
        let keys = scratch                 // [n, d]
        let valuesT = scratch + n * d      // [d, n]
        let p = scratch + 2 * n * d        // [n]
        for j in 0..<n {
            (keys + j * d).update(from: k + j * ld, count: d)
            let vj = v + j * ld
            for c in 0..<d { valuesT[c * n + j] = vj[c] }
        }
        for i in 0..<n {
            ck_row_dots(keys, n, d, q + i * ld, p)
            for j in 0..<n { p[j] /= scale }
            softmax(p, n)
            ck_row_dots(valuesT, d, n, p, out + i * ldOut)
        }
    }

    /// x = softmax(x) over n values: exp(x - max) / Σ exp(x - max), as `torch.softmax`.
    @inline(__always)
    static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        var m = -Float.infinity
        for j in 0..<n { m = max(m, x[j]) }
        for j in 0..<n { x[j] = exp(x[j] - m) }
        let rx = UnsafeRawPointer(x)
        var acc = SIMD8<Float>()
        var j = 0
        while j + 8 <= n { acc += rx.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self); j += 8 }
        var sum = acc.sum()
        while j < n { sum += x[j]; j += 1 }
        for j in 0..<n { x[j] /= sum }
    }

    /// exp(x) in float for x <= 0 (softmax's shifted scores), within 1 ulp of the exact value
    /// (measured on 3M points over [-87.3, 0]); 0 below -87.34, where exp leaves the normal range.
    /// Branch-free, so loops calling it vectorise: x = n ln 2 + r with |r| <= ln 2 / 2 (ln 2 split
    /// in two for an exact n ln 2), exp(r) by Cephes' `expf` polynomial, 2^n from the exponent bits.
    @inline(__always)
    static func exp(_ x: Float) -> Float {
        let t = x * 1.44269504088896341 + 12_582_912  // 1.5 * 2^23: rounds x log2(e) to an integer
        let n = t - 12_582_912
        let ni = Int32(bitPattern: t.bitPattern) &- 0x4B40_0000
        var r = x - n * 0.693359375
        r = r - n * -2.12194440e-4
        var p: Float = 1.9875691500e-4
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let y = p * (r * r) + r + 1
        let scale = Float(bitPattern: UInt32(bitPattern: (ni &+ 127) &<< 23))
        return x < -87.33654 ? 0 : y * scale
    }

    /// Mean of the first `n` rows of x (`cols` wide, stride `ld`), then divided by its L2 norm
    /// (sentence-transformers' mean Pooling and Normalize: sum / max(n, 1e-9), then x / max(‖x‖, 1e-12)).
    static func meanPoolNormalize(_ x: UnsafePointer<Float>, rows n: Int, cols: Int, ld: Int, into out: UnsafeMutablePointer<Float>) {
        out.initialize(repeating: 0, count: cols)
        for r in 0..<n { Kernels.axpy(1, x + r * ld, out, cols) }
        let count = max(Float(n), 1e-9)
        for c in 0..<cols { out[c] /= count }
        let norm = max(Kernels.dot(out, out, cols).squareRoot(), 1e-12)
        for c in 0..<cols { out[c] /= norm }
    }
}
