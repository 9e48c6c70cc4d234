import ChorusCore

/// Hyper-parameters of implicit-feedback ALS.
public struct ALSParameters: Sendable, Equatable {
    public var factors = 64
    public var regularization: Float = 0.01
    /// Confidence scaling: c_ui = 1 + alpha * w_ui (Hu, Koren & Volinsky 2008).
    public var alpha: Float = 1
    public var iterations = 15
    /// Conjugate-gradient steps per user per sweep (implicit's default, 3, warm-started).
    public var cgSteps = 3
    public var threads = 0
    public var seed: UInt64 = 42
    public init() {}
}

/// Matrix factorisation for implicit feedback (Hu, Koren & Volinsky 2008, "Collaborative Filtering
/// for Implicit Feedback Datasets"), solved by alternating least squares with a few warm-started
/// conjugate-gradient steps per row (Takács, Pilászy & Tikk 2011), as `implicit` does.
///
/// Each user u minimises Σ_i c_ui (p_ui − x_uᵀ y_i)² + λ‖x_u‖², with p_ui = 1 for observed
/// pairs, 0 otherwise, and c_ui = 1 + α w_ui for observed pairs, 1 otherwise. The normal equations
/// (YᵀY + λI + Σ_{i∈u} (c_ui − 1) y_i y_iᵀ) x_u = Σ_{i∈u} c_ui y_i are solved without forming
/// the per-user matrix: YᵀY comes once per sweep from BLAS, the sparse part is applied per product.
/// Rows with confidences past `ExactRowSolve.confidenceThreshold` are solved exactly in Double.
public enum ImplicitALS {
    public struct Factors: Sendable {
        public let users: FloatMatrix
        public let items: FloatMatrix
        public init(users: FloatMatrix, items: FloatMatrix) { self.users = users; self.items = items }
    }

    /// Trains factors for the `userItems` weights matrix (users x items, raw weights w_ui > 0).
    /// - Parameter progress: called after each sweep with the fraction done; return true to cancel.
    /// - Throws: `.cancelled` when `progress` asks to stop, `.outOfMemory`.
    /// - Complexity: O(iterations · (nnz · f · (cgSteps + 1) + (users + items) · f² · cgSteps)).
    /// - Parameter initial: factors to start from instead of the random start (a warm start: the
    ///   same shape, users x factors and items x factors); copied, not changed, unless `inPlace`:
    ///   then trained in place and returned (a warm start whose factors are not needed after:
    ///   no second set held, 490 MiB at 1M users and 1M items x 64).
    public static func fit(userItems: SparseMatrix, parameters p: ALSParameters, initial: Factors? = nil, inPlace: Bool = false,
                           progress: ((Double) -> Bool)? = nil) throws(ChorusError) -> Factors {
        let f = p.factors
        let ui = confidences(userItems, alpha: p.alpha)
        let iu = ui.transposed()
        let fits = initial.map { $0.users.rows == ui.rows && $0.items.rows == ui.cols && $0.users.cols == f && $0.items.cols == f } ?? false
        let users: FloatMatrix, items: FloatMatrix
        if fits, inPlace, let initial {
            users = initial.users
            items = initial.items
        } else if fits, let initial {
            users = try initial.users.copy()
            items = try initial.items.copy()
        } else {
            users = try FloatMatrix(rows: ui.rows, cols: f)
            items = try FloatMatrix(rows: ui.cols, cols: f)
            var rng = SeededRandom(seed: p.seed)
            // Small random start, as implicit does (uniform in [0, 0.01)).
            for i in 0..<users.count { users.base[i] = rng.nextFloat() * 0.01 }
            for i in 0..<items.count { items.base[i] = rng.nextFloat() * 0.01 }
        }
        let gram = try FloatMatrix(rows: f, cols: f)
        let threads = p.threads > 0 ? p.threads : Parallel.cpuCount
        for it in 0..<p.iterations {
            Kernels.gram(items, lambda: p.regularization, into: gram)
            solve(ui, x: users, y: items, gram: gram, cgSteps: p.cgSteps, threads: threads)
            Kernels.gram(users, lambda: p.regularization, into: gram)
            solve(iu, x: items, y: users, gram: gram, cgSteps: p.cgSteps, threads: threads)
            if let progress, progress(Double(it + 1) / Double(p.iterations)) {
                throw .cancelled("ALS training cancelled by the progress callback after \(it + 1) of \(p.iterations) iterations")
            }
        }
        return Factors(users: users, items: items)
    }

