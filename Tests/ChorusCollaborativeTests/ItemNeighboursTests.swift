import Testing
@testable import ChorusCollaborative
@testable import ChorusCore

/// Row `j` of a neighbour table as neighbour -> similarity.
func neighbours(_ t: ItemNeighbours.Table, _ j: Int) -> [Int32: Float] {
    var out: [Int32: Float] = [:]
    for e in t.rowStart[j]..<t.rowStart[j + 1] { out[t.neighbour[e]] = t.similarity[e] }
    return out
}

func parameters(neighbours k: Int = 100, window: Int = 5, threads: Int = 1) -> ItemNeighbours.Parameters {
    var p = ItemNeighbours.Parameters()
    p.neighbours = k; p.window = window; p.threads = threads
    return p
}

@Suite struct ItemNeighboursTests {
    /// 3 users x 4 items: user 0 has {0, 1}, user 1 {0, 1, 2}, user 2 {2, 3}. The weights are not 1
    /// and user 0 has item 1 twice: the binarised cosine sees neither.
    /// Users per item n = (2, 2, 2, 1); co-occurrences c01 = 2, c02 = c12 = c23 = 1, c03 = c13 = 0, so
    /// cos01 = 2/√4 = 1, cos02 = cos12 = 1/√4 = 0.5, cos23 = 1/√2.
    static let m = SparseMatrix(rows: 3, cols: 4, rowIndex: [0, 0, 0, 1, 1, 1, 2, 2], colIndex: [0, 1, 1, 0, 1, 2, 2, 3],
                                values: [5, 2, 1, 1, 3, 1, 4, 1])
    static let r2: Float = 0.70710678

    func expectRow(_ got: [Int32: Float], _ want: [Int32: Float], _ row: Int) {
        #expect(Set(got.keys) == Set(want.keys), "row \(row): \(got)")
        for (l, s) in want { #expect(abs((got[l] ?? -1) - s) < 1e-6, "row \(row), neighbour \(l): \(got[l] ?? -1), want \(s)") }
    }

    @Test func cosineOnAHandWorkedMatrix() throws {
        let t = try ItemNeighbours.cosine(userItems: Self.m, parameters: parameters())
        #expect(t.items == 4)
        expectRow(neighbours(t, 0), [1: 1, 2: 0.5], 0)
        expectRow(neighbours(t, 1), [0: 1, 2: 0.5], 1)
        expectRow(neighbours(t, 2), [0: 0.5, 1: 0.5, 3: Self.r2], 2)
        expectRow(neighbours(t, 3), [2: Self.r2], 3)
        // Strongest first within a row.
        #expect(t.neighbour[t.rowStart[2]] == 3)
        #expect(t.neighbour[t.rowStart[0]] == 1)
    }

    @Test func keepsOnlyTheTopNeighbours() throws {
        let one = try ItemNeighbours.cosine(userItems: Self.m, parameters: parameters(neighbours: 1))
        #expect(one.rowStart == [0, 1, 2, 3, 4])
        #expect(one.neighbour == [1, 0, 3, 2])
        let two = try ItemNeighbours.cosine(userItems: Self.m, parameters: parameters(neighbours: 2))
        let row2 = Array(two.rowStart[2]..<two.rowStart[3])
        #expect(row2.count == 2)
        #expect(two.neighbour[row2[0]] == 3 && [0, 1].contains(two.neighbour[row2[1]]))
        #expect(abs(two.similarity[row2[1]] - 0.5) < 1e-6)
        #expect(neighbours(two, 3).count == 1, "item 3 has one neighbour to keep")
    }

    @Test func fullTablesAreSymmetricWithinClustersAndIndependentOfThreads() throws {
        let m = twoClusters()
        let t = try ItemNeighbours.cosine(userItems: m, parameters: parameters(neighbours: 100))
        for j in 0..<t.items {
            let row = neighbours(t, j)
            #expect(row[Int32(j)] == nil, "item \(j) is its own neighbour")
            for (l, s) in row {
                #expect(Int(l) % 2 == j % 2, "\(j) and \(l) are in different clusters, no user has both")
                #expect(neighbours(t, Int(l))[Int32(j)] == s, "sim(\(j), \(l)) = \(s) but sim(\(l), \(j)) = \(neighbours(t, Int(l))[Int32(j)] ?? -1)")
                #expect(s > 0 && s <= 1 + 1e-6)
            }
        }
        let three = try ItemNeighbours.cosine(userItems: m, parameters: parameters(neighbours: 100, threads: 3))
        #expect(three.rowStart == t.rowStart && three.neighbour == t.neighbour && three.similarity == t.similarity)
    }

    /// Sequences [0, 1, 2] and [0, 1]; occurrences n = (2, 2, 1, 0). With a window of 2, item 0 is
    /// followed by 1 twice at distance 1 (2) and by 2 once at distance 2 (½); item 1 by 2 once (1):
    /// T(0,1) = 2/√(2·2) = 1, T(0,2) = ½/√(2·1), T(1,2) = 1/√(2·1); nothing follows 2, item 3 never occurs.
    @Test func transitionsOnHandWorkedSequences() throws {
        let seqs: [[Int32]] = [[0, 1, 2], [0, 1]]
        let t = try ItemNeighbours.transitions(sequences: seqs, items: 4, parameters: parameters(window: 2))
        expectRow(neighbours(t, 0), [1: 1, 2: 0.5 * Self.r2], 0)
        expectRow(neighbours(t, 1), [2: Self.r2], 1)
        expectRow(neighbours(t, 2), [:], 2)
        expectRow(neighbours(t, 3), [:], 3)
        // A window of 1 sees only the very next item.
        let next = try ItemNeighbours.transitions(sequences: seqs, items: 4, parameters: parameters(window: 1))
        expectRow(neighbours(next, 0), [1: 1], 0)
    }
}
