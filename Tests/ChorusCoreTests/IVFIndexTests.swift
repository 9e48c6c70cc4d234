import Testing
@testable import ChorusCore

/// Seeded Gaussian mixture: `components` centres ~ N(0, 1), each row a uniformly chosen centre plus
/// N(0, sigma²) noise per coordinate. Row-major.
private func mixture(count: Int, dimension d: Int, components: Int, sigma: Float, seed: UInt64) -> [Float] {
    var rng = SeededRandom(seed: seed)
    let centres = (0..<(components * d)).map { _ in rng.nextGaussian() }
    var out = [Float](repeating: 0, count: count * d)
    for i in 0..<count {
        let c = rng.nextInt(below: components)
        for j in 0..<d { out[i * d + j] = centres[c * d + j] + sigma * rng.nextGaussian() }
    }
    return out
}

private typealias Hits = [[(index: Int32, score: Float)]]

private func exact(_ items: [Float], _ queries: [Float], d: Int, k: Int) -> Hits {
    items.withUnsafeBufferPointer { ip in queries.withUnsafeBufferPointer { qp in
        let qs = (0..<(queries.count / d)).map { qp.baseAddress! + $0 * d }
        return ExactTopK.search(items: ip.baseAddress!, count: items.count / d, dimension: d, queries: qs, k: k, threads: 2)
    } }
}

private func build(_ items: [Float], d: Int, _ p: IVFIndex.Parameters, threads: Int) throws -> IVFIndex {
    try items.withUnsafeBufferPointer { try IVFIndex(items: $0.baseAddress!, count: items.count / d, dimension: d, parameters: p, threads: threads) }
}

private func search(_ index: IVFIndex, _ queries: [Float], k: Int, nprobe: Int, threads: Int) throws -> Hits {
    try queries.withUnsafeBufferPointer { try index.search(queries: $0, dimension: index.dimension, k: k, nprobe: nprobe, threads: threads) }
}

private func same(_ a: Hits, _ b: Hits) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { x, y in
        x.map(\.index) == y.map(\.index) && x.map(\.score.bitPattern) == y.map(\.score.bitPattern)
    }
}

