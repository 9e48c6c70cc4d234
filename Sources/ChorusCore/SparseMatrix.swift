/// A compressed sparse row matrix of `Float` (users x items confidences, and its transpose).
public struct SparseMatrix: Sendable {
    public let rows: Int
    public let cols: Int
    /// Row r's entries are `rowStart[r] ..< rowStart[r + 1]`.
    public let rowStart: [Int]
    public let colIndex: [Int32]
    public let values: [Float]

    public var nonZeros: Int { colIndex.count }

    /// Builds from coordinates; duplicate (row, col) pairs are summed (saturating at Float's largest
    /// finite value). Columns in a row are sorted. `excluding[i]` true leaves coordinate i out.
    /// - Complexity: O(nnz + rows), counting sort by row, then a sort within each row.
    public init(rows: Int, cols: Int, rowIndex: [Int32], colIndex cols_: [Int32], values vals: [Float], excluding: [Bool]? = nil) {
        precondition(excluding.map { $0.count == rowIndex.count } ?? true)
        self.rows = rows
        self.cols = cols
        var start = [Int](repeating: 0, count: rows + 1)
        for (i, r) in rowIndex.enumerated() where !(excluding?[i] ?? false) { start[Int(r) + 1] += 1 }
        for r in 0..<rows { start[r + 1] += start[r] }
        var fill = start
        var c = [Int32](repeating: 0, count: start[rows])
        var v = [Float](repeating: 0, count: start[rows])
        for i in 0..<rowIndex.count where !(excluding?[i] ?? false) {
            let r = Int(rowIndex[i])
            c[fill[r]] = cols_[i]; v[fill[r]] = vals[i]
            fill[r] += 1
        }
        // Sort each row by column and merge duplicates, in place: row r's merged entries start at
        // or before its own, so they never overwrite a row still to come. (A second pair of
        // arrays would hold the matrix twice while it is built: 150 MB more at 20M interactions.)
        var outStart = [Int](repeating: 0, count: rows + 1)
        var pairs: [(Int32, Float)] = []
        var w = 0
        for r in 0..<rows {
            pairs.removeAll(keepingCapacity: true)
            for j in start[r]..<start[r + 1] { pairs.append((c[j], v[j])) }
            pairs.sort { $0.0 < $1.0 }
            var j = 0
            while j < pairs.count {
                var sum = pairs[j].1
                var k = j + 1
                while k < pairs.count && pairs[k].0 == pairs[j].0 { sum += pairs[k].1; k += 1 }
                // Saturate: repeated huge weights (each finite) must not sum to infinity.
                c[w] = pairs[j].0; v[w] = sum.isFinite ? sum : .greatestFiniteMagnitude
                w += 1
                j = k
            }
            outStart[r + 1] = w
        }
        // Merged duplicates leave room at the end: kept when it is small, else given back.
        if (c.count - w) * 16 > c.count {
            c = Array(c[0..<w]); v = Array(v[0..<w])
        } else {
            c.removeLast(c.count - w); v.removeLast(v.count - w)
        }
        self.rowStart = outStart
        self.colIndex = c
        self.values = v
    }

    private init(rows: Int, cols: Int, rowStart: [Int], colIndex: [Int32], values: [Float]) {
        self.rows = rows; self.cols = cols; self.rowStart = rowStart; self.colIndex = colIndex; self.values = values
    }

    /// The transpose (items x users), columns sorted.
    public func transposed() -> SparseMatrix {
        var start = [Int](repeating: 0, count: cols + 1)
        for c in colIndex { start[Int(c) + 1] += 1 }
        for c in 0..<cols { start[c + 1] += start[c] }
        var fill = start
        var outC = [Int32](repeating: 0, count: nonZeros)
        var outV = [Float](repeating: 0, count: nonZeros)
        for r in 0..<rows {
            for j in rowStart[r]..<rowStart[r + 1] {
                let c = Int(colIndex[j])
                outC[fill[c]] = Int32(r); outV[fill[c]] = values[j]
                fill[c] += 1
            }
        }
        return SparseMatrix(rows: cols, cols: rows, rowStart: start, colIndex: outC, values: outV)
    }

    /// Row r's column indices and values.
    @inline(__always) public func row(_ r: Int) -> (cols: ArraySlice<Int32>, values: ArraySlice<Float>) {
        (colIndex[rowStart[r]..<rowStart[r + 1]], values[rowStart[r]..<rowStart[r + 1]])
    }
}
