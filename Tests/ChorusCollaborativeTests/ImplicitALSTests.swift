import Testing
@testable import ChorusCollaborative
@testable import ChorusCore

/// Two groups of users, each interacting only with its own group of items.
func twoClusters(users: Int = 40, items: Int = 20) -> SparseMatrix {
    var r = [Int32](), c = [Int32](), v = [Float]()
    var rng = SeededRandom(seed: 1)
    for u in 0..<users {
        let group = u % 2
        for i in 0..<items where i % 2 == group && rng.nextFloat() < 0.6 {
            r.append(Int32(u)); c.append(Int32(i)); v.append(1 + Float(rng.nextInt(below: 4)))
        }
    }
    return SparseMatrix(rows: users, cols: items, rowIndex: r, colIndex: c, values: v)
}

@Suite struct ImplicitALSTests {
    @Test func recoversTheClusters() throws {
        var p = ALSParameters()
        p.factors = 8; p.iterations = 10; p.threads = 2
        let m = twoClusters()
        let f = try ImplicitALS.fit(userItems: m, parameters: p)
        for u in 0..<m.rows {
            let xu = f.users.row(u)
            let own = (0..<m.cols).filter { $0 % 2 == u % 2 }.map { Kernels.dot(xu, f.items.row($0), 8) }
            let other = (0..<m.cols).filter { $0 % 2 != u % 2 }.map { Kernels.dot(xu, f.items.row($0), 8) }
            let ownMean: Float = own.reduce(0, +) / Float(own.count)
            let otherMean: Float = other.reduce(0, +) / Float(other.count)
            #expect(ownMean > otherMean + 0.3)
        }
    }

    /// With enough CG steps, a half-sweep solves each user's normal equations exactly:
    /// (YᵀY + λI + Σ (c−1) y yᵀ) x = Σ c y. Checked against a Gaussian-elimination solve in Double.
    @Test func conjugateGradientSolvesTheNormalEquations() throws {
        let f = 6, lambda: Float = 0.1, alpha: Float = 2
        let m = twoClusters(users: 6, items: 10)
        let c = ImplicitALS.confidences(m, alpha: alpha)
        var rng = SeededRandom(seed: 5)
        let y = try FloatMatrix(rows: m.cols, cols: f)
        for i in 0..<y.count { y.base[i] = rng.nextFloat() - 0.5 }
        let x = try FloatMatrix(rows: m.rows, cols: f)
        let g = try FloatMatrix(rows: f, cols: f)
        Kernels.gram(y, lambda: lambda, into: g)
        ImplicitALS.solve(c, x: x, y: y, gram: g, cgSteps: 3 * f, threads: 1)
        for u in 0..<m.rows {
            let sol = referenceSolution(c, y: y, gram: g, row: u)
            for k in 0..<f { #expect(abs(Double(x.row(u)[k]) - sol[k]) < 1e-3 * max(1, abs(sol[k]))) }
        }
    }

    @Test func deterministicForASeedWhateverTheThreadCount() throws {
        var p = ALSParameters()
        p.factors = 8; p.iterations = 3
        p.threads = 1
        let a = try ImplicitALS.fit(userItems: twoClusters(), parameters: p)
        p.threads = 3
        let b = try ImplicitALS.fit(userItems: twoClusters(), parameters: p)
        #expect(a.users.toArray() == b.users.toArray())
        #expect(a.items.toArray() == b.items.toArray())
        p.seed = 7
        let c = try ImplicitALS.fit(userItems: twoClusters(), parameters: p)
        #expect(a.items.toArray() != c.items.toArray())
    }

    /// A warm start continues a fit: 5 sweeps from the factors of 5 sweeps are, bit for bit, 10 sweeps.
    @Test func aWarmStartContinuesTheFit() throws {
        var p = ALSParameters()
        p.factors = 8; p.threads = 2
        p.iterations = 10
        let ten = try ImplicitALS.fit(userItems: twoClusters(), parameters: p)
        p.iterations = 5
        let five = try ImplicitALS.fit(userItems: twoClusters(), parameters: p)
        let more = try ImplicitALS.fit(userItems: twoClusters(), parameters: p, initial: five)
        #expect(try more.users.toArray() == ten.users.toArray() && more.items.toArray() == ten.items.toArray())
        #expect(try five.users.toArray() != ten.users.toArray())  // the start was copied, not changed
    }

    @Test func progressCanCancel() {
        var p = ALSParameters()
        p.factors = 4; p.iterations = 10
        var calls = 0
        #expect(throws: ChorusError.self) {
            _ = try ImplicitALS.fit(userItems: twoClusters(), parameters: p) { _ in calls += 1; return calls == 2 }
        }
        #expect(calls == 2)
    }