    /// One row's solve against fixed factors `y` (online fold-in: implicit's `recalculate_user`):
    /// x ← the CG solution of (gram + Σ_j α w_j y_j y_jᵀ) x = Σ_j (1 + α w_j) y_j, warm-started from
    /// `x`, by the same per-row routine as a fit's half-sweep (`solve`). `gram` = YᵀY + λI.
    /// - Parameters:
    ///   - items: the row's column indices into `y` (distinct), `weights` their raw weights (> 0).
    ///   - x: `y.cols` floats, the start on entry and the solution on return.
    ///   - cgSteps: `y.cols` gives the exact solve up to rounding (CG on an f x f system).
    ///   - tolerance: stop once the residual's norm is at most this share of the right-hand side's
    ///     (0: the fit's plain CG for every step). With one, CG is preconditioned by the diagonal, and
    ///     a warm start near the solution takes a few steps, not f.
    public static func solveRow(items: [Int32], weights: [Float], alpha: Float, y: FloatMatrix, gram: FloatMatrix,
                                x: inout [Float], cgSteps: Int, tolerance: Float = 0) throws(ChorusError) {
        precondition(items.count == weights.count && x.count == y.cols)
        let confidences = weights.map { min(1 + alpha * $0, maxConfidence) }
        items.withUnsafeBufferPointer { cols in
            confidences.withUnsafeBufferPointer { c in
                x.withUnsafeMutableBufferPointer { solveOne(cols: cols, confidences: c, x: $0.baseAddress!, y: y, gram: gram, cgSteps: cgSteps, tolerance: tolerance) }
            }
        }
    }

    /// The exact user step against fixed item factors for every row of `userItems` at once (a
    /// merge of shard models re-solves each user against the merged item factors): each row of
    /// `users` becomes the solution of (YᵀY + λI + Σ α w_i y_i y_iᵀ) x = Σ (1 + α w_i) y_i, by the
    /// fit's per-row routine run for f conjugate-gradient steps (exact up to rounding), warm-started
    /// from the row as given. Rows without entries become 0.
    public static func solveUsers(userItems: SparseMatrix, items: FloatMatrix, users: FloatMatrix, regularization: Float, alpha: Float,
                                  threads: Int) throws(ChorusError) {
        precondition(userItems.rows == users.rows && userItems.cols == items.rows && users.cols == items.cols)
        let gram = try FloatMatrix(rows: items.cols, cols: items.cols)
        Kernels.gram(items, lambda: regularization, into: gram)
        for u in 0..<userItems.rows where userItems.rowStart[u] == userItems.rowStart[u + 1] {
            users.row(u).update(repeating: 0, count: users.cols)
        }
        solve(confidences(userItems, alpha: alpha), x: users, y: items, gram: gram, cgSteps: items.cols,
              threads: threads > 0 ? threads : Parallel.cpuCount)
    }

    /// Confidences past this are clamped to it: any finite weight and α give a finite confidence,
    /// which `ExactRowSolve` handles (it divides by the row's largest).
    static let maxConfidence: Float = 1e30

    /// c_ui = 1 + α w_ui for the stored entries, at most `maxConfidence`.
    static func confidences(_ m: SparseMatrix, alpha: Float) -> SparseMatrix {
        var rowIndex = [Int32](); rowIndex.reserveCapacity(m.nonZeros)
        for r in 0..<m.rows { for _ in m.rowStart[r]..<m.rowStart[r + 1] { rowIndex.append(Int32(r)) } }
        return SparseMatrix(rows: m.rows, cols: m.cols, rowIndex: rowIndex, colIndex: m.colIndex,
                            values: m.values.map { min(1 + alpha * $0, maxConfidence) })
    }

    /// One half-sweep: every row of `x` from the fixed `y`, in parallel. Rows are independent, so
    /// the result does not depend on the thread count.
    static func solve(_ c: SparseMatrix, x: FloatMatrix, y: FloatMatrix, gram: FloatMatrix, cgSteps: Int, threads: Int) {
        let box = SendableBox((c, x, y, gram))
        Parallel.forEach(count: c.rows, threads: threads, grain: 32) { _, u in
            let (c, x, y, gram) = box.value
            c.colIndex.withUnsafeBufferPointer { cols in
            c.values.withUnsafeBufferPointer { vals in
                let range = c.rowStart[u]..<c.rowStart[u + 1]
                solveOne(cols: UnsafeBufferPointer(rebasing: cols[range]), confidences: UnsafeBufferPointer(rebasing: vals[range]),
                         x: x.row(u), y: y, gram: gram, cgSteps: cgSteps, tolerance: 0)
            }}
        }
    }

