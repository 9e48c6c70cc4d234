import CKernels
import ChorusCore

/// One or more PyTorch `Linear` layers over the same input, their outputs side by side in one
/// row-major matrix (Q, K and V as one [tokens, 3h] product). The weights are read in place from
/// the mapped file ([out, in], row-major): no concatenated or packed copy.
struct Dense: @unchecked Sendable {
    struct Part {
        let weight: UnsafePointer<Float>
        let bias: UnsafePointer<Float>
        let outDim: Int
        /// The part's first column in the output (and in the combined column space).
        let column: Int
    }

    let parts: [Part]
    let inDim: Int
    /// Σ outDim: the combined output width.
    let outDim: Int

    init(inDim: Int, _ layers: [(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, outDim: Int)]) {
        var parts: [Part] = [], column = 0
        for l in layers {
            parts.append(Part(weight: l.weight, bias: l.bias, outDim: l.outDim, column: column))
            column += l.outDim
        }
        self.parts = parts
        self.inDim = inDim
        self.outDim = column
    }

    /// Output columns per work unit: a multiple of the kernel's 4-column tile.
    static let columnGroup = 16
    /// A worker is worth waking only for at least this many multiply-adds.
    static let minWorkPerWorker = 200_000

    /// y[r, 0..<outDim] = x[r] Wᵀ + b for `rows` rows of x (stride `ldx`), into y (stride `ldy`),
    /// the output columns split over up to `threads` workers (`ck_linear`, AVX2+FMA when the CPU has
    /// it). `gelu` applies GELU to each worker's own columns as soon as they are done. `panels`: one
    /// row of at least 16 * (inDim + 1) floats per worker, or nil (for many rows the kernel copies
    /// each 16-column panel of W there first).
    func apply(_ x: UnsafePointer<Float>, rows: Int, ldx: Int, into y: UnsafeMutablePointer<Float>, ldy: Int,
               threads: Int, gelu: Bool = false, panels: FloatMatrix? = nil) {
        let groups = (outDim + Dense.columnGroup - 1) / Dense.columnGroup
        let work = rows * inDim * outDim
        let workers = min(threads, max(1, work / Dense.minWorkPerWorker))
        let x = SendableBox(x), y = SendableBox(y)
        precondition(panels.map { $0.rows >= workers && $0.cols >= 16 * (inDim + 1) } ?? true)
        Parallel.forEachChunk(count: groups, threads: workers) { w, range in
            let lo = range.lowerBound * Dense.columnGroup, hi = min(outDim, range.upperBound * Dense.columnGroup)
            run(x.value, rows: rows, ldx: ldx, columns: lo..<hi, into: y.value, ldy: ldy, gelu: gelu, panel: panels?.row(w))
        }
    }

    /// The columns `columns` of the combined output, on the calling thread.
    private func run(_ x: UnsafePointer<Float>, rows: Int, ldx: Int, columns: Range<Int>,
                     into y: UnsafeMutablePointer<Float>, ldy: Int, gelu: Bool, panel: UnsafeMutablePointer<Float>?) {
        for p in parts {
            let lo = max(columns.lowerBound, p.column), hi = min(columns.upperBound, p.column + p.outDim)
            if lo >= hi { continue }
            let skip = lo - p.column
            ck_linear(x, rows, inDim, ldx, p.weight + skip * inDim, inDim, p.bias + skip, hi - lo, y + lo, ldy, panel)
        }
        if gelu {
            for r in 0..<rows { BertKernels.gelu(y + r * ldy + columns.lowerBound, columns.count) }
        }
    }
}
