#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore
import ChorusCollaborative
import ChorusEval

/// `chorus-bench als`: times `ImplicitALS.fit` on a fixed train file and writes the factors, so
/// bench/als/run.py can score them with the same code it uses for the peer (implicit).
enum ALSBench {
    static let options: Set<String> = ["train", "test", "factors", "iterations", "regularization", "alpha",
                                       "threads", "seed", "repeat", "warmup", "cg-steps", "out-dir", "k"]

    static let help = """
        Usage: chorus-bench als --train FILE --out-dir DIR [options]

        Reads a user,item,weight CSV (header optional), builds the users x items SparseMatrix with
        dense indices (first appearance order), times ImplicitALS.fit --repeat times on
        CLOCK_MONOTONIC (building the matrix is not timed; fit's own confidence transform and
        transpose are), and writes the last run's factors to DIR:
          user_factors.f32, item_factors.f32   raw little-endian float32, row-major (rows x factors)
          user_ids.txt, item_ids.txt           the original id of each dense row, one per line
          als.json                             the JSON also printed on stdout

        Options:
          --train FILE            user,item,weight CSV (required)
          --out-dir DIR           existing directory for the outputs (required)
          --test FILE             optional user,item CSV of held-out pairs: also computes NDCG@k
                                  (binary relevance, train items excluded) as a cross-check
          --factors N             latent factors (default 64)
          --iterations N          ALS sweeps (default 15)
          --regularization X      L2 regularization (default 0.01)
          --alpha X               confidence c = 1 + alpha * w (default 1)
          --threads N             worker threads (default 2)
          --seed N                random seed (default 42)
          --cg-steps N            conjugate-gradient steps per row and sweep (default 3)
          --repeat N              timed fits (default 3)
          --warmup N              untimed fits before the timed ones (default 0)
          --k N                   cut-off of the NDCG cross-check (default 10)
        """

    static func run(_ o: Options) throws(BenchError) {
        try o.check()
        let trainPath = try o.required("train")
        let outDir = try o.required("out-dir")
        var p = ALSParameters()
        p.factors = try o.int("factors", default: 64, minimum: 1)
        p.iterations = try o.int("iterations", default: 15, minimum: 1)
        p.regularization = try o.float("regularization", default: 0.01)
        p.alpha = try o.float("alpha", default: 1)
        p.threads = try o.int("threads", default: 2, minimum: 1)
        p.seed = UInt64(try o.int("seed", default: 42))
        p.cgSteps = try o.int("cg-steps", default: 3, minimum: 1)
        let repeats = try o.int("repeat", default: 3, minimum: 1)
        let warmups = try o.int("warmup", default: 0)
        let k = try o.int("k", default: 10, minimum: 1)

        let t0 = BenchIO.now()
        let train = try TripleCSV.read(path: trainPath)
        guard train.userIds.count >= 2, train.itemIds.count >= 2 else { throw .failure("\(trainPath): too little data") }
        if let bad = train.weights.firstIndex(where: { !($0 > 0) }) {
            throw .failure("\(trainPath): row \(bad + 1) has a weight <= 0; ALS wants positive weights")
        }
        let matrix = SparseMatrix(rows: train.userIds.count, cols: train.itemIds.count,
                                  rowIndex: train.rowUser, colIndex: train.rowItem, values: train.weights)
        let loadSeconds = BenchIO.now() - t0

        var times: [Double] = []
        var last: (users: FloatMatrix, items: FloatMatrix)? = nil
        for run in 0..<(warmups + repeats) {
            last = nil // release the previous run's factors before the next one allocates
            let s = BenchIO.now()
            do {
                let fitted = try ImplicitALS.fit(userItems: matrix, parameters: p)
                last = (fitted.users, fitted.items)
            } catch { throw .failure(error.message) }
            if run >= warmups { times.append(BenchIO.now() - s) }
        }
        let factors = last!

        try write(factors.users, to: "\(outDir)/user_factors.f32")
        try write(factors.items, to: "\(outDir)/item_factors.f32")
        try writeText(train.userIds.map { "\($0)\n" }.joined(), to: "\(outDir)/user_ids.txt")
        try writeText(train.itemIds.map { "\($0)\n" }.joined(), to: "\(outDir)/item_ids.txt")

        var ndcgJSON = ""
        if let testPath = o.string("test") {
            let (ndcg, users) = try crossCheckNDCG(testPath: testPath, train: train, matrix: matrix, factors: factors, k: k)
            ndcgJSON = ",\n  \"ndcg_at_k\": \(BenchIO.json(ndcg)), \"k\": \(k), \"test_users\": \(users)"
        }
        let json = """
            {
              "command": "als",
              "train": \(BenchIO.json(trainPath)),
              "users": \(matrix.rows), "items": \(matrix.cols), "nnz": \(matrix.nonZeros),
              "factors": \(p.factors), "iterations": \(p.iterations), "regularization": \(p.regularization),
              "alpha": \(p.alpha), "threads": \(p.threads), "seed": \(p.seed), "cg_steps": \(p.cgSteps), "warmup": \(warmups),
              "load_seconds": \(BenchIO.json(loadSeconds)),
              "fit_seconds": [\(times.map { BenchIO.json($0) }.joined(separator: ", "))],
              "median_seconds": \(BenchIO.json(BenchIO.median(times))),
              "out_dir": \(BenchIO.json(outDir))\(ndcgJSON)
            }
            """
        try writeText(json + "\n", to: "\(outDir)/als.json")
        print(json)
    }

    /// NDCG@k over the users of `testPath`, from `factors`, with each user's train items excluded:
    /// the Swift twin of run.py's metric (ChorusEval's RankingMetrics.ndcg).
    static func crossCheckNDCG(testPath: String, train: TripleCSV, matrix: SparseMatrix,
                               factors: (users: FloatMatrix, items: FloatMatrix), k: Int) throws(BenchError) -> (Double, Int) {
        let test = try TripleCSV.read(path: testPath, seedUsers: train.userIds, seedItems: train.itemIds)
        var relevant: [Int32: Set<Int64>] = [:]
        for r in 0..<test.rowUser.count {
            relevant[test.rowUser[r], default: []].insert(test.itemIds[Int(test.rowItem[r])])
        }
        let nItems = matrix.cols, f = factors.users.cols
        var scores = [Float](repeating: 0, count: nItems)
        var total = 0.0, users = 0
        for (u, rel) in relevant.sorted(by: { $0.key < $1.key }) where Int(u) < matrix.rows {
            scores.withUnsafeMutableBufferPointer { s in
                Kernels.gemv(factors.items.base, m: nItems, k: f, factors.users.row(Int(u)), into: s.baseAddress!)
                for i in matrix.row(Int(u)).cols { s[Int(i)] = -.infinity }
            }
            let top = scores.withUnsafeBufferPointer { TopK.select($0, k: k) }
            total += RankingMetrics.ndcg(top.map { train.itemIds[Int($0.index)] }, relevant: rel, k: k)
            users += 1
        }
        return (users > 0 ? total / Double(users) : 0, users)
    }

    static func write(_ m: FloatMatrix, to path: String) throws(BenchError) {
        let bytes = [UInt8](UnsafeRawBufferPointer(m.buffer))
        do { try FileIO.writeAtomically(path: path, bytes: bytes) } catch { throw .failure(error.message) }
    }

    static func writeText(_ s: String, to path: String) throws(BenchError) {
        do { try FileIO.writeAtomically(path: path, bytes: Array(s.utf8)) } catch { throw .failure(error.message) }
    }
}