    /// One row: x ← the solution of (gram + Σ_j (c_j − 1) y_j y_jᵀ) x = Σ_j c_j y_j over the row's
    /// columns and confidences, by CG from x (the exact solve past `ExactRowSolve`'s threshold).
    /// `tolerance` > 0: stop once the residual's norm is at most that share of the right-hand side's.
    static func solveOne(cols: UnsafeBufferPointer<Int32>, confidences vals: UnsafeBufferPointer<Float>, x xu: UnsafeMutablePointer<Float>,
                         y: FloatMatrix, gram: FloatMatrix, cgSteps: Int, tolerance: Float) {
        let f = y.cols, n = cols.count
        var largest: Float = 1
        for j in 0..<n { largest = max(largest, vals[j]) }
        if largest > ExactRowSolve.confidenceThreshold {
            ExactRowSolve.solve(cols: cols, vals: vals, start: 0, end: n, y: y, gram: gram, x: xu)
            return
        }
        if tolerance > 0 {
            preconditioned(cols: cols, confidences: vals, x: xu, y: y, gram: gram, cgSteps: cgSteps, tolerance: tolerance)
            return
        }
        // Scratch on the stack of this call: 3 vectors of f floats.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * f) { tmp in
            let r = tmp.baseAddress!, pv = r + f, ap = r + 2 * f
            // r = b − A x = Σ c_ui y_i − (G x + Σ (c_ui − 1)(y_i·x) y_i)
            Kernels.symv(gram.base, xu, r, f)
            for j in 0..<f { r[j] = -r[j] }
            for j in 0..<n {
                let yi = y.row(Int(cols[j]))
                let conf = vals[j]
                Kernels.axpy(conf - (conf - 1) * Kernels.dot(yi, xu, f), yi, r, f)
            }
            pv.update(from: r, count: f)
            var rsOld = Kernels.dot(r, r, f)
            if rsOld < 1e-20 { return }
            for _ in 0..<cgSteps {
                product(cols: cols, confidences: vals, y: y, gram: gram, pv, into: ap)
                let alpha = rsOld / Kernels.dot(pv, ap, f)
                Kernels.axpy(alpha, pv, xu, f)
                Kernels.axpy(-alpha, ap, r, f)
                let rsNew = Kernels.dot(r, r, f)
                if rsNew < 1e-20 { break }
                let beta = rsNew / rsOld
                for j in 0..<f { pv[j] = r[j] + beta * pv[j] }
                rsOld = rsNew
            }
        }
    }

    /// CG preconditioned by A's diagonal (Jacobi), until |r| <= tolerance · |b|: the fold-in's
    /// solve, where a row is solved alone and the steps, not the sweep's order, set the cost.
    static func preconditioned(cols: UnsafeBufferPointer<Int32>, confidences vals: UnsafeBufferPointer<Float>, x xu: UnsafeMutablePointer<Float>,
                               y: FloatMatrix, gram: FloatMatrix, cgSteps: Int, tolerance: Float) {
        let f = y.cols, n = cols.count
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 5 * f) { tmp in
            let r = tmp.baseAddress!, pv = r + f, ap = r + 2 * f, z = r + 3 * f, m = r + 4 * f
            // m = 1 / diag(A), A = G + Σ (c − 1) y yᵀ; b = Σ c y (in pv until the loop).
            for k in 0..<f { m[k] = gram.base[k * f + k] }
            pv.update(repeating: 0, count: f)
            Kernels.symv(gram.base, xu, r, f)
            for k in 0..<f { r[k] = -r[k] }
            for j in 0..<n {
                let yi = y.row(Int(cols[j]))
                let conf = vals[j]
                for k in 0..<f { m[k] += (conf - 1) * yi[k] * yi[k] }
                Kernels.axpy(conf, yi, pv, f)
                Kernels.axpy(conf - (conf - 1) * Kernels.dot(yi, xu, f), yi, r, f)
            }
            let enough = max(1e-20, tolerance * tolerance * Kernels.dot(pv, pv, f))
            for k in 0..<f { m[k] = m[k] > 0 && m[k].isFinite ? 1 / m[k] : 1 }
            if Kernels.dot(r, r, f) < enough { return }
            for k in 0..<f { z[k] = m[k] * r[k] }
            pv.update(from: z, count: f)
            var rzOld = Kernels.dot(r, z, f)
            for _ in 0..<cgSteps {
                product(cols: cols, confidences: vals, y: y, gram: gram, pv, into: ap)
                let alpha = rzOld / Kernels.dot(pv, ap, f)
                Kernels.axpy(alpha, pv, xu, f)
                Kernels.axpy(-alpha, ap, r, f)
                if Kernels.dot(r, r, f) < enough { break }
                for k in 0..<f { z[k] = m[k] * r[k] }
                let rzNew = Kernels.dot(r, z, f)
                let beta = rzNew / rzOld
                for k in 0..<f { pv[k] = z[k] + beta * pv[k] }
                rzOld = rzNew
            }
        }
    }

    /// ap = A p for one row's system, A = G + Σ_j (c_j − 1) y_j y_jᵀ: both CG loops' step.
    @inline(__always)
    static func product(cols: UnsafeBufferPointer<Int32>, confidences vals: UnsafeBufferPointer<Float>, y: FloatMatrix, gram: FloatMatrix,
                        _ p: UnsafeMutablePointer<Float>, into ap: UnsafeMutablePointer<Float>) {
        let f = y.cols
        Kernels.symv(gram.base, p, ap, f)
        for j in 0..<cols.count {
            let yi = y.row(Int(cols[j]))
            Kernels.axpy((vals[j] - 1) * Kernels.dot(yi, p, f), yi, ap, f)
        }
    }
}
