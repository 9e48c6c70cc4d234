import Testing
@testable import ChorusCore

@Suite struct DataTests {
    @Test func idIndexInternsInFirstSeenOrder() throws {
        var ix = IdIndex()
        #expect(ix.intern(42) == 0); #expect(ix.intern(-7) == 1); #expect(ix.intern(42) == 0)
        #expect(ix.ids == [42, -7]); #expect(ix.index(of: -7) == 1); #expect(ix.index(of: 5) == nil)
        #expect(throws: ChorusError.self) { try IdIndex(ids: [1, 2, 1]) }
    }

    /// One interaction per call must not reallocate the log's columns each time (exact
    /// `reserveCapacity` did: 1M single adds were quadratic). Doubling: about log2(n) growths.
    @Test func singleAppendsGrowTheLogGeometrically() throws {
        var log = InteractionLog()
        var growths = 0, capacity = 0
        for i in 0..<20_000 {
            try log.append([Interaction(user: Int64(i % 97), item: Int64(i % 89), timestamp: Int64(i))])
            if log.userIndex.capacity != capacity { growths += 1; capacity = log.userIndex.capacity }
        }
        #expect(log.count == 20_000)
        #expect(growths <= 20, "the columns grew \(growths) times for 20,000 appends")
    }

    /// Dense indices are Int32: a batch that could pass 2^31 - 1 distinct users or items is
    /// refused before anything is interned (interning the 2^31st id would trap).
    @Test func theLogRefusesToPassInt32DistinctIds() throws {
        let limit = InteractionLog.maxDistinct
        #expect(throws: ChorusError.self) { try InteractionLog.checkRoom(limit - 1, 0, adding: 2) }
        #expect(throws: ChorusError.self) { try InteractionLog.checkRoom(0, limit, adding: 1) }
        try InteractionLog.checkRoom(limit - 2, limit - 2, adding: 2)
        try InteractionLog.checkRoom(0, 0, adding: limit)
    }

    @Test func logRejectsBadWeightsAndAddsNothing() throws {
        var log = InteractionLog()
        try log.append([Interaction(user: 1, item: 10), Interaction(user: 2, item: 11, weight: 3, timestamp: 5)])
        for bad: Float in [.nan, .infinity, -.infinity, -1, 0] {
            #expect(throws: ChorusError.self) {
                try log.append([Interaction(user: 3, item: 12), Interaction(user: 4, item: 13, weight: bad)])
            }
        }
        #expect(log.count == 2)
        #expect(log.users.count == 2 && log.items.count == 2)
        #expect(log.weights == [1, 3] && log.timestamps == [0, 5])
    }

    @Test func sparseMatrixSumsDuplicatesAndTransposes() {
        let m = SparseMatrix(rows: 3, cols: 4, rowIndex: [0, 2, 0, 0, 1], colIndex: [3, 1, 1, 3, 0], values: [1, 2, 3, 4, 5])
        #expect(m.rowStart == [0, 2, 3, 4])
        #expect(m.colIndex == [1, 3, 0, 1])
        #expect(m.values == [3, 5, 5, 2])
        let t = m.transposed()
        #expect(t.rows == 4 && t.cols == 3)
        #expect(t.rowStart == [0, 1, 3, 3, 4])
        #expect(t.colIndex == [1, 0, 2, 0])
        #expect(t.values == [5, 3, 2, 5])
    }

    /// Merged in place: one duplicate among 20 entries (its room kept), then the same with
    /// rows excluded (one of the duplicate pair among them: nothing left to merge).
    @Test func sparseMatrixMergesInPlaceAndExcludes() {
        let rows: [Int32] = (0..<20).map { Int32($0 % 5) }, cols: [Int32] = (0..<20).map { Int32(($0 * 7) % 11) }
        var c = cols
        c[19] = c[4]  // rows 4 and 19 are both (4, 6)
        let values = (0..<20).map { Float($0 + 1) }
        let m = SparseMatrix(rows: 6, cols: 11, rowIndex: rows, colIndex: c, values: values)
        let total: Float = values.reduce(0, +)
        #expect(m.nonZeros == 19)
        #expect(m.rowStart == [0, 4, 8, 12, 16, 19, 19])
        #expect(m.row(4).cols.count == 3)
        #expect(m.values.reduce(0, +) == total)
        let i = m.row(4).cols.firstIndex(of: c[4])!
        #expect(m.row(4).values[i] == 5 + 20)
        for r in 0..<6 { #expect(m.row(r).cols.elementsEqual(m.row(r).cols.sorted())) }
        let excluded = (0..<20).map { $0 == 19 || $0 == 0 }
        let e = SparseMatrix(rows: 6, cols: 11, rowIndex: rows, colIndex: c, values: values, excluding: excluded)
        #expect(e.nonZeros == 18)
        #expect(e.row(4).cols.count == 3 && e.row(0).cols.count == 3)
        #expect(e.values.reduce(0, +) == total - 21)
    }

    @Test func temporalHoldOutKeepsTheLatestRows() {
        // user 0: 5 rows with timestamps out of order; user 1: 2 rows (kept whole); user 2: 3 rows.
        let users: [Int32] = [0, 0, 1, 0, 0, 2, 1, 0, 2, 2]
        let ts: [Int64] =    [5, 1, 9, 3, 4, 1, 9, 2, 3, 2]
        let held = TemporalHoldOut.split(users: users, timestamps: ts, fraction: 0.4)
        // user 0 (5 rows): hold 2 latest: ts 5 (row 0) and ts 4 (row 4).
        #expect(held == [true, false, false, false, true, false, false, false, true, false])
    }

    @Test func denseHoldOutSplitsLikeTheGenericOne() {
        // The counting-sort split of dense indices against the dictionary split, with tied timestamps,
        // users of 1-40 rows and an absent index; then a negative index (the generic fallback).
        var random = SeededRandom(seed: 7)
        let users = (0..<3_000).map { _ in Int32(random.next() % 97) }.filter { $0 != 13 }
        let ts = users.indices.map { _ in Int64(random.next() % 50) }
        for fraction in [0.1, 0.25, 0.5] {
            let dense = TemporalHoldOut.split(users: users, timestamps: ts, fraction: fraction)
            #expect(dense == TemporalHoldOut.split(users: users.map { "u\($0)" }, timestamps: ts, fraction: fraction))
            #expect(dense.contains(true))
        }
        // A log already in time order (with ties): the path that skips the per-user sort.
        let ordered = users.indices.map { Int64($0 / 7) }
        #expect(TemporalHoldOut.split(users: users, timestamps: ordered, fraction: 0.3)
                == TemporalHoldOut.split(users: users.map { "u\($0)" }, timestamps: ordered, fraction: 0.3))
        let negative: [Int32] = [-1, -1, -1, 2, 2, 2]
        #expect(TemporalHoldOut.split(users: negative, timestamps: [3, 2, 1, 1, 2, 3], fraction: 0.4) == [true, false, false, false, false, true])
    }
}
