#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
@testable import ChorusCollaborative
@testable import ChorusCore

@Suite struct BPRTests {
    static var small: BPRParameters {
        var p = BPRParameters()
        p.factors = 8; p.iterations = 30; p.learningRate = 0.05
        return p
    }

    /// x_ui = p_u · q_i + b_i: the dot product over every column (the user side of the bias is 1).
    func score(_ f: BPR.Factors, user u: Int, item i: Int) -> Float {
        (0..<f.users.cols).reduce(Float(0)) { $0 + f.users.row(u)[$1] * f.items.row(i)[$1] }
    }

    @Test func positivesOutrankItemsTheirClusterNeverTouched() throws {
        let m = twoClusters()
        let f = try BPR.fit(userItems: m, parameters: Self.small)
        // What each cluster (users of the same parity) touched, read off the matrix.
        var touched = [Set<Int32>(), Set<Int32>()]
        for u in 0..<m.rows { touched[u % 2].formUnion(m.row(u).cols) }
        for u in 0..<m.rows {
            let positives = m.row(u).cols.map { score(f, user: u, item: Int($0)) }
            let untouched = (0..<m.cols).filter { !touched[u % 2].contains(Int32($0)) }.map { score(f, user: u, item: $0) }
            try #require(!positives.isEmpty && !untouched.isEmpty)
            #expect(positives.min()! > untouched.max()!, "user \(u): positives \(positives.min()!) vs untouched \(untouched.max()!)")
        }
    }

    @Test func factorsHaveTheStatedShape() throws {
        let m = twoClusters(users: 6, items: 8)
        let f = try BPR.fit(userItems: m, parameters: Self.small)
        #expect(f.users.rows == 6 && f.items.rows == 8)
        #expect(f.users.cols == Self.small.factors + 1 && f.items.cols == Self.small.factors + 1)
        // The users' last column pairs with the item bias and stays exactly 1.
        #expect((0..<6).allSatisfy { f.users.row($0)[Self.small.factors] == 1 })
        #expect(f.users.toArray().allSatisfy(\.isFinite) && f.items.toArray().allSatisfy(\.isFinite))
    }

    @Test func aSeedFixesTheResult() throws {
        var p = Self.small
        let a = try BPR.fit(userItems: twoClusters(), parameters: p)
        let b = try BPR.fit(userItems: twoClusters(), parameters: p)
        #expect(a.users.toArray() == b.users.toArray())
        #expect(a.items.toArray() == b.items.toArray())
        p.seed = 43
        let c = try BPR.fit(userItems: twoClusters(), parameters: p)
        #expect(a.items.toArray() != c.items.toArray())
    }

    /// Stratified SGD: blocks of one round share no row, so the result depends on the seed only,
    /// not on the thread count, and it learns the clusters (a catalogue big enough for 4 blocks).
    @Test func blocksLearnAndAnyThreadCountGivesTheSameResult() throws {
        let m = twoClusters(users: 80, items: 256)
        #expect(BPR.blockCount(users: m.rows, items: m.cols) == 4)
        var p = Self.small
        let one = try BPR.fit(userItems: m, parameters: p)
        for threads in [2, 3, 8] {
            p.threads = threads
            let f = try BPR.fit(userItems: m, parameters: p)
            #expect(f.users.toArray() == one.users.toArray() && f.items.toArray() == one.items.toArray(), "\(threads) threads")
        }
        var touched = [Set<Int32>(), Set<Int32>()]
        for u in 0..<m.rows { touched[u % 2].formUnion(m.row(u).cols) }
        for u in 0..<m.rows {
            let positives = m.row(u).cols.map { score(one, user: u, item: Int($0)) }
            let untouched = (0..<m.cols).filter { !touched[u % 2].contains(Int32($0)) }.map { score(one, user: u, item: $0) }
            let below = positives.filter { $0 <= untouched.max()! }.count
            #expect(below * 10 <= positives.count, "user \(u): \(below) of \(positives.count) positives below an untouched item")
        }
        #expect(BPR.blockCount(users: 1000, items: 100_000) == 8 && BPR.blockCount(users: 40, items: 20) == 1)
    }

    @Test func strataDealEveryInteractionAndItemOnce() {
        let m = twoClusters()
        var owner = [Int32](repeating: 0, count: m.nonZeros)
        for u in 0..<m.rows { for e in m.rowStart[u]..<m.rowStart[u + 1] { owner[e] = Int32(u) } }
        let s = BPR.Strata(m, owner: owner, blocks: 3)
        #expect(s.items.flatMap { $0 }.sorted() == (0..<Int32(m.cols)).map { $0 })
        #expect(s.edges.flatMap { $0 }.sorted() == (0..<Int32(m.nonZeros)).map { $0 })
        #expect(s.items.allSatisfy { abs($0.count - m.cols / 3) <= 1 })
    }

    @Test func afterEpochStopsTrainingEarly() throws {
        var seen: [Int] = []
        _ = try BPR.fit(userItems: twoClusters(), parameters: Self.small, afterEpoch: { epoch, factors in
            seen.append(epoch)
            #expect(factors.items.rows == 20)
            return epoch == 4
        })
        #expect(seen == [1, 2, 3, 4])
    }

    @Test func progressCanCancel() {
        var calls = 0
        #expect(throws: ChorusError.self) {
            _ = try BPR.fit(userItems: twoClusters(), parameters: Self.small) { _ in calls += 1; return calls == 3 }
        }
        #expect(calls == 3)
    }

    @Test func dataWithoutTwoItemsIsRefused() {
        let empty = SparseMatrix(rows: 3, cols: 4, rowIndex: [], colIndex: [], values: [])
        let oneItem = SparseMatrix(rows: 2, cols: 1, rowIndex: [0, 1], colIndex: [0, 0], values: [1, 1])
        for m in [empty, oneItem] {
            #expect(invalidArgument { _ = try BPR.fit(userItems: m, parameters: Self.small) })
        }
    }

    /// As `KGTrainingParameters.validate` refuses its own: a learning rate that is not a positive
    /// number and a negative or non-finite regularisation are `.invalidArgument`, not a model of NaNs.
    @Test func badRatesAreRefused() {
        let m = twoClusters(users: 6, items: 8)
        for (lr, reg) in [(Float.nan, Float(0.01)), (.infinity, 0.01), (0, 0.01), (-0.05, 0.01), (0.05, -1), (0.05, .nan)] {
            var p = Self.small
            p.learningRate = lr; p.regularization = reg
            #expect(invalidArgument { _ = try BPR.fit(userItems: m, parameters: p) }, "learning rate \(lr), regularisation \(reg)")
        }
    }

    /// Negative sizes are `.invalidArgument` too (they used to trap on a range with a negative
    /// bound), each run in a child process so a regression cannot take the test run down.
    @Test func negativeSizesAreRefusedWithoutTrapping() async {
        await #expect(processExitsWith: .success, "factors = -2") {
            var p = BPRParameters(); p.factors = -2; p.iterations = 1
            if (try? BPR.fit(userItems: twoClusters(users: 4, items: 4), parameters: p)) != nil { exit(1) }
        }
        await #expect(processExitsWith: .success, "iterations = -1") {
            var p = BPRParameters(); p.factors = 2; p.iterations = -1
            if (try? BPR.fit(userItems: twoClusters(users: 4, items: 4), parameters: p)) != nil { exit(1) }
        }
    }
}

/// True when `body` throws `.invalidArgument`.
func invalidArgument(_ body: () throws -> Void) -> Bool {
    do { try body(); return false } catch {
        if case .invalidArgument = error as? ChorusError { return true }
        return false
    }
}
