import ChorusCore

/// The exact solve of one ALS row in Double precision, for rows whose confidences are too spread
/// for single-precision conjugate gradients.
///
/// With c_ui = 1 + α w_ui, a row whose largest confidence is 10^12 has a normal matrix whose
/// condition number is about that large: three Float CG steps then wander off (their residual's
/// square overflows past c ≈ 10^19) and the fit diverges to NaN. Such rows are rare (huge weights
/// or α), so they get the textbook solve instead: form A = G + Σ (c_ui − 1) y_i y_iᵀ and
/// b = Σ c_ui y_i in Double, divided by the largest confidence s (the solution is unchanged and
/// every entry stays ≤ ‖y‖²-sized), and solve by Cholesky. When λ/s is too small for Double to keep
/// the matrix positive definite, a ridge of 10^-12 of the mean diagonal (then more) is added: the
/// row then fits its observed items and stays finite. Cost O(n_u f² + f³) for a row with n_u entries.
enum ExactRowSolve {
    /// Rows whose largest confidence passes this are solved here; below it, Float CG converges
    /// (tested just below 10^4 against this solve: `ImplicitALSTests`).
    static let confidenceThreshold: Float = 1e4

    /// Overwrites `x` (f values) with the solution for the row's entries `start..<end`.
    static func solve(cols: UnsafeBufferPointer<Int32>, vals: UnsafeBufferPointer<Float>, start: Int, end: Int,
                      y: FloatMatrix, gram: FloatMatrix, x: UnsafeMutablePointer<Float>) {
        let f = y.cols
        var s = 1.0
        for j in start..<end { s = max(s, Double(vals[j])) }
        withUnsafeTemporaryAllocation(of: Double.self, capacity: 2 * f * f + 2 * f) { tmp in
            let a = tmp.baseAddress!, a0 = a + f * f, b = a0 + f * f, yd = b + f
            for k in 0..<f * f { a0[k] = Double(gram.base[k]) / s }
            for k in 0..<f { b[k] = 0 }
            for j in start..<end {
                let yi = y.row(Int(cols[j]))
                for k in 0..<f { yd[k] = Double(yi[k]) }
                let c = Double(vals[j])
                let w = (c - 1) / s, wb = c / s
                for r in 0..<f {
                    b[r] += wb * yd[r]
                    let wr = w * yd[r]
                    if wr == 0 { continue }
                    let row = a0 + r * f
                    for k in r..<f { row[k] += wr * yd[k] }
                }
            }
            // Mirror the upper triangle (the Gram part was already full and symmetric).
            for r in 0..<f { for k in 0..<r { a0[r * f + k] = a0[k * f + r] } }
            var trace = 0.0
            for r in 0..<f { trace += a0[r * f + r] }
            // No extra ridge unless Cholesky fails (λ/s below Double's reach: the matrix is then
            // numerically singular); then 10^-12, 10^-9, ... of the mean diagonal.
            var ridge = 0.0
            for attempt in 0..<6 {
                a.update(from: a0, count: f * f)
                for r in 0..<f { a[r * f + r] += ridge }
                if cholesky(a, f) {
                    substitute(a, b, yd, f)
                    for k in 0..<f { x[k] = Float(yd[k]) }
                    if (0..<f).allSatisfy({ x[$0].isFinite }) { return }
                }
                ridge = attempt == 0 ? max(trace / Double(f), .leastNormalMagnitude) * 1e-12 : ridge * 1e3
            }
            // Not positive definite even with a large ridge (a row of zero factors): no preference.
            x.update(repeating: 0, count: f)
        }
    }

    /// In-place lower Cholesky factor of the symmetric `a` (f × f, row-major); false when a pivot
    /// is not positive.
    private static func cholesky(_ a: UnsafeMutablePointer<Double>, _ f: Int) -> Bool {
        for j in 0..<f {
            var d = a[j * f + j]
            for k in 0..<j { d -= a[j * f + k] * a[j * f + k] }
            guard d > 0, d.isFinite else { return false }
            let l = d.squareRoot()
            a[j * f + j] = l
            for i in (j + 1)..<f {
                var v = a[i * f + j]
                for k in 0..<j { v -= a[i * f + k] * a[j * f + k] }
                a[i * f + j] = v / l
            }
        }
        return true
    }

    /// Solves L Lᵀ x = b with the factor from `cholesky`, writing x to `out`.
    private static func substitute(_ l: UnsafeMutablePointer<Double>, _ b: UnsafeMutablePointer<Double>,
                                   _ out: UnsafeMutablePointer<Double>, _ f: Int) {
        for i in 0..<f {
            var v = b[i]
            for k in 0..<i { v -= l[i * f + k] * out[k] }
            out[i] = v / l[i * f + i]
        }
        for i in stride(from: f - 1, through: 0, by: -1) {
            var v = out[i]
            for k in (i + 1)..<f { v -= l[k * f + i] * out[k] }
            out[i] = v / l[i * f + i]
        }
    }
}
