#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore

/// `chorus-bench topk`: exact top-k (`ExactTopK.search`) over an item matrix read from a raw file
/// of float32 rows, for single queries and for a batch, plus a streaming read of the same matrix
/// (the machine's memory-bandwidth floor for one scan). bench/topk/run.py runs faiss IndexFlatIP
/// on the same files in the same run.
enum TopKBench {
    static let options: Set<String> = ["items", "queries", "dim", "k", "threads", "singles", "batch", "repeats", "out"]
    static let help = """
        Usage: chorus-bench topk --items F --queries F --dim D [--k 10] [--threads 2] [--singles 50]
                                 [--batch 256] [--repeats 5] [--out ids.bin]

        --items / --queries: raw little-endian float32 rows of D values. Times --singles one-query
        searches (each query alone) and the first --batch queries in one call (best of --repeats),
        and a streaming min/max read of the item matrix over --threads threads (best of --repeats).
        --out writes the batch's top-k item indices (int32, batch x k) for the driver's check.
        Prints JSON.
        """

    static func run(_ o: Options) throws(BenchError) {
        try o.check()
        let d = try o.int("dim", default: 64, minimum: 1)
        let k = try o.int("k", default: 10, minimum: 1)
        let threads = try o.int("threads", default: 2, minimum: 1)
        let singles = try o.int("singles", default: 50, minimum: 1)
        let batchSize = try o.int("batch", default: 256, minimum: 1)
        let repeats = try o.int("repeats", default: 5, minimum: 1)
        let items = try readFloats(try o.required("items"))
        let queries = try readFloats(try o.required("queries"))
        guard items.count % d == 0, queries.count % d == 0, !queries.isEmpty else { throw .usage("file sizes are not multiples of --dim rows") }
        let n = items.count / d, nq = queries.count / d
        return items.withUnsafeBufferPointer { ip in queries.withUnsafeBufferPointer { qp in
            let q = (0..<nq).map { qp.baseAddress! + $0 * d }
            var singleTimes: [Double] = []
            for i in 0..<min(singles, nq) {
                let t = BenchIO.now()
                _ = ExactTopK.search(items: ip.baseAddress!, count: n, dimension: d, queries: [q[i]], k: k, threads: threads)
                singleTimes.append(BenchIO.now() - t)
            }
            let b = Array(q.prefix(batchSize))
            var batchBest = Double.infinity
            var result: [[(index: Int32, score: Float)]] = []
            for _ in 0..<repeats {
                let t = BenchIO.now()
                result = ExactTopK.search(items: ip.baseAddress!, count: n, dimension: d, queries: b, k: k, threads: threads)
                batchBest = min(batchBest, BenchIO.now() - t)
            }
            // The floor: one streaming read of the matrix (vectorised min/max per thread's slice).
            var readBest = Double.infinity
            let box = SendableBox(ip.baseAddress!)
            for _ in 0..<repeats {
                let t = BenchIO.now()
                Parallel.forEachChunk(count: threads, threads: threads) { _, r in
                    for s in r {
                        let per = (items.count + threads - 1) / threads, lo = s * per, hi = min(items.count, lo + per)
                        if lo < hi { _ = Kernels.minMax(UnsafeBufferPointer(start: box.value + lo, count: hi - lo)) }
                    }
                }
                readBest = min(readBest, BenchIO.now() - t)
            }
            if let out = o.string("out") {
                var ids: [Int32] = []
                for r in result { ids += r.map(\.index) + [Int32](repeating: -1, count: k - r.count) }
                writeInts(out, ids)
            }
            let sorted = singleTimes.sorted()
            print("{\"items\": \(n), \"dim\": \(d), \"k\": \(k), \"threads\": \(threads), \"single_queries\": \(singleTimes.count), "
                  + "\"single_p50_ms\": \(BenchIO.json(BenchIO.median(singleTimes) * 1e3)), \"single_min_ms\": \(BenchIO.json(sorted[0] * 1e3)), "
                  + "\"batch\": \(b.count), \"batch_best_ms\": \(BenchIO.json(batchBest * 1e3)), "
                  + "\"read_best_ms\": \(BenchIO.json(readBest * 1e3)), \"read_gb_per_s\": \(BenchIO.json(Double(items.count * 4) / readBest / 1e9))}")
        } }
    }

    static func readFloats(_ path: String) throws(BenchError) -> [Float] {
        guard let f = fopen(path, "rb") else { throw .failure("cannot open \(path)") }
        defer { fclose(f) }
        fseek(f, 0, SEEK_END)
        let bytes = ftell(f)
        fseek(f, 0, SEEK_SET)
        guard bytes >= 0, bytes % 4 == 0 else { throw .failure("\(path) is not float32 rows") }
        var v = [Float](repeating: 0, count: bytes / 4)
        let got = v.withUnsafeMutableBytes { fread($0.baseAddress, 1, bytes, f) }
        guard got == bytes else { throw .failure("short read of \(path)") }
        return v
    }

    static func writeInts(_ path: String, _ v: [Int32]) {
        guard let f = fopen(path, "wb") else { return }
        _ = v.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        fclose(f)
    }
}
