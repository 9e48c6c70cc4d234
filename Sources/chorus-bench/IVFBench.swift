import ChorusCore

/// `chorus-bench ivf`: `IVFIndex` over an item matrix read from a raw file of float32 rows: build
/// time and bytes held, then for each nprobe single queries (p50) and a batch in one call (best of
/// --repeats); `ExactTopK` on the same queries in the same run. bench/ivf/run.py runs faiss
/// IndexIVFFlat at the same nlist and nprobe and computes recall@k of both against exact.
enum IVFBench {
    static let options: Set<String> = ["items", "queries", "dim", "k", "threads", "lists", "iterations", "sample-per-list", "seed",
                                       "nprobe", "singles", "batch", "repeats", "out-dir", "storage"]
    static let help = """
        Usage: chorus-bench ivf --items F --queries F --dim D [--k 10] [--threads 2] [--lists sqrt(n)]
                                [--iterations 10] [--sample-per-list 64] [--seed 42] [--nprobe 1,4,16,64]
                                [--singles 100] [--batch 256] [--repeats 5] [--out-dir DIR] [--storage copy|shared|sq8]

        --items / --queries: raw little-endian float32 rows of D values. Builds the index once (timed),
        then for each --nprobe times --singles one-query searches (each alone, p50) and the first
        --batch queries in one call (best of --repeats); the same for ExactTopK (singles capped at 20).
        --out-dir writes each batch's top-k item indices (int32, batch x k, -1 where fewer were found)
        as ivf_nprobe<N>.i32 and exact.i32. --storage shared builds the index sharing the item matrix
        (rows read by index, no copy) instead of copying the rows by list; --storage sq8 shares it and
        scans an 8-bit copy of the rows, rescoring the best exactly (the engine's serving index).
        Prints JSON.
        """

