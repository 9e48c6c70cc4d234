import Testing
import CKernels
@testable import ChorusCore

/// The knowledge-graph kernels' portable loops against their AVX2 versions, on lengths around the
/// 8- and 16-lane blocks (so both the vector bodies and the scalar tails run). The training runs on
/// this machine only ever take the AVX2 path; a host without AVX2 takes the portable one.
@Suite struct KernelPathTests {
    static let lengths = [1, 3, 7, 8, 9, 15, 16, 17, 31, 40, 100, 203]

    /// Both tables, or nil when this CPU has no AVX2 (there is nothing to compare then).
    static func tables() -> (portable: ck_kg_kernels, simd: ck_kg_kernels)? {
        var portable = ck_kg_kernels(), simd = ck_kg_kernels()
        guard ck_kg_kernel_table(0, &portable) == 1 else { return nil }
        guard ck_kg_kernel_table(1, &simd) == 1 else { return nil }
        return (portable, simd)
    }

    /// Values in [-1, 1) with some exact repeats of `other` (where a difference is exactly 0).
    static func row(_ n: Int, seed: UInt64, sharingWith other: [Float]? = nil) -> [Float] {
        var rng = SeededRandom(seed: seed)
        return (0..<n).map { i in
            if let other, i % 5 == 2 { return other[i] }
            return rng.nextFloat() * 2 - 1
        }
    }

    static func bits(_ x: [Float]) -> [UInt32] { x.map(\.bitPattern) }

    @Test func thePortableTableIsAlwaysThere() {
        var t = ck_kg_kernels()
        #expect(ck_kg_kernel_table(0, &t) == 1)
        #expect(t.l1_distance != nil && t.adam != nil && t.modulus_axpy2 != nil)
    }

    @Test(arguments: lengths)
    func l1KernelsAgree(n: Int) throws {
        guard let (p, s) = Self.tables() else { return }
        let a = Self.row(n, seed: 1), b = Self.row(n, seed: 2, sharingWith: a)
        let dp = p.l1_distance(a, b, n), ds = s.l1_distance(a, b, n)
        // Lane sums add in another order than the running sum: equal to rounding.
        #expect(abs(dp - ds) <= 1e-6 * max(1, abs(dp)), "n \(n): \(dp) vs \(ds)")
        // The sign step has no sums to reorder: the same bits, including 0 where q == x.
        var gp = Self.row(n, seed: 3), gs = gp
        p.l1_sign_axpy(0.37, a, b, &gp, n)
        s.l1_sign_axpy(0.37, a, b, &gs, n)
        #expect(Self.bits(gp) == Self.bits(gs), "n \(n)")
    }

    /// RotatE's kernels keep 8 lane sums in the portable loop too, so they agree to the bit: a
    /// portable host trains the same model as an AVX2 one.
    @Test(arguments: lengths)
    func modulusKernelsAgreeToTheBit(d: Int) throws {
        guard let (p, s) = Self.tables() else { return }
        let q = Self.row(2 * d, seed: 4), x = Self.row(2 * d, seed: 5, sharingWith: q)
        #expect(p.modulus_sum(q, x, d).bitPattern == s.modulus_sum(q, x, d).bitPattern, "d \(d)")
        for sides in [(true, true), (true, false), (false, true)] {
            var gqP = Self.row(2 * d, seed: 6), gxP = Self.row(2 * d, seed: 7)
            var gqS = gqP, gxS = gxP
            gqP.withUnsafeMutableBufferPointer { gq in
                gxP.withUnsafeMutableBufferPointer { gx in
                    p.modulus_axpy2(-0.8, q, x, sides.0 ? gq.baseAddress : nil, sides.1 ? gx.baseAddress : nil, d)
                }
            }
            gqS.withUnsafeMutableBufferPointer { gq in
                gxS.withUnsafeMutableBufferPointer { gx in
                    s.modulus_axpy2(-0.8, q, x, sides.0 ? gq.baseAddress : nil, sides.1 ? gx.baseAddress : nil, d)
                }
            }
            #expect(Self.bits(gqP) == Self.bits(gqS) && Self.bits(gxP) == Self.bits(gxS), "d \(d), sides \(sides)")
            #expect(gqP.allSatisfy(\.isFinite) && gxP.allSatisfy(\.isFinite), "a zero modulus gives a 0 subgradient, not NaN")
        }
    }

    @Test(arguments: lengths)
    func adamKernelsAgree(n: Int) throws {
        guard let (p, s) = Self.tables() else { return }
        let g = Self.row(n, seed: 8)
        for unit: Int32 in [0, 1] {
            var xP = Self.row(n, seed: 9), mP = Self.row(n, seed: 10).map { $0 * 0.1 }, vP = Self.row(n, seed: 11).map { $0 * $0 }
            var xS = xP, mS = mP, vS = vP
            p.adam(&xP, &mP, &vP, g, n, 1e-3 / 0.1, (1 - 0.999).squareRoot(), unit)
            s.adam(&xS, &mS, &vS, g, n, 1e-3 / 0.1, (1 - 0.999).squareRoot(), unit)
            // The moments and the step are the same multiplies and adds in both.
            #expect(Self.bits(mP) == Self.bits(mS) && Self.bits(vP) == Self.bits(vS), "n \(n)")
            if unit == 0 {
                #expect(Self.bits(xP) == Self.bits(xS), "n \(n)")
            } else {
                // The norm's sum of squares is reordered (and fused) in the AVX2 path: equal to rounding.
                for i in 0..<n { #expect(abs(xP[i] - xS[i]) <= 1e-6, "n \(n), i \(i): \(xP[i]) vs \(xS[i])") }
                let norm = xP.reduce(0) { $0 + $1 * $1 }.squareRoot()
                #expect(abs(norm - 1) <= 1e-5)
            }
        }
    }
}
