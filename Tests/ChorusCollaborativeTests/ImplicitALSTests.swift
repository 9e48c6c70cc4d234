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
            var a = [[Double]](repeating: [Double](repeating: 0, count: f + 1), count: f)
            for r in 0..<f { for k in 0..<f { a[r][k] = Double(g.row(r)[k]) } }
            for j in c.rowStart[u]..<c.rowStart[u + 1] {
                let yi = y.row(Int(c.colIndex[j])), conf = Double(c.values[j])
                for r in 0..<f {
                    for k in 0..<f { a[r][k] += (conf - 1) * Double(yi[r]) * Double(yi[k]) }
                    a[r][f] += conf * Double(yi[r])
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
                var s = a[r][f]
                for k in (r + 1)..<f { s -= a[r][k] * sol[k] }
                sol[r] = s / a[r][r]
            }
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

    @Test func progressCanCancel() {
        var p = ALSParameters()
        p.factors = 4; p.iterations = 10
        var calls = 0
        #expect(throws: ChorusError.self) {
            _ = try ImplicitALS.fit(userItems: twoClusters(), parameters: p) { _ in calls += 1; return calls == 2 }
        }
        #expect(calls == 2)
    }
}