    static func run(_ o: Options) throws(BenchError) {
        try o.check()
        let d = try o.int("dim", default: 64, minimum: 1)
        let k = try o.int("k", default: 10, minimum: 1)
        let threads = try o.int("threads", default: 2, minimum: 1)
        let singles = try o.int("singles", default: 100, minimum: 1)
        let batchSize = try o.int("batch", default: 256, minimum: 1)
        let repeats = try o.int("repeats", default: 5, minimum: 1)
        let iterations = try o.int("iterations", default: 10, minimum: 0)
        let samplePerList = try o.int("sample-per-list", default: 64, minimum: 1)
        let seed = try o.int("seed", default: 42, minimum: 0)
        var nprobes: [Int] = []
        for part in (o.string("nprobe") ?? "1,4,16,64").split(separator: ",") {
            guard let v = Int(part), v >= 1 else { throw .usage("--nprobe wants a comma-separated list of integers >= 1") }
            nprobes.append(v)
        }
        let items = try TopKBench.readFloats(try o.required("items"))
        let queries = try TopKBench.readFloats(try o.required("queries"))
        guard items.count % d == 0, queries.count % d == 0, !queries.isEmpty, !items.isEmpty else {
            throw .usage("file sizes are not whole, non-empty sets of --dim rows")
        }
        let n = items.count / d, nq = queries.count / d
        let lists = o.string("lists") == nil ? nil : try o.int("lists", default: 1, minimum: 1)
        let outDir = o.string("out-dir")
        let p = IVFIndex.Parameters(lists: lists, iterations: iterations, samplePerList: samplePerList, seed: UInt64(seed))
        let storage = o.string("storage") ?? "copy"
        guard ["copy", "shared", "sq8"].contains(storage) else { throw .usage("--storage is copy, shared or sq8") }

        let t0 = BenchIO.now()
        let index: IVFIndex
        do {
            if storage != "copy" {
                let matrix = try FloatMatrix(rows: n, cols: d, zeroed: false)
                matrix.buffer.update(fromContentsOf: items)
                index = try IVFIndex(sharing: matrix, quantized: storage == "sq8", parameters: p, threads: threads)
            } else {
                index = try items.withUnsafeBufferPointer { ip throws(ChorusError) in
                    try IVFIndex(items: ip.baseAddress!, count: n, dimension: d, parameters: p, threads: threads)
                }
            }
        } catch { throw .failure("building the index: \(error.message)") }
        let buildSeconds = BenchIO.now() - t0
        let sizes = index.listSizes.sorted()

        let singleCount = min(singles, nq), batch = min(batchSize, nq)
        var rows: [String] = []
        for nprobe in nprobes {
            var times: [Double] = []
            var best = Double.infinity
            var result: [[(index: Int32, score: Float)]] = []
            do {
                try queries.withUnsafeBufferPointer { qp throws(ChorusError) in
                    for i in 0..<singleCount {
                        let one = UnsafeBufferPointer(rebasing: qp[(i * d)..<((i + 1) * d)])
                        let t = BenchIO.now()
                        _ = try index.search(queries: one, dimension: d, k: k, nprobe: nprobe, threads: threads)
                        times.append(BenchIO.now() - t)
                    }
                    let b = UnsafeBufferPointer(rebasing: qp[0..<(batch * d)])
                    for _ in 0..<repeats {
                        let t = BenchIO.now()
                        result = try index.search(queries: b, dimension: d, k: k, nprobe: nprobe, threads: threads)
                        best = min(best, BenchIO.now() - t)
                    }
                }
            } catch { throw .failure("search: \(error.message)") }
            if let outDir { TopKBench.writeInts("\(outDir)/ivf_nprobe\(nprobe).i32", ids(result, k: k)) }
            rows.append("{\"nprobe\": \(nprobe), \"single_p50_ms\": \(BenchIO.json(BenchIO.median(times) * 1e3)), "
                        + "\"single_min_ms\": \(BenchIO.json((times.min() ?? .nan) * 1e3)), \"batch_best_ms\": \(BenchIO.json(best * 1e3))}")
        }

        // Exact search on the same queries, same run.
        var exactTimes: [Double] = []
        var exactBest = Double.infinity
        var exact: [[(index: Int32, score: Float)]] = []
        items.withUnsafeBufferPointer { ip in queries.withUnsafeBufferPointer { qp in
            let q = (0..<nq).map { qp.baseAddress! + $0 * d }
            for i in 0..<min(20, singleCount) {
                let t = BenchIO.now()
                _ = ExactTopK.search(items: ip.baseAddress!, count: n, dimension: d, queries: [q[i]], k: k, threads: threads)
                exactTimes.append(BenchIO.now() - t)
            }
            for _ in 0..<min(2, repeats) {
                let t = BenchIO.now()
                exact = ExactTopK.search(items: ip.baseAddress!, count: n, dimension: d, queries: Array(q.prefix(batch)), k: k, threads: threads)
                exactBest = min(exactBest, BenchIO.now() - t)
            }
        } }
        if let outDir { TopKBench.writeInts("\(outDir)/exact.i32", ids(exact, k: k)) }

        print("{\"items\": \(n), \"dim\": \(d), \"storage\": \"\(storage)\", \"k\": \(k), \"threads\": \(threads), \"lists\": \(index.listCount), "
              + "\"iterations\": \(iterations), \"sample_per_list\": \(samplePerList), \"seed\": \(seed), "
              + "\"build_s\": \(BenchIO.json(buildSeconds)), \"bytes\": \(index.bytes), "
              + "\"list_size_min\": \(sizes.first ?? 0), \"list_size_median\": \(sizes.isEmpty ? 0 : sizes[sizes.count / 2]), "
              + "\"list_size_max\": \(sizes.last ?? 0), \"single_queries\": \(singleCount), \"batch\": \(batch), "
              + "\"exact_single_p50_ms\": \(BenchIO.json(BenchIO.median(exactTimes) * 1e3)), \"exact_batch_best_ms\": \(BenchIO.json(exactBest * 1e3)), "
              + "\"nprobe\": [\(rows.joined(separator: ", "))]}")
    }

    static func ids(_ result: [[(index: Int32, score: Float)]], k: Int) -> [Int32] {
        var out: [Int32] = []
        for r in result { out += r.map(\.index) + [Int32](repeating: -1, count: max(0, k - r.count)) }
        return out
    }
}
