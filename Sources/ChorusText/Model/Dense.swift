import CKernels
import ChorusCore

/// One or more PyTorch `Linear` layers over the same input, their outputs side by side in one
/// row-major matrix (Q, K and V as one [tokens, 3h] product), with the weights in half precision.
///
/// `init` reads each weight matrix once ([out, in], row-major, as in the file) and packs it, rounded
/// to the nearest IEEE binary16, into 16-column panels of the combined output (`ck_linear_f16_pack`);
/// the products then run in float from those panels (`ck_linear_f16`). Half precision halves the bytes
/// a pass over the weights reads, which is what bounds a layer over one short sentence; packing once
/// removes the per-call panel copy of many-row batches. The rounding moves all-MiniLM-L6-v2's
/// embeddings by a cosine of about 2e-7 (see `Sources/ChorusText/README.md`).
///
/// Thread safety: immutable after `init`; `apply` may run on several threads at once.
final class Dense: @unchecked Sendable {
    let inDim: Int
    /// Σ outDim of the parts: the combined output width.
    let outDim: Int
    /// ceil(outDim / 16) panels of [inDim][16] binary16 values, the columns past outDim zero.
    let panelCount: Int
    private let panels: UnsafeMutablePointer<UInt16>
    /// The combined bias, panelCount * 16 floats (zero past outDim).
    private let bias: UnsafeMutablePointer<Float>

    /// Packs the parts' weights (each [outDim, inDim], row-major, read only here: the caller may
    /// release them afterwards) and copies their biases.
    /// - Throws: `.outOfMemory`.
    init(inDim: Int, _ layers: [(weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, outDim: Int)]) throws(ChorusError) {
        precondition(inDim >= 1 && !layers.isEmpty && layers.allSatisfy { $0.outDim >= 1 })
        let outDim = layers.reduce(0) { $0 + $1.outDim }
        let panelCount = (outDim + 15) / 16
        self.inDim = inDim
        self.outDim = outDim
        self.panelCount = panelCount
        let panelBytes = panelCount * 16 * inDim * MemoryLayout<UInt16>.stride
        panels = try Allocator.allocate(bytes: panelBytes, zeroed: true).bindMemory(to: UInt16.self, capacity: panelCount * 16 * inDim)
        do {
            bias = try Allocator.allocate(bytes: panelCount * 16 * MemoryLayout<Float>.stride, zeroed: true)
                .bindMemory(to: Float.self, capacity: panelCount * 16)
        } catch {
            Allocator.deallocate(UnsafeMutableRawPointer(panels))
            throw error
        }
        var column = 0
        for l in layers {
            ck_linear_f16_pack(l.weight, l.outDim, inDim, inDim, panels, column)
            (bias + column).update(from: l.bias, count: l.outDim)
            column += l.outDim
        }
    }

    deinit {
        Allocator.deallocate(UnsafeMutableRawPointer(panels))
        Allocator.deallocate(UnsafeMutableRawPointer(bias))
    }

    /// Bytes held by the packed weights and biases.
    var byteCount: Int { panelCount * 16 * (inDim * MemoryLayout<UInt16>.stride + MemoryLayout<Float>.stride) }

    /// A worker is worth waking only for at least this many multiply-adds.
    static let minWorkPerWorker = 200_000

    /// y[r, 0..<outDim] = x[r] Wᵀ + b for `rows` rows of x (stride `ldx`), into y (stride `ldy`),
    /// the panels (16 output columns each) split over up to `threads` workers. `gelu` applies GELU to
    /// each worker's own columns as soon as they are done. A row's result does not depend on `rows`
    /// or `threads`.
    func apply(_ x: UnsafePointer<Float>, rows: Int, ldx: Int, into y: UnsafeMutablePointer<Float>, ldy: Int,
               threads: Int, gelu: Bool = false) {
        let work = rows * inDim * outDim
        let workers = min(threads, max(1, work / Dense.minWorkPerWorker))
        let x = SendableBox(x), y = SendableBox(y)
        Parallel.forEachChunk(count: panelCount, threads: workers) { _, range in
            self.run(x.value, rows: rows, ldx: ldx, panels: range, into: y.value, ldy: ldy, gelu: gelu)
        }
    }

    /// The columns of panels `range`, on the calling thread.
    func run(_ x: UnsafePointer<Float>, rows: Int, ldx: Int, panels range: Range<Int>,
             into y: UnsafeMutablePointer<Float>, ldy: Int, gelu: Bool) {
        if range.isEmpty { return }
        ck_linear_f16(x, rows, inDim, ldx, panels, bias, range.lowerBound, range.upperBound, outDim, y, ldy)
        if gelu {
            let lo = range.lowerBound * 16, hi = min(outDim, range.upperBound * 16)
            for r in 0..<rows { BertKernels.gelu(y + r * ldy + lo, hi - lo) }
        }
    }
}