@Suite struct IVFIndexTests {
    /// Every list probed: exactly ExactTopK (indices and score bits), for any thread count and
    /// batch size, with exact ties spread over several lists (ties to the lower index), items in
    /// the catalogue's last partial group of 4 (6003 = 4 x 1500 + 3), and a dimension with a
    /// scalar column tail (36).
    @Test(arguments: [64, 36])
    func everyListProbedIsExact(dimension d: Int) throws {
        let n = 6003
        var items = mixture(count: n, dimension: d, components: 40, sigma: 0.4, seed: 3)
        // Rows whose first coordinate is the largest: the query e0 scores them all top[0] exactly
        // (the other products are zeros), in different clusters.
        let tied = [17, 2500, 4000, 6001, 6002]
        let top = (0..<n).map { items[$0 * d] }.max()! + 1
        for r in tied { items[r * d] = top }
        var queries = mixture(count: 8, dimension: d, components: 40, sigma: 0.4, seed: 4)
        queries += [1] + [Float](repeating: 0, count: d - 1)
        // Queries along the items in that last group (6000 untouched): they rank near the top.
        queries += Array(items[(6000 * d)..<(6001 * d)]) + Array(items[(1999 * d)..<(2000 * d)])
        let index = try build(items, d: d, .init(lists: 50, iterations: 4), threads: 2)
        let lists = Set(tied.map { r in (0..<index.listCount).first { l in (index.start[l]..<index.start[l + 1]).contains { index.ids[$0] == Int32(r) } }! })
        #expect(lists.count >= 2, "the tied rows should sit in several lists")
        let want = exact(items, queries, d: d, k: 25)
        #expect(want[8].prefix(5).map(\.index) == tied.map { Int32($0) })
        #expect(want[9].contains { $0.index == 6000 })
        for threads in [1, 2, 3] {
            for nq in [1, 5, 11] {
                let got = try search(index, Array(queries.suffix(nq * d)), k: 25, nprobe: index.listCount, threads: threads)
                #expect(same(got, Array(want.suffix(nq))), "d \(d) threads \(threads) queries \(nq)")
            }
        }
        // nprobe past the list count is clamped to it; k past the catalogue gives every item.
        #expect(same(try search(index, queries, k: 25, nprobe: 10_000, threads: 2), want))
        // Sharing the rows instead of copying them (the serving index): the same lists, and the
        // same results bit for bit, probing every list or a few, for any thread count and batch.
        let matrix = try FloatMatrix(rows: n, cols: d, zeroed: false)
        matrix.buffer.update(fromContentsOf: items)
        let shared = try IVFIndex(sharing: matrix, parameters: .init(lists: 50, iterations: 4), threads: 2)
        #expect(index.copied && !shared.copied)
        #expect(shared.listSizes == index.listSizes && shared.bytes + n * d * 4 <= index.bytes)
        // With an 8-bit scan copy: the same results again, from a small share of exact rescores.
        let quantized = try IVFIndex(sharing: matrix, quantized: true, parameters: .init(lists: 50, iterations: 4), threads: 2)
        #expect(quantized.quantized && !shared.quantized && quantized.bytes == shared.bytes + quantized.storedRows * (d + 4))
        for (name, other) in [("shared", shared), ("quantized", quantized)] {
            for threads in [1, 3] {
                for nq in [1, 4, 5, 11] {
                    for nprobe in [3, index.listCount] {
                        let q = Array(queries.suffix(nq * d))
                        #expect(same(try search(other, q, k: 25, nprobe: nprobe, threads: threads),
                                     try search(index, q, k: 25, nprobe: nprobe, threads: threads)),
                                "\(name): d \(d) threads \(threads) queries \(nq) nprobe \(nprobe)")
                    }
                }
            }
        }
        let all = (0..<Int32(quantized.listCount)).map { $0 }
        let rescored = queries.withUnsafeBufferPointer { qp in all.withUnsafeBufferPointer { l in
            (0..<8).map { quantized.quantizedSearch(qp.baseAddress! + $0 * d, lists: l, k: 10).rescored }
        } }
        #expect(rescored.allSatisfy { $0 >= 10 && $0 < n / 20 }, "rescored \(rescored) of \(n)")
        let small = Array(items.prefix(7 * d))
        let tiny = try build(small, d: d, .init(lists: 20), threads: 2)
        #expect(tiny.listCount == 7)
        #expect(same(try search(tiny, queries, k: 10, nprobe: 7, threads: 2), exact(small, queries, d: d, k: 10)))
        #expect(try search(tiny, queries, k: 10, nprobe: 7, threads: 2).allSatisfy { $0.count == 7 })
    }

    /// The 8-bit scan at the extremes: a constant column (step 0), values near Float's range
    /// (the error bound overflows: every member rescored), rows tied exactly, huge and tiny
    /// queries, k past the probed items. Always the float index's results, bit for bit.
    @Test func quantizedScanMatchesAtTheExtremes() throws {
        let d = 8, n = 1203
        var items = mixture(count: n, dimension: d, components: 10, sigma: 0.5, seed: 21)
        for i in 0..<n { items[i * d + 3] = 0.25 }
        for r in [5, 600, 1201] { for j in 0..<d { items[r * d + j] = 2 } }
        for j in 0..<d { items[700 * d + j] = 3e38; items[701 * d + j] = -3e38 }
        let matrix = try FloatMatrix(rows: n, cols: d, zeroed: false)
        matrix.buffer.update(fromContentsOf: items)
        let p = IVFIndex.Parameters(lists: 12, iterations: 3)
        let plain = try IVFIndex(sharing: matrix, parameters: p, threads: 1)
        let quantized = try IVFIndex(sharing: matrix, quantized: true, parameters: p, threads: 1)
        var queries = mixture(count: 4, dimension: d, components: 10, sigma: 0.5, seed: 22)
        queries += [Float](repeating: 1, count: d) + [Float](repeating: 1e30, count: d) + [Float](repeating: 1e-30, count: d)
        queries += [Float](repeating: 0, count: d)
        for (k, nprobe) in [(1, 1), (5, 2), (40, 3), (2000, 12)] {
            let want = try search(plain, queries, k: k, nprobe: nprobe, threads: 2)
            #expect(same(try search(quantized, queries, k: k, nprobe: nprobe, threads: 2), want), "k \(k) nprobe \(nprobe)")
        }
    }

    /// Every item in exactly one list, lists padded to whole groups of 4 with -1 ids, sizes
    /// summing to the count, and the bytes held at least the copy of the rows.
    @Test func listsPartitionTheItems() throws {
        let d = 16, n = 3001
        let items = mixture(count: n, dimension: d, components: 20, sigma: 0.3, seed: 8)
        let index = try build(items, d: d, .init(), threads: 2)
        #expect(index.listCount == 55)  // round(sqrt(3001))
        #expect(index.listSizes.reduce(0, +) == n)
        var seen = [Int](repeating: 0, count: n)
        for r in 0..<index.storedRows where index.ids[r] >= 0 { seen[Int(index.ids[r])] += 1 }
        #expect(seen.allSatisfy { $0 == 1 })
        for l in 0..<index.listCount {
            #expect(index.padded[l] % 4 == 0 && index.padded[l] - index.regular[l] < 4)
            #expect((index.start[l] + index.regular[l]..<index.start[l] + index.padded[l]).allSatisfy { index.ids[$0] == -1 })
        }
        #expect(index.bytes >= n * d * 4 + index.listCount * d * 4)
    }

    /// On well-clustered data a modest nprobe finds nearly all of the exact top 10; recall never
    /// falls as nprobe grows and is 1 with every list. An index whose lists were unrelated to the
    /// items would find about nprobe / lists of them (1/8 here).
    @Test func recallIsHighAtModestNprobeAndGrowsWithIt() throws {
        let d = 32, n = 20_000
        let items = mixture(count: n, dimension: d, components: 100, sigma: 0.3, seed: 11)
        let queries = mixture(count: 200, dimension: d, components: 100, sigma: 0.3, seed: 11 &+ 1)
        let index = try build(items, d: d, .init(seed: 7), threads: 2)
        #expect(index.listCount == 141)
        let want = exact(items, queries, d: d, k: 10)
        var recalls: [Double] = []
        for nprobe in [1, 2, 4, 8, 17, 35, 70, 141] {
            let got = try search(index, queries, k: 10, nprobe: nprobe, threads: 2)
            let hits = zip(got, want).map { g, w in Set(g.map(\.index)).intersection(w.map(\.index)).count }.reduce(0, +)
            recalls.append(Double(hits) / Double(want.count * 10))
        }
        print("IVF recall@10 by nprobe [1, 2, 4, 8, 17, 35, 70, 141]: \(recalls)")
        #expect(recalls[4] >= 0.9, "recall@10 at nprobe = lists / 8: \(recalls)")
        #expect(zip(recalls, recalls.dropFirst()).allSatisfy { $0 <= $1 }, "\(recalls)")
        #expect(recalls.last == 1)
    }

    /// The same seed gives the same index (centroid bits, lists) and the same results whatever the
    /// thread count, for building and for searching; another seed gives another index.
    @Test func deterministicAcrossThreadCounts() throws {
        let d = 24, n = 6003
        let items = mixture(count: n, dimension: d, components: 30, sigma: 0.5, seed: 21)
        let queries = mixture(count: 37, dimension: d, components: 30, sigma: 0.5, seed: 22)
        let p = IVFIndex.Parameters(lists: 60, iterations: 6, samplePerList: 40, seed: 5)
        let reference = try build(items, d: d, p, threads: 1)
        let want = try search(reference, queries, k: 10, nprobe: 6, threads: 1)
        for threads in [2, 3, 5] {
            let other = try build(items, d: d, p, threads: threads)
            #expect(other.centroids.toArray().map(\.bitPattern) == reference.centroids.toArray().map(\.bitPattern), "threads \(threads)")
            #expect(other.start == reference.start)
            #expect((0..<other.storedRows).allSatisfy { other.ids[$0] == reference.ids[$0] })
            #expect(same(try search(other, queries, k: 10, nprobe: 6, threads: threads), want))
            #expect(same(try search(reference, Array(queries.prefix(d)), k: 10, nprobe: 6, threads: threads), [want[0]]))
        }
        let reseeded = try build(items, d: d, .init(lists: 60, iterations: 6, samplePerList: 40, seed: 6), threads: 2)
        #expect(reseeded.centroids.toArray() != reference.centroids.toArray())
    }

    /// Bad arguments are errors naming the argument, never traps.
    @Test func badInputsAreErrors() throws {
        let d = 8
        var items = mixture(count: 100, dimension: d, components: 4, sigma: 0.3, seed: 1)
        func buildError(_ items: [Float], count: Int, dimension: Int, _ p: IVFIndex.Parameters = .init()) -> String? {
            do {
                _ = try items.withUnsafeBufferPointer { try IVFIndex(items: $0.baseAddress!, count: count, dimension: dimension, parameters: p, threads: 2) }
                return nil
            } catch { return (error as? ChorusError)?.message ?? "not a ChorusError: \(error)" }
        }
        #expect(buildError(items, count: 0, dimension: d)?.contains("at least one item") == true)
        #expect(buildError(items, count: -3, dimension: d)?.contains("at least one item") == true)
        #expect(buildError(items, count: 10, dimension: 0)?.contains("dimension") == true)
        #expect(buildError(items, count: Int.max / 2, dimension: d)?.contains("count") == true)
        #expect(buildError(items, count: 10, dimension: Int.max / 2)?.contains("overflows") == true)
        #expect(buildError(items, count: 1 << 30, dimension: 1 << 31)?.contains("overflows") == true)
        #expect(buildError(items, count: 100, dimension: d, .init(lists: 0))?.contains("lists") == true)
        #expect(buildError(items, count: 100, dimension: d, .init(iterations: -1))?.contains("iterations") == true)
        #expect(buildError(items, count: 100, dimension: d, .init(samplePerList: 0))?.contains("samplePerList") == true)
        items[57 * d + 3] = .nan
        #expect(buildError(items, count: 100, dimension: d)?.contains("row 57") == true)
        items[57 * d + 3] = 0
        items[5 * d] = -.infinity
        #expect(buildError(items, count: 100, dimension: d)?.contains("row 5 ") == true)
        items[5 * d] = 0

        let index = try build(items, d: d, .init(lists: 10), threads: 2)
        let q = Array(items.prefix(2 * d))
        func searchError(_ q: [Float], dimension: Int, k: Int = 5, nprobe: Int = 2) -> String? {
            do {
                _ = try q.withUnsafeBufferPointer { try index.search(queries: $0, dimension: dimension, k: k, nprobe: nprobe, threads: 2) }
                return nil
            } catch { return (error as? ChorusError)?.message ?? "not a ChorusError: \(error)" }
        }
        #expect(searchError(q, dimension: d) == nil)
        #expect(searchError(q, dimension: 4)?.contains("dimension 4") == true)
        #expect(searchError(Array(q.prefix(d + 3)), dimension: d)?.contains("whole rows") == true)
        #expect(searchError(q, dimension: d, k: 0)?.contains("k must") == true)
        #expect(searchError(q, dimension: d, nprobe: 0)?.contains("nprobe") == true)
        #expect(searchError(q, dimension: d, nprobe: -5)?.contains("nprobe") == true)
        // No queries: no results; a NaN query probes nothing.
        #expect(try search(index, [], k: 5, nprobe: 2, threads: 2).isEmpty)
        #expect(try search(index, [Float](repeating: .nan, count: d), k: 5, nprobe: 2, threads: 2) .map(\.count) == [0])
    }
}