    /// Rows whose confidences pass the threshold are solved exactly in Double: checked against the
    /// reference at ordinary and at large confidences (where Float CG diverges). Past Double's reach
    /// (1e20, 1e29: the matrix is numerically singular) the row fits its observed items instead.
    @Test(arguments: [Float(2), 1e9, 1e20, 1e29])
    func exactRowSolveMatchesTheReference(alpha: Float) throws {
        let f = 6, lambda: Float = 0.1
        let m = twoClusters(users: 6, items: 10)
        let c = ImplicitALS.confidences(m, alpha: alpha)
        var rng = SeededRandom(seed: 9)
        let y = try FloatMatrix(rows: m.cols, cols: f)
        for i in 0..<y.count { y.base[i] = rng.nextFloat() - 0.5 }
        let g = try FloatMatrix(rows: f, cols: f)
        Kernels.gram(y, lambda: lambda, into: g)
        var x = [Float](repeating: 0, count: f)
        for u in 0..<m.rows {
            c.colIndex.withUnsafeBufferPointer { cols in c.values.withUnsafeBufferPointer { vals in
                ExactRowSolve.solve(cols: cols, vals: vals, start: c.rowStart[u], end: c.rowStart[u + 1], y: y, gram: g, x: &x)
            }}
            #expect(x.allSatisfy { $0.isFinite })
            if alpha < 1e12 {
                let sol = referenceSolution(c, y: y, gram: g, row: u)
                for k in 0..<f { #expect(abs(Double(x[k]) - sol[k]) < 1e-3 * max(1, abs(sol[k])), "alpha \(alpha) user \(u)") }
            } else {
                for j in c.rowStart[u]..<c.rowStart[u + 1] {
                    let score = Kernels.dot(x, y.row(Int(c.colIndex[j])), f)
                    #expect(abs(score - 1) < 1e-2, "alpha \(alpha) user \(u): observed item scored \(score)")
                }
            }
        }
    }

    /// Just below the threshold Float CG still converges: a half-sweep's CG and the exact solve agree.
    @Test func conjugateGradientStillConvergesAtTheThreshold() throws {
        let f = 6, lambda: Float = 0.1
        let m = twoClusters(users: 6, items: 10)
        let alpha = ExactRowSolve.confidenceThreshold / 5 // weights are 1...4: confidences up to 0.8 · threshold
        let c = ImplicitALS.confidences(m, alpha: alpha)
        var rng = SeededRandom(seed: 5)
        let y = try FloatMatrix(rows: m.cols, cols: f)
        for i in 0..<y.count { y.base[i] = rng.nextFloat() - 0.5 }
        let g = try FloatMatrix(rows: f, cols: f)
        Kernels.gram(y, lambda: lambda, into: g)
        let x = try FloatMatrix(rows: m.rows, cols: f)
        ImplicitALS.solve(c, x: x, y: y, gram: g, cgSteps: 3 * f, threads: 1)
        for u in 0..<m.rows {
            let sol = referenceSolution(c, y: y, gram: g, row: u)
            for k in 0..<f { #expect(abs(Double(x.row(u)[k]) - sol[k]) < 1e-2 * max(1, abs(sol[k])), "user \(u)") }
        }
    }

    /// Any finite weight fits: 1e21, 2e25 and Float's largest (twice, summing past it) with a large α
    /// give finite factors; with one weight for every pair they reproduce the observed pairs. (At such
    /// confidences the unobserved pairs, confidence 1, weigh nothing: the objective itself stops
    /// separating them, so that is all there is to check.) Mixed huge and ordinary weights: finite.
    @Test(arguments: [[Float(1e21)], [2e25], [.greatestFiniteMagnitude], [1e21, 2e25, .greatestFiniteMagnitude, 1]])
    func hugeWeightsFitToFiniteFactors(weights huge: [Float]) throws {
        let base = twoClusters()
        var r = [Int32](), c = [Int32](), v = [Float]()
        for u in 0..<base.rows {
            for j in base.rowStart[u]..<base.rowStart[u + 1] {
                let w = huge[(u + j) % huge.count]
                r.append(Int32(u)); c.append(base.colIndex[j]); v.append(w)
                if w == .greatestFiniteMagnitude { r.append(Int32(u)); c.append(base.colIndex[j]); v.append(w) }
            }
        }
        let m = SparseMatrix(rows: base.rows, cols: base.cols, rowIndex: r, colIndex: c, values: v)
        #expect(m.values.allSatisfy { $0.isFinite })
        var p = ALSParameters()
        p.factors = 8; p.iterations = 10; p.threads = 2; p.alpha = 1000
        let fit = try ImplicitALS.fit(userItems: m, parameters: p)
        let users = try fit.users.toArray(), items = try fit.items.toArray()
        #expect(users.allSatisfy { $0.isFinite } && items.allSatisfy { $0.isFinite })
        guard huge.count == 1 else { return }
        for u in 0..<m.rows {
            for j in m.rowStart[u]..<m.rowStart[u + 1] {
                let score = Kernels.dot(fit.users.row(u), fit.items.row(Int(m.colIndex[j])), 8)
                #expect(abs(score - 1) < 0.05, "user \(u), item \(m.colIndex[j]): \(score)")
            }
        }
    }
}

/// The solution of row `u`'s normal equations (YᵀY + λI + Σ (c−1) y yᵀ) x = Σ c y by Gaussian
/// elimination in Double, from the Gram matrix `gram` (YᵀY + λI), scaled by the row's largest
/// confidence so huge confidences stay in range.
func referenceSolution(_ c: SparseMatrix, y: FloatMatrix, gram g: FloatMatrix, row u: Int) -> [Double] {
    let f = y.cols
    let s = (c.rowStart[u]..<c.rowStart[u + 1]).map { Double(c.values[$0]) }.max().map { max($0, 1) } ?? 1
    var a = [[Double]](repeating: [Double](repeating: 0, count: f + 1), count: f)
    for r in 0..<f { for k in 0..<f { a[r][k] = Double(g.row(r)[k]) / s } }
    for j in c.rowStart[u]..<c.rowStart[u + 1] {
        let yi = y.row(Int(c.colIndex[j])), conf = Double(c.values[j])
        for r in 0..<f {
            for k in 0..<f { a[r][k] += (conf - 1) / s * Double(yi[r]) * Double(yi[k]) }
            a[r][f] += conf / s * Double(yi[r])
        }
    }
    // Gaussian elimination (the matrix is symmetric positive definite).
    for p in 0..<f {
        for r in (p + 1)..<f {
            let q = a[r][p] / a[p][p]
            for k in p...f { a[r][k] -= q * a[p][k] }
        }
    }
    var sol = [Double](repeating: 0, count: f)
    for r in stride(from: f - 1, through: 0, by: -1) {
        var v = a[r][f]
        for k in (r + 1)..<f { v -= a[r][k] * sol[k] }
        sol[r] = v / a[r][r]
    }
    return sol
}
